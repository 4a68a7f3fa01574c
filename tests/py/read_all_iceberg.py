"""Read many Iceberg tables with one engine and print, per table, its row count and the sorted
values of one string column, as JSON. Every engine reads the whole table (no count pushdown),
so its row count is the number of rows it really produced, position deletes applied.

Usage: python3 read_all_iceberg.py ENGINE < lines of "<metadata-file-location>\t<column or empty>"
ENGINE is one of: pyiceberg, polars, daft.
Prints {"<metadata-file-location>": {"rows": N, "values": [...]}} or, for a table the engine
failed to read, {"<metadata-file-location>": {"error": "..."}}.
Exits with status 3 when the engine's package is not importable.
"""
import json
import sys

INSTALL = {
    "pyiceberg": "pyiceberg[pyarrow]",
    "polars": "polars",
    "daft": "daft",
}


def reader(engine):
    """A function from a metadata file location to a pyarrow Table, read by `engine`."""
    if engine == "pyiceberg":
        from pyiceberg.table import StaticTable

        return lambda location: StaticTable.from_metadata(location).scan().to_arrow()
    if engine == "polars":
        import polars as pl

        return lambda location: pl.scan_iceberg(location).collect().to_arrow()
    if engine == "daft":
        import daft

        return lambda location: daft.read_iceberg(location).to_arrow()
    raise ValueError(f"unknown engine {engine!r}, expected one of {sorted(INSTALL)}")


def main():
    engine = sys.argv[1] if len(sys.argv) > 1 else "pyiceberg"
    try:
        read = reader(engine)
    except ImportError as e:
        print(
            f"{engine} is not importable ({e}); install it with "
            f'`{sys.executable} -m pip install "{INSTALL[engine]}"` (scripts/test.sh does)',
            file=sys.stderr,
        )
        sys.exit(3)
    out = {}
    for line in sys.stdin:
        location, _, column = line.rstrip("\n").partition("\t")
        try:
            arrow = read(location)
        except Exception as e:  # reported per table, so the caller names it
            out[location] = {"error": f"{type(e).__name__}: {e}"}
            continue
        values = sorted(str(v) for v in arrow.column(column).to_pylist() if v is not None) if column else []
        out[location] = {"rows": arrow.num_rows, "values": values}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
