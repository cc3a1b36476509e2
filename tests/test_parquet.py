"""The Parquet export (scripts/parquet.py) read back by DuckDB: the same answers as SQLite
for every canned query of metadata.yml that does not need the search index."""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from telegram_datasette.parquet import write_parquet
from telegram_datasette.publish import site_metadata
from telegram_datasette.workflow import public_tables

duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install -r requirements-dev.txt)")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parent.parent
QUERIES = yaml.safe_load((ROOT / "metadata.yml").read_text())["databases"]["telegram"]["queries"]
NEEDS_SEARCH = {name for name, q in QUERIES.items() if "_fts" in q["sql"]}
# Queries that select a column that is neither grouped by nor aggregated (SQLite picks a
# row's value; standard SQL, DuckDB's included, refuses): none; keep it so.
SQLITE_ONLY: set[str] = set()


def to_duckdb(sql: str) -> str:
    """SQLite's spelling of the few things DuckDB spells otherwise: named parameters
    ($name), char() (chr), `a is b` (is not distinct from), `+column` (an index hint),
    julianday() (a macro below)."""
    sql = re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql)
    sql = re.sub(r"\bis (?!not\b|null\b)(\w+\.\w+)", r"is not distinct from \1", sql)
    sql = re.sub(r"\+(\w+\.\w+)", r"\1", sql)
    return re.sub(r"\bchar\(([\d, ]+)\)", lambda m: "(" + " || ".join(f"chr({n})" for n in m[1].split(",")) + ")", sql)


@pytest.fixture(scope="module")
def exported(published_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("parquet")
    rows = write_parquet(published_db, out, public_tables(published_db), site_metadata())
    return out, rows


@pytest.fixture(scope="module")
def duck(published_db, exported):
    """DuckDB with a view per table over its Parquet file, and the views of telegram.db."""
    out, rows = exported
    conn = duckdb.connect()
    conn.execute("create macro julianday(t) as julian(cast(t as timestamptz))")
    for table in rows:
        conn.execute(f"create view {table} as select * from read_parquet('{out / table}.parquet')")
    sqlite = sqlite3.connect(published_db)
    for name, sql in sqlite.execute("select name, sql from sqlite_master where type = 'view'"):
        conn.execute(to_duckdb(sql))
    sqlite.close()
    return conn


def test_every_public_table_with_its_types_and_descriptions(published_db, exported):
    out, rows = exported
    sqlite = sqlite3.connect(published_db)
    described = site_metadata()["databases"]["telegram"]["tables"]
    for table, count in rows.items():
        assert count == sqlite.execute(f"select count(*) from [{table}]").fetchone()[0]
        schema = pq.read_schema(out / f"{table}.parquet")
        columns = [(r[1], r[2]) for r in sqlite.execute(f"pragma table_info([{table}])")]
        assert schema.names == [name for name, _ in columns]
        for name, declared in columns:
            expected = {"INTEGER": "int64", "REAL": "double", "FLOAT": "double", "TEXT": "string"}.get(declared, "string")
            assert str(schema.field(name).type) == expected, (table, name, declared)
    posts = pq.read_schema(out / "posts.parquet")
    assert posts.field("views").metadata[b"description"].decode() == described["posts"]["columns"]["views"]
    assert posts.metadata[b"table"] == b"posts"
    assert {"posts", "media", "view_snapshots", "channels", "fetches"} <= rows.keys()


def test_rows_are_ordered_by_channel_and_time(exported, duck):
    got = duck.execute("select channel, date from posts").fetchall()
    assert got == sorted(got, key=lambda r: (r[0], r[1] or ""))


def normal(rows: list[tuple]) -> list[tuple]:
    """Rows comparable across engines: floats to 6 places, in a fixed order (rows that tie
    on a query's ORDER BY may come in either order)."""
    rows = [tuple(round(v, 6) if isinstance(v, float) and math.isfinite(v) else v for v in row) for row in rows]
    return sorted(rows, key=repr)


@pytest.mark.parametrize("name", sorted(set(QUERIES) - NEEDS_SEARCH))
@pytest.mark.parametrize("channel", ["", "TestEmb"])
def test_duckdb_over_parquet_answers_the_canned_queries_as_sqlite_does(published_db, duck, name, channel):
    query = QUERIES[name]
    params = {p: "" for p in query.get("params") or []}
    if "channel" in params:
        params["channel"] = channel
    elif channel:
        pytest.skip("the query has no channel parameter")
    sqlite = sqlite3.connect(published_db)
    try:
        expected = sqlite.execute(query["sql"], params).fetchall()
    finally:
        sqlite.close()
    if name in SQLITE_ONLY:
        with pytest.raises(duckdb.BinderException, match="must appear in the GROUP BY clause"):
            duck.execute(to_duckdb(query["sql"]), params)
        return
    got = duck.execute(to_duckdb(query["sql"]), params).fetchall()
    assert expected, f"{name} gives no rows on the test data: it compares nothing"
    assert normal(got) == normal(expected)


# ---------------------------------------------------------------- Datasette Lite


@pytest.mark.asyncio
async def test_the_home_page_opens_a_small_database_in_datasette_lite(published_db, monkeypatch):
    from conftest import make_datasette

    from telegram_datasette.plugins import site

    html = (await make_datasette(published_db).client.get("/")).text
    assert 'href="https://lite.datasette.io/?url=http://localhost/telegram.db"' in html
    monkeypatch.setattr(site, "LITE_MAX_BYTES", published_db.stat().st_size - 1)  # too big for a browser
    html = (await make_datasette(published_db).client.get("/")).text
    assert "lite.datasette.io" not in html and 'href="/telegram.db"' in html
