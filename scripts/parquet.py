"""The Parquet export: one file per public table, for DuckDB, Spark, pandas, BigQuery.

`workflow export` writes `<table>.parquet` beside `<table>.csv.gz` in the release. Each
file keeps the table's columns in order with their types (SQLite INTEGER, REAL, TEXT,
BLOB as int64, float64, string, binary) and their descriptions from metadata.yml (field
metadata `description`; the table's as file metadata), and is written with pyarrow.

Partitioned inside the file: rows are ordered by channel (and time, for posts and
snapshots), in row groups of ROW_GROUP rows, each with min/max statistics, so a
reader that filters on a channel or a date range skips the rest, also straight from
the release URL (HTTP range requests). One file per table and not a folder per channel:
a GitHub release is a flat list of at most 1,000 files. A hive-partitioned copy is one
DuckDB statement away (README).

Rows are read from SQLite and written in batches: memory does not grow with the table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

ROW_GROUP = 20_000  # rows per row group, written one at a time

# SQLite's declared type -> Arrow's (by SQLite's affinity rules, roughly).
TYPES = {"INTEGER": "int64", "INT": "int64", "REAL": "float64", "FLOAT": "float64", "TEXT": "string",
         "BLOB": "binary"}

# The order rows are written in: channel first, then time where the table has one.
TIME_COLUMNS = ("date", "fetched_at", "at", "first_seen_at")


def arrow_type(declared: str):
    import pyarrow as pa

    return getattr(pa, TYPES.get((declared or "TEXT").upper().split("(")[0], "string"))()


def table_schema(conn: sqlite3.Connection, table: str, described: dict):
    """The Arrow schema of a table: its columns, types and descriptions."""
    import pyarrow as pa

    columns = (described.get("columns") or {})
    fields = [pa.field(name, arrow_type(declared), metadata={"description": columns[name]} if columns.get(name) else None)
              for _, name, declared, *_ in conn.execute(f"pragma table_info([{table}])")]
    about = described.get("description") or described.get("description_html")
    return pa.schema(fields, metadata={"table": table, **({"description": about.strip()} if about else {})})


def order_by(names: list[str]) -> str:
    keys = [c for c in ("channel", "username") if c in names][:1]
    keys += [c for c in TIME_COLUMNS if c in names][:1]
    return ", ".join(f"[{c}]" for c in keys + ["rowid"])


def write_table(conn: sqlite3.Connection, table: str, out: Path, described: dict) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = table_schema(conn, table, described)
    cursor = conn.execute(f"select * from [{table}] order by {order_by(schema.names)}")
    rows = 0
    tmp = out.with_name(out.name + ".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        while batch := cursor.fetchmany(ROW_GROUP):
            arrays = [pa.array([row[i] for row in batch], type=field.type) for i, field in enumerate(schema)]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += len(batch)
    tmp.replace(out)
    return rows


def write_parquet(db_path: Path, out_dir: Path, tables: list[str], metadata: dict) -> dict[str, int]:
    """`<table>.parquet` in `out_dir` for each of `tables`; returns rows per table."""
    described = metadata.get("databases", {}).get("telegram", {}).get("tables", {}) or {}
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {table: write_table(conn, table, out_dir / f"{table}.parquet", described.get(table) or {})
                for table in tables}
    finally:
        conn.close()
