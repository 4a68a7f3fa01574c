"""Read many Iceberg tables with pyiceberg and print, per table, its row count and the sorted
values of one string column, as JSON.

Usage: python3 count_iceberg.py < lines of "<metadata-file-location>\t<column or empty>"
Prints {"<metadata-file-location>": {"rows": N, "values": [...]}}.
"""
import json
import sys

from pyiceberg.table import StaticTable


def main():
    out = {}
    for line in sys.stdin:
        location, _, column = line.rstrip("\n").partition("\t")
        table = StaticTable.from_metadata(location)
        arrow = table.scan().to_arrow()
        values = sorted(str(v) for v in arrow.column(column).to_pylist() if v is not None) if column else []
        out[location] = {"rows": arrow.num_rows, "values": values}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
