"""The database schema, in one place: every table, index, trigger and the search index of
`telegram.db`, and the tables of `archive.db`, with their migrations.

Opening a database (`open_db`, `open_archive`) applies the migrations it has not had yet,
so a file written by any earlier version upgrades in place with nothing lost. Migrations
are sqlite-utils' own (`sqlite_utils.migrations`, recorded in `_sqlite_migrations`); the
schema version is the number of migrations applied (`schema_version`). A change to the
schema is a new migration at the end of the list, never an edit of an old one.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

COUNTERS = ("subscribers", "photos", "videos", "files", "links")

# Table -> (columns, primary key), as first created; later migrations add to them.
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...]]] = {
    "channels": (
        {
            "username": str, "channel_id": int, "title": str, "description": str,
            "description_html": str, "avatar_url": str, "verified": int,
            **{c: int for c in COUNTERS},
            **{f"{c}_text": str for c in COUNTERS},
            **{f"{c}_precision": int for c in COUNTERS},
            "first_fetched_at": str, "last_fetched_at": str,
        },
        "username",
    ),
    "channel_stats": (
        {
            "username": str, "fetched_at": str,
            **{c: int for c in COUNTERS},
            **{f"{c}_text": str for c in COUNTERS},
        },
        ("username", "fetched_at"),
    ),
    "posts": (
        {
            "channel": str, "id": int, "url": str, "date": str, "text": str, "html": str,
            "views": int, "views_text": str, "views_precision": int, "edited": int,
            "author": str, "kind": str,
            "forwarded_from_name": str, "forwarded_from_channel": str,
            "forwarded_from_id": int, "forwarded_from_url": str,
            "forwarded_from_author": str,
            "reply_to_id": int, "reply_to_channel": str, "reply_to_author": str,
            "reply_to_text": str, "via_bot": str,
            "link_preview_url": str, "link_preview_site": str, "link_preview_title": str,
            "link_preview_description": str, "link_preview_image": str,
            "grouped_id": str, "album_ids": str, "media_count": int,
            "media_too_big": int, "media_not_supported": int, "open_in_telegram": int,
            "service_text": str, "raw_html": str,
            "language": str, "text_sha256": str, "children_sha256": str, "channel_id": int,
            "first_seen_at": str, "last_seen_at": str, "deleted_at": str,
            "fetch_id": int,
        },
        ("channel", "id"),
    ),
    "post_versions": (
        {
            "channel": str, "post_id": int, "version": int, "text": str, "html": str,
            "text_sha256": str, "edited": int, "first_seen_at": str, "last_seen_at": str,
        },
        ("channel", "post_id", "version"),
    ),
    "post_events": (
        {"channel": str, "post_id": int, "at": str, "event": str, "detail": str},
        ("channel", "post_id", "at", "event"),
    ),
    "view_snapshots": (
        {"channel": str, "post_id": int, "fetched_at": str, "views": int, "views_text": str},
        ("channel", "post_id", "fetched_at"),
    ),
    "reaction_snapshots": (
        {
            "channel": str, "post_id": int, "fetched_at": str, "reaction": str,
            "count": int, "count_text": str,
        },
        ("channel", "post_id", "fetched_at", "reaction"),
    ),
    "media": (
        {
            "channel": str, "post_id": int, "position": int, "kind": str, "message_id": int,
            "url": str, "thumbnail_url": str, "duration_seconds": int, "duration_text": str,
            "title": str, "performer": str, "size_text": str, "width": int, "height": int,
            "latitude": float, "longitude": float, "phone": str, "too_big": int,
            "poll_question": str, "poll_type": str,
        },
        ("channel", "post_id", "position"),
    ),
    "poll_options": (
        {
            "channel": str, "post_id": int, "media_position": int, "position": int,
            "text": str, "percent": int,
        },
        ("channel", "post_id", "media_position", "position"),
    ),
    "links": (
        {"channel": str, "post_id": int, "position": int, "url": str, "domain": str, "text": str},
        ("channel", "post_id", "position"),
    ),
    "hashtags": (
        {"channel": str, "post_id": int, "hashtag": str},
        ("channel", "post_id", "hashtag"),
    ),
    "mentions": (
        {"channel": str, "post_id": int, "username": str},
        ("channel", "post_id", "username"),
    ),
    "reactions": (
        {
            "channel": str, "post_id": int, "reaction": str, "position": int, "emoji": str,
            "custom_emoji_id": str, "count": int, "count_text": str, "paid": int,
        },
        ("channel", "post_id", "reaction"),
    ),
    "places": (
        {
            "channel": str, "post_id": int, "position": int, "name": str, "matched_text": str,
            "country_code": str, "latitude": float, "longitude": float, "kind": str,
            "source": str, "method": str, "geonameid": int, "popup": str,
        },
        ("channel", "post_id", "position"),
    ),
    "fetches": (
        {
            "id": int, "url": str, "fetched_at": str, "status": int, "sha256": str,
            "bytes": int, "duration_ms": int, "channel": str, "posts": int,
            "source": str, "problems": str,
        },
        "id",
    ),
    "problems": (
        {"id": int, "source": str, "seen_at": str, "sha256": str, "message": str},
        "id",
    ),
    # Internal (hidden in metadata.yml): where each channel's crawl stands, what the
    # places step last scanned, and facts about the file itself (demo data or not).
    "crawl_state": (
        {"channel": str, "high_id": int, "low_id": int, "backfill_complete": int, "updated_at": str},
        "channel",
    ),
    "place_scans": (
        {"channel": str, "post_id": int, "text_sha256": str, "children_sha256": str},
        ("channel", "post_id"),
    ),
    "dataset_info": ({"key": str, "value": str}, "key"),
}

# Rows that belong to a post and are replaced whenever the post is observed again.
POST_CHILDREN = ("media", "poll_options", "links", "hashtags", "mentions", "reactions")

INDEXES = [
    # The posts table's default order (metadata sort_desc: date) is Datasette's
    # `order by date desc, channel, id`; its next-page query adds
    # `where date < :d or date is null or (date = :d and ...)`, which with the date index
    # alone becomes a multi-index OR and a sort of every earlier post (over 3 s, a
    # time-out, on 1M posts). This index gives that order directly (2 ms).
    ("posts", [sqlite_utils.db.DescIndex("date"), "channel", "id"]),
    ("posts", ["date"]),
    # A channel's latest posts, first and last post (the channel page): 600 ms -> 1 ms on 1M posts.
    ("posts", ["channel", "date"]),
    ("posts", ["forwarded_from_channel"]),
    ("posts", ["kind"]),
    ("posts", ["deleted_at"]),
    ("links", ["domain"]),
    ("hashtags", ["hashtag"]),
    ("mentions", ["username"]),
    ("fetches", ["sha256"]),
    ("places", ["name"]),
    ("places", ["country_code"]),
]
UNIQUE_INDEXES = [("problems", ["source", "sha256", "message"])]

# --- the full-text index ---------------------------------------------------------
# posts_fts is FTS5 over stems (scripts/search.py makes them), with `posts` as its
# external content. posts_fts_stems keeps what was indexed per row (to delete it
# exactly); derive_queue holds the posts whose derived data (language, search index,
# places) may be stale: triggers queue every post inserted, changed or deleted, and
# every post whose media changed. It is the one way the derive step knows what changed.
FTS_TABLE = "posts_fts"
FTS_COLUMNS = ["text", "link_preview_title", "link_preview_description", "forwarded_from_name"]
TOKENIZE = "unicode61 remove_diacritics 2"
STEMS_TABLE = "posts_fts_stems"
QUEUE_TABLE = "derive_queue"
FTS_RANK = "bm25(10.0, 3.0, 2.0, 1.0)"


def fts_create_sql() -> str:
    columns = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    return f"CREATE VIRTUAL TABLE [{FTS_TABLE}] USING FTS5 ({columns}, tokenize='{TOKENIZE}', content=[posts])"


def queue_triggers(queue: str = QUEUE_TABLE) -> dict[str, str]:
    insert = f"insert or ignore into [{queue}] (rowid)"
    columns = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    media_post = "select rowid from posts where channel = {0}.channel and id = {0}.post_id"
    return {
        "posts_search_ai": f"after insert on posts begin {insert} values (new.rowid); end",
        "posts_search_au": f"after update of {columns} on posts begin {insert} values (new.rowid); end",
        "posts_search_ad": f"after delete on posts begin {insert} values (old.rowid); end",
        "media_search_ai": f"after insert on media begin {insert} {media_post.format('new')}; end",
        "media_search_ad": f"after delete on media begin {insert} {media_post.format('old')}; end",
        "media_search_au": f"after update of title, poll_question on media begin {insert} {media_post.format('new')}; end",
    }


def create_search_index(db: sqlite_utils.Database, queue: str) -> None:
    """The stemmed index, its bookkeeping and triggers; every post queued. An index
    made another way (sqlite-utils' unstemmed enable_fts, say) is replaced."""
    conn = db.conn
    for name in ("posts_ai", "posts_ad", "posts_au", *queue_triggers()):  # sqlite-utils' FTS triggers too
        conn.execute(f"drop trigger if exists [{name}]")
    for name in (FTS_TABLE, STEMS_TABLE, queue, f"{STEMS_TABLE}_version"):
        conn.execute(f"drop table if exists [{name}]")
    conn.execute(fts_create_sql())
    conn.execute(
        f"create table [{STEMS_TABLE}] (rowid integer primary key, channel text, post_id integer, "
        "language text, digest text, stems blob)"
    )
    conn.execute(f"create table [{queue}] (rowid integer primary key)")
    conn.execute(f"insert into [{FTS_TABLE}]([{FTS_TABLE}], rank) values ('rank', ?)", [FTS_RANK])
    for name, body in queue_triggers(queue).items():
        conn.execute(f"create trigger [{name}] {body}")
    conn.execute(f"insert into [{queue}] (rowid) select rowid from posts")


# --- migrations --------------------------------------------------------------------

migrations = Migrations("telegram")


@migrations()
def m001_tables(db):
    """Every table as of 0.1.1. Databases written before migrations existed already
    have them (with columns added over time): what is missing is added, nothing dropped."""
    for name, (columns, pk) in TABLES.items():
        table = db[name]
        if not table.exists():
            table.create(columns, pk=pk, not_null={pk} if isinstance(pk, str) else set(pk))
        else:
            for column, column_type in columns.items():
                if column not in table.columns_dict:
                    table.add_column(column, column_type)
    for name, columns in INDEXES:
        db[name].create_index(columns, if_not_exists=True)
    for name, columns in UNIQUE_INDEXES:
        db[name].create_index(columns, if_not_exists=True, unique=True)


@migrations()
def m002_search_index(db):
    """The stemmed full-text index, with one queue for everything derived from posts.
    0.1.1 files have the same index with the queue named posts_fts_pending: keep the
    index, rename the queue (SQLite rewrites the triggers that name it)."""
    names = {r[0]: r[1] for r in db.execute("select name, sql from sqlite_master")}
    current = (
        names.get(FTS_TABLE) == fts_create_sql() and STEMS_TABLE in names
        and "posts_fts_pending" in names and all(t in names for t in queue_triggers())
    )
    if current:
        db.execute(f"alter table posts_fts_pending rename to [{QUEUE_TABLE}]")
        db.execute(f"drop table if exists [{STEMS_TABLE}_version]")
    else:
        create_search_index(db, QUEUE_TABLE)


@migrations()
def m003_place_scan_digests(db):
    """place_scans keeps one digest of what the places step reads (text, link preview
    title, locations) instead of the post's text and children hashes, which change with
    every reaction count. Posts scanned at their current text keep their scan."""
    from .places import locations, scan_digest

    scanned = [dict(r) for r in db.query(
        "select p.channel, p.id, p.text, p.link_preview_title from posts p join place_scans s "
        "on s.channel = p.channel and s.post_id = p.id where s.text_sha256 is p.text_sha256")]
    db["place_scans"].drop()
    db["place_scans"].create({"channel": str, "post_id": int, "digest": str}, pk=("channel", "post_id"))
    found = locations(db)
    db["place_scans"].insert_all(
        {"channel": p["channel"], "post_id": p["id"],
         "digest": scan_digest(p, found.get((p["channel"], p["id"]), []))} for p in scanned)
    db.execute(f"insert or ignore into [{QUEUE_TABLE}] (rowid) select p.rowid from posts p left join place_scans s "
               "on s.channel = p.channel and s.post_id = p.id where s.post_id is null")


# One row per post and place it mentions (however many times), with the popup of
# datasette-cluster-map: the place, the post's first line and a link to the post's page
# (relative: `posts/<channel>~2F<id>`, the `post` key tilde-encoded, from /telegram/post_places). A mention is kept when it
# is the post's first of that place: no GROUP BY and no ORDER BY, so a page of the view (and
# the map's next page) reads only its rows and a count flattens to a scan of `places` (1M
# places: a page in 1 ms, the count in 0.8 s). `+s.name` keeps the lookups on the key index.
POST_PLACES_SQL = """
select pl.channel, pl.post_id, p.date, pl.name as place,
  (select group_concat(distinct s.matched_text) from places s where s.channel = pl.channel
    and s.post_id = pl.post_id and +s.name is pl.name and s.latitude = pl.latitude
    and s.longitude = pl.longitude) as matched_text,
  (select count(*) from places s where s.channel = pl.channel and s.post_id = pl.post_id
    and +s.name is pl.name and s.latitude = pl.latitude and s.longitude = pl.longitude) as mentions,
  pl.country_code, pl.kind, pl.latitude, pl.longitude,
  json_object(
    'title', pl.name,
    'description', pl.channel || ', ' || substr(p.date, 1, 10) || ': ' || case
      when p.line = '' then '(' || p.kind || ' post without text)'
      when length(p.line) > 140 then rtrim(substr(p.line, 1, 139)) || '…'
      else p.line end,
    'link', 'posts/' || pl.channel || '~2F' || pl.post_id
  ) as popup
from places pl
join (
  select channel, id, date, kind,
    trim(substr(body, 1, instr(body || char(10), char(10)) - 1), char(32, 9, 13)) as line
  from (select channel, id, date, kind, ltrim(coalesce(text, ''), char(32, 9, 10, 13)) as body from posts)
) p on p.channel = pl.channel and p.id = pl.post_id
where pl.latitude is not null and pl.longitude is not null
  and not exists (
    select 1 from places s where s.channel = pl.channel and s.post_id = pl.post_id
      and s.position < pl.position and +s.name is pl.name and s.latitude = pl.latitude
      and s.longitude = pl.longitude)
"""


@migrations()
def m004_post_places_view(db):
    """The `post_places` view, what the map shows (metadata.yml)."""
    db.create_view("post_places", POST_PLACES_SQL.strip(), replace=True)


# --- one key per post, that Datasette can follow ------------------------------------
# `posts.post` is "<channel>/<id>" (as in t.me/<channel>/<id>; usernames have no "/"),
# the posts table's primary key. Every table of rows about one post carries it with a
# foreign key, so Datasette links each row to its post and a post's page lists its media,
# links, reactions, places, versions and snapshots; posts link to their channel, reply
# target, forwarded original and the fetch they were last read from. (Datasette follows
# single-column keys only.) `channel` and `id` stay, unique together.
POST_TABLES = (
    "media", "poll_options", "links", "hashtags", "mentions", "reactions", "places",
    "post_versions", "post_events", "view_snapshots", "reaction_snapshots",
)


def post_key(channel: str | None, post_id: int | None) -> str | None:
    if channel is None or post_id is None:
        return None
    return f"{channel}/{post_id}"


def post_key_sql(channel: str, post_id: str) -> str:
    """The same key as an SQL expression (null when either part is)."""
    return f"({channel} || '/' || {post_id})"


@migrations()
def m005_post_keys(db):
    """`post` keys and foreign keys (see POST_TABLES). Tables are rebuilt (SQLite cannot
    add a primary or foreign key in place) with their rowids, so the search index, whose
    content is `posts` by rowid, stays valid; triggers and the view on posts are made again."""
    db.execute("drop view if exists post_places")
    for column in ("post", "reply_to_post", "forwarded_from_post"):
        if column not in db["posts"].columns_dict:
            db["posts"].add_column(column, str)
    db.execute(f"update posts set post = {post_key_sql('channel', 'id')}, "
               f"reply_to_post = {post_key_sql('coalesce(reply_to_channel, channel)', 'reply_to_id')}, "
               f"forwarded_from_post = {post_key_sql('forwarded_from_channel', 'forwarded_from_id')}")
    db["posts"].transform(
        pk="post", not_null={"post", "channel", "id"}, column_order=["post"],
        foreign_keys=[("channel", "channels", "username"), ("reply_to_post", "posts", "post"),
                      ("forwarded_from_post", "posts", "post"), ("fetch_id", "fetches", "id")],
    )
    db["posts"].create_index(["channel", "id"], unique=True, if_not_exists=True)
    for column in ("reply_to_post", "forwarded_from_post", "fetch_id"):
        db["posts"].create_index([column], if_not_exists=True)
    for name, body in queue_triggers().items():
        db.execute(f"create trigger if not exists [{name}] {body}")
    db["channel_stats"].transform(foreign_keys=[("username", "channels", "username")])
    for table in POST_TABLES:
        if "post" not in db[table].columns_dict:
            db[table].add_column("post", str)
        db.execute(f"update [{table}] set post = {post_key_sql('channel', 'post_id')}")
        db[table].transform(column_order=["post"], foreign_keys=[("post", "posts", "post")])
        db[table].create_index(["post"], if_not_exists=True)
    for name, body in queue_triggers().items():  # media's triggers went with its rebuild
        db.execute(f"create trigger if not exists [{name}] {body}")
    db.create_view("post_places", POST_PLACES_SQL.strip(), replace=True)


# --- Telegram Desktop exports (scripts/desktop_export.py) -----------------------------
# What an export knows and the web preview does not: exact edit times, service actions,
# the numeric id of a forward's source, file names, sizes and types, poll voters.
EXPORT_COLUMNS = {
    "posts": {"edited_at": str, "service_action": str, "forwarded_from_channel_id": int},
    "media": {"file_name": str, "file_size": int, "mime_type": str, "file_path": str, "file_status": str},
    "poll_options": {"voters": int},
}


@migrations()
def m006_export_fields(db):
    """Columns for what Telegram Desktop exports add (EXPORT_COLUMNS)."""
    for table, columns in EXPORT_COLUMNS.items():
        for column, column_type in columns.items():
            if column not in db[table].columns_dict:
                db[table].add_column(column, column_type)


# --- the media store (scripts/media.py) ---------------------------------------------------
# The files live in media.db beside telegram.db (MEDIA_TABLES below): one row per file,
# by sha256, with every download tried (`fetches`: which item, which URL, what became of
# it). `media_files` is telegram.db's view of that: one row per file a post or channel
# shows (a media item's file or thumbnail, a link preview's image, a channel's avatar),
# with what became of it. It is its own table, not columns of `media`, because `media`
# rows are deleted and inserted again whenever a post's children change; `rebuild` fills
# it again from media.db's `fetches`. `item` is "<post>#<position>" (the media item's
# file), "<post>#<position>.thumbnail", "<post>#link_preview" or "<channel>#avatar".
MEDIA_FILES = {
    "item": str, "post": str, "channel": str, "position": int, "role": str, "url": str,
    "status": str, "reason": str, "sha256": str, "bytes": int, "mime": str, "width": int,
    "height": int, "fetched_at": str, "attempts": int,
}


def media_item(role: str, channel: str, post: str | None = None, position: int | None = None) -> str:
    """The `media_files` key of one file a post or channel shows."""
    if role == "avatar":
        return f"{channel}#avatar"
    if role == "link_preview":
        return f"{post}#link_preview"
    return f"{post}#{position}" + ("" if role == "file" else f".{role}")


def media_item_sql(role: str, channel: str, post: str, position: str) -> str:
    """The same key as an SQL expression; `role` is a constant, the others are SQL."""
    if role == "avatar":
        return f"({channel} || '#avatar')"
    if role == "link_preview":
        return f"({post} || '#link_preview')"
    return f"({post} || '#' || {position}" + (")" if role == "file" else f" || '.{role}')")


@migrations()
def m007_media_store(db):
    """`media_files`: what became of each file the dataset shows (MEDIA_FILES)."""
    db["media_files"].create(
        MEDIA_FILES, pk="item", not_null={"item", "channel", "role", "status"}, if_not_exists=True,
        foreign_keys=[("post", "posts", "post"), ("channel", "channels", "username")],
    )
    db["media_files"].create_index(["post"], if_not_exists=True)
    db["media_files"].create_index(["status"], if_not_exists=True)


# --- following forwards (scripts/follow.py) ---------------------------------------------
# `channels.role` says why a channel is in the dataset: "configured" (channels.yml) or
# "source" (reached through a forward, a reply or a link of a configured channel). `follows`
# keeps what became of each post the follow step went looking for (archived, not found on
# its page, no public preview, failed), so that nothing is asked for twice in vain. The
# `forwards` view is amplification as data: per forward, its original, the lag, whether the
# forward still carries the original's current text, and what became of the original.
FORWARDS_SQL = """
select p.post, p.channel, p.id, p.date,
  p.forwarded_from_name as source_name, p.forwarded_from_channel as source_channel,
  p.forwarded_from_id as original_id, p.forwarded_from_post as original, o.date as original_date,
  cast(round((julianday(p.date) - julianday(o.date)) * 1440) as integer) as lag_minutes,
  case when o.date is null then null when p.date < o.date then 1 else 0 end as lag_error,
  case when o.post is null then null when coalesce(o.text, '') = coalesce(p.text, '') then 1 else 0 end as text_same,
  case when o.post is null then null
    when o.edited or (select count(*) from post_versions v where v.post = o.post) > 1 then 1 else 0 end as original_edited,
  o.deleted_at as original_deleted_at,
  case
    when p.forwarded_from_channel is null or p.forwarded_from_id is null then 'private source'
    when o.post is not null and o.deleted_at is not null then 'deleted'
    when o.post is not null then 'archived'
    else coalesce((select f.status from follows f where f.target = p.forwarded_from_post collate nocase),
                  'not followed yet')
  end as original_status,
  p.views, o.views as original_views
from posts p left join posts o on o.post = p.forwarded_from_post
where p.forwarded_from_name is not null or p.forwarded_from_channel is not null
"""


@migrations()
def m008_follow_forwards(db):
    """`channels.role`, the `follows` table and the `forwards` view (see above)."""
    if "role" not in db["channels"].columns_dict:
        db["channels"].add_column("role", str)
    db["follows"].create(
        {"target": str, "channel": str, "id": int, "reason": str, "status": str, "detail": str,
         "checked_at": str, "fetch_id": int},
        pk="target", not_null={"target", "channel", "id", "status"}, if_not_exists=True,
        foreign_keys=[("fetch_id", "fetches", "id")],
    )
    db["follows"].create_index(["channel"], if_not_exists=True)
    db.create_view("forwards", FORWARDS_SQL.strip(), replace=True)
    db["posts"].create_index(["channel", "date"], if_not_exists=True)  # see INDEXES


def schema_version(db: sqlite_utils.Database) -> int:
    """How many of the migrations this file has had (the last is `len(migrations)`)."""
    return len(migrations.applied(db))


# One data folder: telegram.db (default: in the current directory) and archive.db beside it.
DEFAULT_DB = Path("telegram.db")


def archive_beside(db_path: Path) -> Path:
    return Path(db_path).with_name("archive.db")


class Busy(Exception):
    """Another command is writing these files."""


@contextmanager
def writing(db_path: Path):
    """Hold the data folder's write lock (`telegram.db.lock` beside the database) for the
    length of a command, so that two crawls never write the same files at once. The
    lock is the kernel's (flock): it goes with the process, even after kill -9."""
    path = Path(f"{db_path}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another command is writing {db_path} (it holds {path}); "
                       "run this one when it has finished") from None
        yield


def opened(path: Path | str, migration_set: Migrations) -> sqlite_utils.Database:
    """A database file, created or upgraded by its migrations, in WAL mode (readers, such
    as a running Datasette, are not blocked while a crawl writes)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.enable_wal()
    migration_set.apply(db)
    return db


def open_db(path: Path | str) -> sqlite_utils.Database:
    """telegram.db, created or upgraded to the current schema."""
    return opened(path, migrations)


# --- archive.db ----------------------------------------------------------------------

archive_migrations = Migrations("archive")


@archive_migrations()
def a001_tables(adb):
    adb["bodies"].create({"sha256": str, "bytes": int, "content": bytes}, pk="sha256", if_not_exists=True)
    adb["fetches"].create(
        {
            "id": int, "url": str, "final_url": str, "fetched_at": str, "status": int,
            "sha256": str, "bytes": int, "duration_ms": int, "channel": str, "source": str,
        },
        pk="id",
        if_not_exists=True,
    )
    adb["fetches"].create_index(["channel", "fetched_at"], if_not_exists=True)


@archive_migrations()
def a002_fetch_ids_never_reused(adb):
    """Fetch ids are cited by telegram.db's `fetches`: AUTOINCREMENT, so that an archive
    started again beside an existing telegram.db (see `restore`) can be told to number
    its fetches after the ones cited (`sqlite_sequence`) and never reuses an id."""
    columns = ", ".join(f"[{c}]" for c in adb["fetches"].columns_dict)
    adb.execute(
        "create table fetches_numbered (id integer primary key autoincrement, url text, final_url text, "
        "fetched_at text, status integer, sha256 text, bytes integer, duration_ms integer, channel text, "
        "source text)")
    adb.execute(f"insert into fetches_numbered ({columns}) select {columns} from fetches")
    adb.execute("drop table fetches")
    adb.execute("alter table fetches_numbered rename to fetches")
    adb["fetches"].create_index(["channel", "fetched_at"], if_not_exists=True)


@archive_migrations()
def a003_body_parts(adb):
    """Bodies too big for one value (a Telegram Desktop export can be gigabytes): the
    `bodies` row has no content and the bytes are in `body_parts`, compressed, in order."""
    adb["body_parts"].create({"sha256": str, "part": int, "content": bytes}, pk=("sha256", "part"),
                             if_not_exists=True)


def open_archive(path: Path | str) -> sqlite_utils.Database:
    """archive.db, created or upgraded."""
    return opened(path, archive_migrations)


# --- media.db ------------------------------------------------------------------------

def media_beside(db_path: Path) -> Path:
    return Path(db_path).with_name("media.db")


media_migrations = Migrations("media")


@media_migrations()
def d001_files(mdb):
    """Every stored file once (content-addressed), and every download tried."""
    mdb["files"].create(
        {"sha256": str, "bytes": int, "mime": str, "width": int, "height": int, "stored_at": str,
         "content": bytes},
        pk="sha256", not_null={"sha256", "content"}, if_not_exists=True,
    )
    mdb.execute(
        "create table if not exists fetches (id integer primary key autoincrement, item text not null, "
        "url text, fetched_at text, status text not null, reason text, http_status integer, "
        "sha256 text references files(sha256), bytes integer, duration_ms integer)")
    mdb["fetches"].create_index(["item"], if_not_exists=True)


def open_media(path: Path | str) -> sqlite_utils.Database:
    """media.db, created or upgraded."""
    return opened(path, media_migrations)
