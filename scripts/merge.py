"""Sharded crawls: which channels a shard crawls, and merging the shards' files into one.

When channels are many, the scheduled update crawls them in N shards, one machine each
(.github/workflows/update.yml): every shard restores the previous release, crawls the
channels whose name hashes to it (`crawl --shard i/N`) and derives them; one final job
merges the shards into the published files:

    telegram-datasette merge --shards N --from shards --before before --db data/telegram.db

`--db` (with archive.db and media.db beside it) holds the previous release (`restore`
put it there, and an untouched copy in `--before`); `--from` holds a folder per shard,
`shard-<i>`, with the files that shard's crawl left. For each channel, its rows in every
table of telegram.db are replaced by those of the shard that crawled it; the rows of a
shard that is missing (its job failed) stay as the previous release had them.

Fetch ids: every shard numbers its new fetches after the last id of the previous release
(`base`), so they collide. The merge keeps the previous release's ids and moves each
shard's new ones up, past those of the shards before it (`shift`), in archive.db and in
everything in telegram.db that cites them (`fetches.id`, every `fetch_id` column), so
every citation still names the page it came from. The shift depends only on the files
given, so merging again gives the same files (idempotent). Media downloads (media.db
`fetches`) are numbered the same way; files, pages and bodies are content-addressed
and added once.

The search index, languages and places come from the shards as they derived them (no
work is done again): each post's indexed stems are copied and put in the index.
Everything runs in SQLite (ATTACH and INSERT ... SELECT, one channel set per shard), so
memory does not grow with the files.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import click

from .schema import (DEFAULT_DB, FTS_COLUMNS, FTS_TABLE, QUEUE_TABLE, STEMS_TABLE, archive_beside, media_beside,
                     writing)

SHARD_FOLDER = "shard-{index}"  # the workflow's artifact names: shard-0, shard-1, ...
FILES = ("telegram.db", "archive.db", "media.db")


# ---------------------------------------------------------------- which shard


def shard_of(channel: str, count: int) -> int:
    """The shard (0 to count - 1) a channel belongs to: a hash of its name, case
    folded, the same on every machine and run (not Python's hash, which is salted)."""
    digest = hashlib.sha256(channel.lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """"i/N" -> (i, N), 0 <= i < N; ValueError with the rule otherwise."""
    index, _, count = text.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()) or not 0 <= int(index) < int(count):
        raise ValueError(f"{text!r} is not a shard: write i/N, with 0 <= i < N (e.g. 0/4)")
    return int(index), int(count)


def in_shard(channels: list[str], index: int, count: int) -> list[str]:
    return [c for c in channels if shard_of(c, count) == index]


# ---------------------------------------------------------------- merge


@dataclass
class MergeResult:
    merged: list[int] = field(default_factory=list)  # shard indexes merged
    missing: list[int] = field(default_factory=list)  # shards without files: kept as before
    channels: dict[int, list[str]] = field(default_factory=dict)  # shard -> channels taken from it
    fetches: int = 0  # new archive fetches added
    posts: int = 0  # posts now in the merged telegram.db


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    return conn


def max_value(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0] or 0
    except sqlite3.OperationalError:  # no such table: nothing numbered yet
        return 0
    finally:
        conn.close()


def last_fetch_id(db_path: Path, archive_path: Path) -> int:
    """The last archive fetch id these files use (archive.db's, or one telegram.db cites)."""
    from .workflow import last_cited_fetch_id

    cited = last_cited_fetch_id(db_path) if db_path.exists() else 0
    return max(cited, max_value(archive_path, "select max(id) from fetches"))


def columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"pragma {schema}.table_info([{table}])")]


def tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        f"select name from {schema}.sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")]


def shifted(column: str, base: int, shift: int) -> str:
    """A fetch id column of a shard, as the merged file numbers it."""
    return f"case when [{column}] > {base} then [{column}] + {shift} else [{column}] end"


def copy_rows(conn, table: str, where: str = "", *, verb: str = "insert", fetch_ids=(), base=0, shift=0,
              skip=()) -> int:
    """INSERT ... SELECT of `table` from the attached shard into main, by column name
    (the columns both have), fetch id columns shifted."""
    names = [c for c in columns(conn, "main", table) if c in columns(conn, "shard", table) and c not in skip]
    values = ", ".join(shifted(c, base, shift) if c in fetch_ids else f"[{c}]" for c in names)
    target = ", ".join(f"[{c}]" for c in names)
    return conn.execute(f"{verb} into main.[{table}] ({target}) select {values} from shard.[{table}] {where}").rowcount


def channel_column(conn, table: str) -> str | None:
    names = columns(conn, "main", table)
    return next((c for c in ("channel", "username") if c in names), None)


# Tables merged by hand: the search index (with FTS5's own tables) and its bookkeeping,
# fetches (renumbered), and sqlite-utils' record of migrations (the same in every file of
# one schema version).
SPECIAL = {STEMS_TABLE, QUEUE_TABLE, "fetches", "_sqlite_migrations"}


def by_hand(table: str) -> bool:
    return table in SPECIAL or table == FTS_TABLE or table.startswith(f"{FTS_TABLE}_")


def owners(shards: dict[int, Path], count: int, base: int) -> dict[str, int]:
    """Channel -> the shard whose rows of it the merge takes: the shard it hashes to
    when that shard is here; a channel another shard fetched in this run (a source
    reached through forwards) from the first shard that fetched it. Channels no shard
    is here for keep the previous release's rows."""
    names: dict[str, str] = {}
    fetched: dict[str, set[int]] = {}
    for index, folder in shards.items():
        conn = sqlite3.connect(f"file:{folder / 'telegram.db'}?mode=ro", uri=True)
        try:
            for (name,) in conn.execute("select username from channels union select channel from posts"):
                names.setdefault(name, name)
            for (name,) in conn.execute("select distinct channel from fetches where id > ? and channel is not null",
                                        [base]):
                names.setdefault(name, name)
                fetched.setdefault(name, set()).add(index)
        finally:
            conn.close()
    chosen = {}
    for name in names:
        home = shard_of(name, count)
        by = fetched.get(name, set())
        if by and home not in by:
            chosen[name] = min(by)
        elif home in shards:
            chosen[name] = home
    return chosen


def merge_telegram(conn, owned: list[str], base: int, shift: int) -> None:
    """One shard's channels into main (in the caller's transaction)."""
    from .search import _unpack

    conn.execute("delete from temp.owned")
    conn.executemany("insert into temp.owned (name) values (?)", [(n,) for n in owned])
    mine = "in (select name from temp.owned)"
    fts_columns = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    marks = ", ".join("?" * len(FTS_COLUMNS))

    # The search index of these channels' posts, out (FTS5 deletes with the indexed values).
    conn.execute("delete from temp.gone")
    conn.execute(f"insert into temp.gone (rowid) select rowid from main.posts where channel {mine}")
    for rowid, stems in conn.execute(f"select rowid, stems from main.[{STEMS_TABLE}] where channel {mine}"):
        conn.execute(f"insert into main.[{FTS_TABLE}] ([{FTS_TABLE}], rowid, {fts_columns}) values ('delete', ?, {marks})",
                     [rowid, *_unpack(stems)])
    conn.execute(f"delete from main.[{STEMS_TABLE}] where channel {mine}")

    # Every table with a channel column: these channels' rows, as the shard has them.
    for table in tables(conn, "main"):
        column = channel_column(conn, table)
        if by_hand(table) or column is None or table not in tables(conn, "shard"):
            continue
        conn.execute(f"delete from main.[{table}] where [{column}] {mine}")
        copy_rows(conn, table, f"where [{column}] {mine} order by rowid", fetch_ids=("fetch_id",),
                  base=base, shift=shift)

    # Tables of neither kind (problems, dataset_info...): what the shard adds. An integer
    # `id` key is the merged file's own numbering, so it is left to it (problems are kept
    # once per source and message by their unique index).
    for table in tables(conn, "main"):
        if by_hand(table) or channel_column(conn, table) or table not in tables(conn, "shard"):
            continue
        pk = [r[1] for r in conn.execute(f"pragma main.table_info([{table}])") if r[5]]
        copy_rows(conn, table, "order by rowid", verb="insert or ignore", skip=("id",) if pk == ["id"] else ())

    # The shard's new fetches, renumbered.
    copy_rows(conn, "fetches", f"where id > {base}", verb="insert or replace", fetch_ids=("id",),
              base=base, shift=shift)

    # The index of the copied posts, from the stems the shard indexed (mapped to main's rowids).
    conn.execute(
        f"insert into main.[{STEMS_TABLE}] (rowid, channel, post_id, language, digest, stems) "
        f"select p.rowid, s.channel, s.post_id, s.language, s.digest, s.stems from shard.[{STEMS_TABLE}] s "
        "join shard.posts sp on sp.rowid = s.rowid and sp.channel = s.channel and sp.id = s.post_id "
        f"join main.posts p on p.channel = s.channel and p.id = s.post_id where s.channel {mine}")
    for rowid, stems in conn.execute(f"select rowid, stems from main.[{STEMS_TABLE}] where channel {mine}"):
        conn.execute(f"insert into main.[{FTS_TABLE}] (rowid, {fts_columns}) values (?, {marks})",
                     [rowid, *_unpack(stems)])
    # The triggers queued every row moved; what the shard had still to derive stays queued.
    conn.execute(f"delete from main.[{QUEUE_TABLE}] where rowid in (select rowid from temp.gone) "
                 f"or rowid in (select rowid from main.posts where channel {mine})")
    conn.execute(
        f"insert or ignore into main.[{QUEUE_TABLE}] (rowid) select p.rowid from shard.[{QUEUE_TABLE}] q "
        "join shard.posts sp on sp.rowid = q.rowid join main.posts p on p.channel = sp.channel and p.id = sp.id "
        f"where p.channel {mine}")


def merge_archive(conn, base: int, shift: int) -> int:
    """One shard's new archive fetches (renumbered) and the bodies they need."""
    new = f"select sha256 from shard.fetches where id > {base}"
    copy_rows(conn, "bodies", f"where sha256 in ({new})", verb="insert or ignore")
    if "body_parts" in tables(conn, "shard"):
        copy_rows(conn, "body_parts", f"where sha256 in ({new})", verb="insert or ignore")
    return copy_rows(conn, "fetches", f"where id > {base}", verb="insert or replace", fetch_ids=("id",),
                     base=base, shift=shift)


def merge_media(conn, base: int, shift: int) -> None:
    """One shard's new media downloads (renumbered) and the files they stored."""
    copy_rows(conn, "files", f"where sha256 in (select sha256 from shard.fetches where id > {base})",
              verb="insert or ignore")
    copy_rows(conn, "fetches", f"where id > {base}", verb="insert or replace", fetch_ids=("id",),
              base=base, shift=shift)


def schema_versions(path: Path) -> set[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return set(conn.execute("select migration_set, name from _sqlite_migrations"))
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


class MergeError(Exception):
    pass


def merge(db_path: Path, shards_dir: Path, count: int, before_dir: Path, echo=print) -> MergeResult:
    """Merge the shards of `shards_dir` (shard-0 ... shard-<count-1>) into `db_path` and
    the archive and media store beside it, which hold the previous release (as `before_dir`
    does, untouched: the ids it used are the `base` every shard numbered after)."""
    from .schema import open_archive, open_db, open_media

    result = MergeResult()
    shards = {}
    for index in range(count):
        folder = shards_dir / SHARD_FOLDER.format(index=index)
        if (folder / "telegram.db").exists():
            shards[index] = folder
        else:
            result.missing.append(index)
    archive_path, media_path = archive_beside(db_path), media_beside(db_path)
    base = last_fetch_id(before_dir / "telegram.db", before_dir / "archive.db")
    media_base = max_value(before_dir / "media.db", "select max(id) from fetches")
    open_db(db_path).close()  # created (first run) or upgraded, as a crawl would
    open_archive(archive_path).close()
    if any((folder / "media.db").exists() for folder in shards.values()):
        open_media(media_path).close()
    want = schema_versions(db_path)
    for index, folder in shards.items():
        if schema_versions(folder / "telegram.db") != want:
            raise MergeError(f"{folder / 'telegram.db'} has another schema than {db_path} (written by another "
                             "version of telegram-datasette?): shards must be crawled by the version that merges them")
    chosen = owners(shards, count, base)
    # Each shard's new ids go after those of the shards before it: `top` is the last id used.
    top, media_top = base, media_base
    for index, folder in shards.items():
        owned = sorted(name for name, shard in chosen.items() if shard == index)
        shift = top - base
        shard_top = last_fetch_id(folder / "telegram.db", folder / "archive.db")
        top = max(top, shard_top + shift)
        with closing(connect(archive_path)) as conn:
            if (folder / "archive.db").exists():
                conn.execute("attach database ? as shard", [f"file:{folder / 'archive.db'}?mode=ro"])
                conn.execute("begin")
                result.fetches += merge_archive(conn, base, shift)
                conn.execute("commit")
        with closing(connect(db_path)) as conn:
            conn.execute("attach database ? as shard", [f"file:{folder / 'telegram.db'}?mode=ro"])
            conn.execute("create temp table if not exists owned (name text primary key)")
            conn.execute("create temp table if not exists gone (rowid integer primary key)")
            conn.execute("begin")
            merge_telegram(conn, owned, base, shift)
            conn.execute("commit")
        if (folder / "media.db").exists():
            media_shift = media_top - media_base
            media_top = max(media_top, max_value(folder / "media.db", "select max(id) from fetches") + media_shift)
            with closing(connect(media_path)) as conn:
                conn.execute("attach database ? as shard", [f"file:{folder / 'media.db'}?mode=ro"])
                conn.execute("begin")
                merge_media(conn, media_base, media_shift)
                conn.execute("commit")
        result.merged.append(index)
        result.channels[index] = owned
        echo(f"shard {index}/{count}: {len(owned)} channels from {folder}")
    db = open_db(db_path)
    try:
        from .derive import derive, queued
        from .search import requeue_moved_rows

        with db.atomic():
            requeue_moved_rows(db.conn)
        if queued(db):  # what a shard had not derived yet (an interrupted derive)
            echo(f"deriving {queued(db)} posts the shards left queued")
            derive(db)
        result.posts = db.execute("select count(*) from posts").fetchone()[0]
    finally:
        db.close()
    return result




# ---------------------------------------------------------------- the command


@click.command("merge")
@click.option("--shards", "count", type=click.IntRange(min=1), required=True,
              help="How many shards the channels were crawled in (the workflow's SHARDS).")
@click.option("--from", "shards_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("shards"),
              show_default=True, help="The folder holding shard-0, shard-1, ... (each a shard's telegram.db, "
              "archive.db and media.db).")
@click.option("--before", "before_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("before"),
              show_default=True, help="The previous release, untouched (as `restore` leaves it).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
              show_default=True, help="The previous release's telegram.db, merged into in place "
              "(archive.db and media.db beside it).")
def merge_command(count, shards_dir, before_dir, db_path):
    """Merge the databases of a sharded crawl into one (each channel from its shard)."""
    from .workflow import annotate

    with writing(db_path):
        try:
            result = merge(db_path, shards_dir, count, before_dir, echo=lambda line: click.echo(line, err=True))
        except MergeError as error:
            raise click.ClickException(str(error)) from None
    if result.missing:
        kept = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            names = [r[0] for r in kept.execute("select username from channels order by username")]
        finally:
            kept.close()
        taken = {name for channels in result.channels.values() for name in channels}
        for index in result.missing:
            mine = [n for n in names if shard_of(n, count) == index and n not in taken]
            annotate("error", f"shard {index}/{count} left no files in {shards_dir / SHARD_FOLDER.format(index=index)} "
                     f"(its job failed): its {len(mine)} channels are kept as the previous release had them "
                     f"({', '.join(mine[:10])}{', ...' if len(mine) > 10 else ''})", "Shard missing")
    click.echo(f"merged {len(result.merged)} of {count} shards into {db_path}: {result.fetches} new fetches, "
               f"{result.posts} posts" + (f"; shards {', '.join(map(str, result.missing))} missing, their channels "
                                          "unchanged" if result.missing else ""))
