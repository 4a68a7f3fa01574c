"""Read an Iceberg table with pyiceberg (an independent reader) and print its rows as JSON.

Usage: python3 read_iceberg.py <metadata-file-location> [snapshot-id]
Rows are printed sorted by `id` (then by their JSON text), values rendered as text so the Rust
test can compare them exactly.
"""
import json
import sys

from pyiceberg.table import StaticTable


def render(v):
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def main():
    table = StaticTable.from_metadata(sys.argv[1])
    scan = table.scan(snapshot_id=int(sys.argv[2])) if len(sys.argv) > 2 else table.scan()
    rows = [{k: render(v) for k, v in r.items()} for r in scan.to_arrow().to_pylist()]
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str) if "id" not in r else (r["id"], json.dumps(r, sort_keys=True, default=str)))
    print(json.dumps({"format_version": table.metadata.format_version, "rows": rows}))


if __name__ == "__main__":
    main()
