"""scripts/schema.py owns the schema: a new file gets every table through the migrations,
and a telegram.db written by 0.1.1 (before migrations, tests/fixtures/legacy) upgrades in
place with nothing lost."""

import sqlite3
from pathlib import Path

import pytest

from telegram_datasette.derive import derive
from telegram_datasette.search import fts_query
from telegram_datasette.schema import (
    FTS_TABLE, QUEUE_TABLE, TABLES, migrations, open_archive, open_db, schema_version,
)

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy" / "telegram-0.1.1.sql"
# Tables of the legacy file whose every row must survive unchanged.
KEPT = ["channels", "channel_stats", "posts", "post_versions", "post_events", "view_snapshots",
        "reaction_snapshots", "media", "poll_options", "links", "hashtags", "mentions", "reactions",
        "places", "fetches", "problems", "crawl_state", "dataset_info"]


def columns(path, table) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"pragma table_info([{table}])")]
    finally:
        conn.close()


def rows(path, table, names):
    """Every row's rowid and these columns (later migrations add columns)."""
    conn = sqlite3.connect(path)
    try:
        listed = ", ".join(f"[{n}]" for n in names)
        return sorted(map(repr, conn.execute(f"select rowid, {listed} from [{table}]")))
    finally:
        conn.close()


def objects(db) -> dict[str, str]:
    return {r[0]: r[1] for r in db.execute("select name, type from sqlite_master where name not like 'sqlite_%'")}


@pytest.fixture
def legacy(tmp_path) -> Path:
    path = tmp_path / "telegram.db"
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY.read_text())
    conn.close()
    return path


def test_a_new_database_gets_every_table_index_and_trigger(tmp_path):
    db = open_db(tmp_path / "telegram.db")
    names = objects(db)
    assert set(TABLES) <= {n for n, t in names.items() if t == "table"}
    assert {FTS_TABLE, QUEUE_TABLE, "posts_fts_stems"} <= set(names)
    assert {"posts_search_ai", "posts_search_au", "media_search_ai"} <= {n for n, t in names.items() if t == "trigger"}
    assert schema_version(db) == len(migrations.applied(db)) >= 3 and migrations.pending(db) == []
    again = open_db(tmp_path / "telegram.db")  # opening again changes nothing
    assert objects(again) == names and schema_version(again) == schema_version(db)


def test_the_archive_has_its_own_migrations(tmp_path):
    adb = open_archive(tmp_path / "archive.db")
    assert {"bodies", "body_parts", "fetches"} <= set(adb.table_names())
    assert [r[0] for r in adb.execute("select name from _sqlite_migrations where migration_set = 'archive'")] == ["a001_tables", "a002_fetch_ids_never_reused", "a003_body_parts"]


def test_a_0_1_1_database_upgrades_in_place_with_nothing_lost(legacy):
    names = {table: columns(legacy, table) for table in KEPT}
    before = {table: rows(legacy, table, names[table]) for table in KEPT}
    assert before["posts"] and before["places"] and before["reaction_snapshots"]
    conn = sqlite3.connect(legacy)
    search = "select rowid from posts_fts where posts_fts match ? order by rowid"
    found_before = conn.execute(search, ["брифинг"]).fetchall()
    conn.close()
    assert found_before

    db = open_db(legacy)
    assert migrations.pending(db) == []
    for table in KEPT:
        assert rows(legacy, table, names[table]) == before[table], table
    assert "posts_fts_pending" not in objects(db) and QUEUE_TABLE in objects(db)
    # the index was kept, not rebuilt: the same posts match, nothing waits to be derived
    assert db.execute(search, ["брифинг"]).fetchall() == found_before
    assert db.execute(f"select count(*) from [{QUEUE_TABLE}]").fetchone()[0] == 0
    assert derive(db) == 0
    assert db.execute("pragma integrity_check").fetchall() == [("ok",)]
    db.execute(f"insert into {FTS_TABLE}({FTS_TABLE}) values ('integrity-check')")  # raises if corrupt


def test_an_upgraded_database_keeps_working(legacy):
    """The triggers, renamed with their queue, still queue changes for the derive step."""
    db = open_db(legacy)
    post = db.execute("select rowid, channel, id, text from posts order by rowid limit 1").fetchone()
    db.execute("update posts set text = ? where rowid = ?", [post[3] + " Зеленоградии", post[0]])
    db.conn.commit()
    assert derive(db) == 1
    stem = fts_query("Зеленоградия")  # the stemmed query, as the site's search box makes it
    assert db.execute(f"select rowid from {FTS_TABLE} where {FTS_TABLE} match ?", [stem]).fetchall() == [(post[0],)]


def test_every_post_has_a_key_that_datasette_follows(legacy):
    """m005: `posts.post` is the primary key, and the rows about a post, the post's
    channel, reply target, original and fetch are foreign keys (filled in for old rows)."""
    db = open_db(legacy)
    assert db["posts"].pks == ["post"]
    assert not list(db.query("select post from posts where post is not channel || '/' || id"))
    outbound = {(fk.column, fk.other_table, fk.other_column) for fk in db["posts"].foreign_keys}
    assert outbound == {("channel", "channels", "username"), ("reply_to_post", "posts", "post"),
                        ("forwarded_from_post", "posts", "post"), ("fetch_id", "fetches", "id")}
    for table in ("media", "links", "hashtags", "mentions", "reactions", "places", "post_versions",
                  "post_events", "view_snapshots", "reaction_snapshots", "poll_options"):
        assert ("post", "posts", "post") in {(fk.column, fk.other_table, fk.other_column)
                                             for fk in db[table].foreign_keys}, table
        assert db[table].columns[0].name == "post"
        assert not list(db.query(f"select 1 from [{table}] where post is not channel || '/' || post_id")), table
    replies = list(db.query("select reply_to_post, channel, reply_to_id from posts where reply_to_id is not null"))
    assert replies and all(r["reply_to_post"] == f"{r['channel']}/{r['reply_to_id']}" for r in replies)
    assert db.execute("pragma foreign_key_check(media)").fetchall() == []
