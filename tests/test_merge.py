"""Sharded crawls merged (scripts/merge.py): 60 channels of the fake Telegram crawled in 4
shards and merged give the same rows as one crawl of all 60, run after run.

The fake's clock is held still, so that both ways fetch the same bytes (its media URLs
carry the time); what the crawler itself stamps (when a page was fetched, seen, how long
it took) differs between any two runs and is compared as "a time". Fetch ids are compared
as the URL they name: the merge numbers each shard's fetches after the others'.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import types
from collections import Counter
from pathlib import Path

import pytest

import devtools.fake_telegram as fake_module
from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.config import load_config
from telegram_datasette.crawl import run_crawl
from telegram_datasette.merge import SHARD_FOLDER, in_shard, merge, parse_shard, shard_of
from telegram_datasette.schema import open_archive, open_db
from telegram_datasette.workflow import public_tables

CHANNELS = [f"chan{i:02d}" for i in range(60)]
SHARDS = 4


def fake_telegram() -> FakeTelegram:
    return FakeTelegram([FakeChannel.demo(name, 6 + i % 9, seed=i) for i, name in enumerate(CHANNELS)])


@pytest.fixture
def still_clock(monkeypatch):
    monkeypatch.setattr(fake_module, "time", types.SimpleNamespace(time=lambda: 1_780_000_000.0, sleep=time.sleep))


def crawl_into(folder: Path, base_url: str, channels: list[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    config = {**load_config(None), "base_url": base_url, "requests_per_second": 0, "media_requests_per_second": 0,
              "refresh_days": 100000, "follow_forwards": "off"}
    db, adb = open_db(folder / "telegram.db"), open_archive(folder / "archive.db")
    try:
        return run_crawl(channels, db, adb, config, echo=lambda line: None)
    finally:
        db.close(), adb.close()


def copy_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("telegram.db", "archive.db", "media.db"):
        if (source / name).exists():
            conn, out = sqlite3.connect(source / name), sqlite3.connect(target / name)
            conn.backup(out)
            conn.close(), out.close()


def sharded_run(tmp: Path, url: str, previous: Path | None, name: str) -> Path:
    """As the workflow does it: every shard starts from the previous release and crawls
    its channels; the merge starts from the previous release too."""
    shards = tmp / f"{name}-shards"
    for index in range(SHARDS):
        folder = shards / SHARD_FOLDER.format(index=index)
        if previous:
            copy_files(previous, folder)
        crawl_into(folder, url, in_shard(CHANNELS, index, SHARDS))
    out, before = tmp / name, tmp / f"{name}-before"
    before.mkdir()
    if previous:
        copy_files(previous, out), copy_files(previous, before)
    result = merge(out / "telegram.db", shards, SHARDS, before, echo=lambda line: None)
    assert result.merged == list(range(SHARDS)) and not result.missing
    return out


def normal(table: str, row: dict, urls: dict) -> tuple:
    """A row as any run of the same crawl gives it (see the module's docstring)."""
    out = []
    for column, value in sorted(row.items()):
        if column.endswith("_at") or column in ("at", "duration_ms"):
            value = "a time" if value is not None else None
        elif column == "fetch_id" or (table == "fetches" and column == "id"):
            value = urls.get(value, value)
        elif table == "problems" and column == "id":
            continue
        out.append((column, value))
    return tuple(out)


def dataset(folder: Path) -> dict[str, Counter]:
    """Every public table of telegram.db, whole, plus what archive.db and media.db hold."""
    conn = sqlite3.connect(folder / "telegram.db")
    conn.row_factory = sqlite3.Row
    try:
        urls = dict(conn.execute("select id, url from fetches").fetchall())
        tables = {t: Counter(normal(t, dict(r), urls) for r in conn.execute(f"select * from [{t}]"))
                  for t in public_tables(folder / "telegram.db")}
        tables["search: санкции"] = Counter(r[0] for r in conn.execute(
            "select posts.post from posts_fts join posts on posts.rowid = posts_fts.rowid where posts_fts match 'санкц*'"))
    finally:
        conn.close()
    archive = sqlite3.connect(folder / "archive.db")
    try:
        tables["archive fetches"] = Counter(archive.execute("select url, status, sha256, bytes, channel, source from fetches"))
        tables["archive bodies"] = Counter(archive.execute("select sha256, bytes from bodies"))
    finally:
        archive.close()
    media = sqlite3.connect(folder / "media.db")
    try:
        tables["media files"] = Counter(media.execute("select sha256, bytes from files"))
        tables["media fetches"] = Counter(media.execute("select item, url, status, sha256 from fetches"))
    finally:
        media.close()
    return tables


def assert_same(one: dict, sharded: dict) -> None:
    assert one.keys() == sharded.keys()
    for table in one:
        assert one[table] == sharded[table], (table, (one[table] - sharded[table]), (sharded[table] - one[table]))


def citations_hold(folder: Path) -> None:
    """Every fetch telegram.db cites is archive.db's fetch of that id: same URL and bytes."""
    conn = sqlite3.connect(folder / "telegram.db")
    try:
        conn.execute("attach database ? as archive", [str(folder / "archive.db")])
        assert conn.execute("select count(*) from fetches f left join archive.fetches a on a.id = f.id "
                            "where a.url is not f.url or a.sha256 is not f.sha256").fetchone() == (0,)
        assert conn.execute("select count(*) from posts where fetch_id not in (select id from fetches)").fetchone() == (0,)
        assert conn.execute("select count(*) from derive_queue").fetchone() == (0,)
        assert conn.execute("select count(*) from posts p left join posts_fts_stems s on s.rowid = p.rowid "
                            "where s.post_id is not p.id or s.channel is not p.channel").fetchone() == (0,)
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        conn.execute("insert into posts_fts(posts_fts) values ('integrity-check')")
    finally:
        conn.close()


def test_shards_are_a_stable_split():
    assert [shard_of(name, SHARDS) for name in ("RusEmbNo", "rusembno")] == [shard_of("RusEmbNo", SHARDS)] * 2
    parts = [in_shard(CHANNELS, index, SHARDS) for index in range(SHARDS)]
    assert sorted(sum(parts, [])) == CHANNELS and all(parts)  # each channel in one shard, none empty
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b"):
        with pytest.raises(ValueError, match="is not a shard"):
            parse_shard(bad)


def test_four_shards_merged_equal_one_crawl_run_after_run(tmp_path, still_clock):
    fake = fake_telegram()
    with fake.serve() as url:
        assert crawl_into(tmp_path / "one", url, CHANNELS) == 0
        merged = sharded_run(tmp_path, url, None, "merged1")
        assert_same(dataset(tmp_path / "one"), dataset(merged))
        citations_hold(merged)

        # A second run from the first's release: edits, deletions, new posts and more views
        # in channels of every shard.
        edited = set()
        for index in range(SHARDS):
            name = in_shard(CHANNELS, index, SHARDS)[0]
            posts = [p for p in fake.channel(name).posts if p.kind == "message"]
            fake.edit_post(name, posts[-1].id, f"Новый текст: санкции {index}")
            edited.add(f"{name}/{posts[-1].id}")
            fake.delete_post(name, posts[0].id)
            fake.add_posts(name, 3)
            fake.grow_views(name, 1.5, add=7)
        assert crawl_into(tmp_path / "one", url, CHANNELS) == 0
        merged2 = sharded_run(tmp_path, url, merged, "merged2")
    second = dataset(merged2)
    assert_same(dataset(tmp_path / "one"), second)
    citations_hold(merged2)
    assert edited <= second["search: санкции"].keys()  # the search index follows the merge
    # The first run's fetches keep their ids; the new ones follow, without a gap per shard.
    ids = lambda folder: [r[0] for r in sqlite3.connect(folder / "archive.db").execute("select id from fetches order by id")]  # noqa: E731
    first, now = ids(merged), ids(merged2)
    assert now[:len(first)] == first and now == list(range(1, len(now) + 1))


def test_merging_again_changes_nothing_and_a_missing_shard_keeps_its_channels(tmp_path, still_clock):
    fake = fake_telegram()
    with fake.serve() as url:
        previous = sharded_run(tmp_path, url, None, "release")
        for name in CHANNELS:
            fake.add_posts(name, 2)
        shards = tmp_path / "shards"
        for index in range(SHARDS):
            folder = shards / SHARD_FOLDER.format(index=index)
            copy_files(previous, folder)
            crawl_into(folder, url, in_shard(CHANNELS, index, SHARDS))
    shutil.rmtree(shards / SHARD_FOLDER.format(index=2))  # its job failed: no files
    out, before = tmp_path / "out", tmp_path / "before"
    copy_files(previous, out), copy_files(previous, before)
    result = merge(out / "telegram.db", shards, SHARDS, before, echo=lambda line: None)
    assert result.merged == [0, 1, 3] and result.missing == [2]
    once = dump(out)
    merge(out / "telegram.db", shards, SHARDS, before, echo=lambda line: None)
    assert dump(out) == once  # idempotent, fetch ids and all
    citations_hold(out)

    failed = set(in_shard(CHANNELS, 2, SHARDS))
    prev, now = dataset(previous), dataset(out)
    for table in ("posts", "post_versions", "media", "channels"):
        column = "username" if table == "channels" else "channel"
        of = lambda rows, keep: Counter({r: n for r, n in rows.items() if (dict(r)[column] in failed) == keep})  # noqa: E731
        assert of(now[table], True) == of(prev[table], True), table  # the failed shard's channels: as before
        assert sum(of(now[table], False).values()) > sum(of(prev[table], False).values()) or table == "channels"
    conn = sqlite3.connect(out / "telegram.db")
    counts = dict(conn.execute("select channel, count(*) from posts group by channel"))
    before_counts = dict(sqlite3.connect(previous / "telegram.db").execute("select channel, count(*) from posts group by channel"))
    assert all(counts[c] == before_counts[c] + (0 if c in failed else 2) for c in CHANNELS)


def dump(folder: Path) -> dict:
    out = {}
    for name in ("telegram.db", "archive.db", "media.db"):
        conn = sqlite3.connect(folder / name)
        try:
            for (table,) in conn.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' "
                                         "and name not like 'posts_fts%' and name != 'derive_queue'"):
                out[f"{name} {table}"] = sorted(map(repr, conn.execute(f"select * from [{table}]")))
        finally:
            conn.close()
    return out
