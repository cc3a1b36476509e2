"""Store parsed pages in telegram.db, keeping history.

Storing never parses HTML and never touches the network: it takes `Page` records
(scripts.model) and an observation time, and writes rows. Every page is written in
one transaction, so an interrupted run leaves the database as it was before that
page or with the whole page in it.

History rules ("nothing once seen is lost"):
- a post's text that differs from its latest version becomes a new `post_versions` row;
- each observation of views / reactions becomes a snapshot row;
- channel counters become a `channel_stats` row per observation;
- a post missing from a re-fetched range gets `deleted_at` (`mark_deleted`), and
  `post_events` records deletions, restorations and edits.

Observations can arrive out of order (importing an old saved page after a newer
crawl); current values are only overwritten by an observation at least as recent.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timezone

import sqlite_utils

from .model import Channel, Page, Post
from .schema import COUNTERS, POST_CHILDREN, post_key


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def sha256_text(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


# --- rows from records (pure) -------------------------------------------------


def channel_row(channel: Channel, observed_at: str) -> dict:
    row = {
        "username": channel.username,
        "channel_id": channel.channel_id,
        "title": channel.title,
        "description": channel.description,
        "description_html": channel.description_html,
        "avatar_url": channel.avatar_url,
        "verified": int(channel.verified),
        "last_fetched_at": observed_at,
    }
    for name in COUNTERS:
        count = channel.counters.get(name)
        if count is not None:
            row[name] = count.value
            row[f"{name}_text"] = count.text
            row[f"{name}_precision"] = count.precision
    return row


def channel_stats_row(channel: Channel, observed_at: str) -> dict:
    row = {"username": channel.username, "fetched_at": observed_at}
    for name in COUNTERS:
        count = channel.counters.get(name)
        row[name] = count.value if count else None
        row[f"{name}_text"] = count.text if count else None
    return row


def post_row(post: Post) -> dict:
    return {
        "post": post_key(post.channel, post.id),
        "channel": post.channel,
        "id": post.id,
        "url": post.url,
        "date": post.date,
        "text": post.text,
        "html": post.html,
        "views": post.views,
        "views_text": post.views_text,
        "views_precision": post.views_precision,
        "edited": int(post.edited),
        "author": post.author,
        "kind": post.content_kind,
        "forwarded_from_name": post.forwarded_from_name,
        "forwarded_from_channel": post.forwarded_from_channel,
        "forwarded_from_id": post.forwarded_from_id,
        "forwarded_from_url": post.forwarded_from_url,
        "forwarded_from_author": post.forwarded_from_author,
        "reply_to_id": post.reply_to_id,
        "reply_to_post": post_key(post.reply_to_channel or post.channel, post.reply_to_id),
        "forwarded_from_post": post_key(post.forwarded_from_channel, post.forwarded_from_id),
        "reply_to_channel": post.reply_to_channel,
        "reply_to_author": post.reply_to_author,
        "reply_to_text": post.reply_to_text,
        "via_bot": post.via_bot,
        "link_preview_url": post.link_preview_url,
        "link_preview_site": post.link_preview_site,
        "link_preview_title": post.link_preview_title,
        "link_preview_description": post.link_preview_description,
        "link_preview_image": post.link_preview_image,
        "grouped_id": post.grouped_id,
        "album_ids": json.dumps(post.album_ids) if post.album_ids else None,
        "media_count": len(post.media),
        "media_too_big": int(post.media_too_big),
        "media_not_supported": int(post.media_not_supported),
        "open_in_telegram": int(post.open_in_telegram),
        "service_text": post.service_text,
        "raw_html": post.raw_html,
        "text_sha256": sha256_text(post.text),
        "channel_id": post.channel_id,
    }


def post_children(post: Post) -> dict[str, list[dict]]:
    key = {"post": post_key(post.channel, post.id), "channel": post.channel, "post_id": post.id}
    media, options = [], []
    for item in post.media:
        row = asdict(item)
        poll_options = row.pop("poll_options")
        row["too_big"] = int(row["too_big"])
        media.append({**key, **row})
        options.extend(
            {**key, "media_position": item.position, **option} for option in poll_options
        )
    return {
        "media": media,
        "poll_options": options,
        "links": [
            {**key, "position": i, "url": link.url, "domain": link.domain, "text": link.text}
            for i, link in enumerate(post.links)
        ],
        "hashtags": [{**key, "hashtag": tag} for tag in dict.fromkeys(post.hashtags)],
        "mentions": [{**key, "username": name} for name in dict.fromkeys(post.mentions)],
        "reactions": [
            {
                **key,
                "reaction": reaction_key(r),
                "position": r.position,
                "emoji": r.emoji or r.custom_emoji_id or ("paid" if r.paid else None),
                "custom_emoji_id": r.custom_emoji_id,
                "count": r.count,
                "count_text": r.count_text,
                "paid": int(r.paid),
            }
            for r in post.reactions
        ],
    }


def reaction_key(reaction) -> str:
    if reaction.paid:
        return "paid"
    if reaction.custom_emoji_id:
        return f"custom:{reaction.custom_emoji_id}"
    return reaction.emoji or f"position:{reaction.position}"


# --- writing (I/O) --------------------------------------------------------------


def save_page(
    db: sqlite_utils.Database,
    page: Page,
    observed_at: str,
    fetch: dict | None = None,
    record_stats: bool = True,
) -> dict:
    """Store one parsed page in one transaction. Returns counts of what changed.

    `fetch` is the `fetches` row describing where the page came from (url, status,
    sha256, ...); it is written in the same transaction.
    """
    summary = {"posts": 0, "new": 0, "edited": 0, "restored": 0, "unknown": 0}
    with db.atomic():
        fetch_id = None
        if fetch is not None:
            fetch_id = fetch.get("id")
            insert_rows(db, "fetches", [{**fetch, "posts": len(page.posts)}], replace=True)
            fetch_id = fetch_id if fetch_id is not None else db.execute("select last_insert_rowid()").fetchone()[0]
        if page.channel is not None:
            save_channel(db, page.channel, observed_at, record_stats)
        for batch in batches_without_repeats(page.posts):
            for event in save_posts(db, batch, observed_at, fetch_id):
                summary[event] += 1
        summary["posts"] = len(page.posts)
        summary["unknown"] = sum(post.kind == "unknown" for post in page.posts)
    return summary


def batches_without_repeats(posts: list[Post]) -> list[list[Post]]:
    """Split a page's posts so that each batch is of one channel and holds no post
    twice (some saved pages repeat a message); batches are stored in order."""
    batches, seen = [[]], set()
    for post in posts:
        key = (post.channel, post.id)
        if key in seen or (batches[-1] and batches[-1][0].channel != post.channel):
            batches.append([])
            seen = set()
        batches[-1].append(post)
        seen.add(key)
    return [b for b in batches if b]


def save_channel(db: sqlite_utils.Database, channel: Channel, observed_at: str, record_stats: bool = True) -> None:
    existing = _get(db, "channels", channel.username)
    row = channel_row(channel, observed_at)
    if existing is None:
        db["channels"].insert({**row, "first_fetched_at": observed_at})
    elif observed_at >= (existing["last_fetched_at"] or ""):
        # Keep values the page does not show (an embed page has no counters).
        changes = {k: v for k, v in row.items() if v is not None and existing.get(k) != v}
        if changes:
            db["channels"].update(channel.username, changes)
    elif observed_at < (existing["first_fetched_at"] or observed_at):
        db["channels"].update(channel.username, {"first_fetched_at": observed_at})
    if channel.counters and record_stats:
        insert_rows(db, "channel_stats", [channel_stats_row(channel, observed_at)], replace=True)


def save_posts(db: sqlite_utils.Database, posts: list[Post], observed_at: str, fetch_id: int | None) -> list[str]:
    """Upsert the posts of one page. Reads what is stored for all of them at once,
    then writes only what changed. Returns one event name per change."""
    if not posts:
        return []
    channel = posts[0].channel
    ids = [post.id for post in posts]
    existing = _rows_by_id(db, "select * from posts where channel = ? and id in ({})", channel, ids, "id")
    versions = _rows_by_id(
        db,
        "select post_id, max(version) as version, "
        "(select text_sha256 from post_versions v2 where v2.channel = v.channel and v2.post_id = v.post_id "
        " order by version desc limit 1) as text_sha256, max(last_seen_at) as last_seen_at "
        "from post_versions v where channel = ? and post_id in ({}) group by post_id",
        channel, ids, "post_id",
    )
    events, new_rows, event_rows, version_rows, views, reactions = [], [], [], [], [], []
    children_by_post = {}
    for post in posts:
        row = post_row(post)
        children = post_children(post)
        # A digest of the child rows lets unchanged posts skip rewriting them.
        row["children_sha256"] = sha256_text(json.dumps(children, sort_keys=True, default=str))
        row["fetch_id"] = fetch_id
        old = existing.get(post.id)
        if old is None:
            new_rows.append({**row, "first_seen_at": observed_at, "last_seen_at": observed_at})
            events.append("new")
            event_rows.append(_event_row(post, observed_at, "first_seen"))
            children_by_post[post.id] = children
        else:
            is_latest = observed_at >= (old["last_seen_at"] or "")
            changes = {"first_seen_at": min(old["first_seen_at"] or observed_at, observed_at)}
            if is_latest:
                changes.update(row, last_seen_at=observed_at)
                for column in post.unknown:  # what this source cannot see keeps its stored value
                    changes.pop(column, None)
                if old["deleted_at"] is not None:
                    changes["deleted_at"] = None
                    events.append("restored")
                    event_rows.append(_event_row(post, observed_at, "restored", f"was deleted_at {old['deleted_at']}"))
                if old["children_sha256"] != row["children_sha256"]:
                    children_by_post[post.id] = children
            changes = {k: v for k, v in changes.items() if old.get(k) != v}
            if changes:
                db["posts"].update(row["post"], changes)
        if post.kind != "unknown":
            version = next_version(db, post, observed_at, row["text_sha256"], versions.get(post.id))
            if version is not None:
                version_rows.append(version)
                if old is not None and version["version"] > 1:
                    events.append("edited")
                    event_rows.append(_event_row(post, observed_at, "edited"))
        if post.views is not None:
            views.append({
                "post": row["post"], "channel": post.channel, "post_id": post.id, "fetched_at": observed_at,
                "views": post.views, "views_text": post.views_text,
            })
        reactions.extend(
            {
                "post": row["post"], "channel": post.channel, "post_id": post.id, "fetched_at": observed_at,
                "reaction": r["reaction"], "count": r["count"], "count_text": r["count_text"],
            }
            for r in children["reactions"]
        )
    insert_rows(db, "posts", new_rows)
    insert_rows(db, "post_versions", version_rows)
    insert_rows(db, "post_events", event_rows, replace=True)
    insert_rows(db, "view_snapshots", views, replace=True)
    insert_rows(db, "reaction_snapshots", reactions, replace=True)
    replace_children(db, channel, children_by_post)
    return events


def next_version(db, post: Post, observed_at: str, digest: str, latest: dict | None) -> dict | None:
    """The new `post_versions` row when the text differs from the latest, else None."""
    if latest is not None and latest["text_sha256"] == digest:
        db.execute(
            "update post_versions set last_seen_at = max(last_seen_at, ?), first_seen_at = min(first_seen_at, ?) "
            "where channel = ? and post_id = ? and version = ?",
            [observed_at, observed_at, post.channel, post.id, latest["version"]],
        )
        return None
    if latest is not None and observed_at < latest["last_seen_at"]:
        # An older observation of a text we no longer hold as latest: record it
        # only if it is new to us, without reordering history.
        known = db.execute(
            "select 1 from post_versions where channel = ? and post_id = ? and text_sha256 = ?",
            [post.channel, post.id, digest],
        ).fetchone()
        if known:
            return None
    return {
        "post": post_key(post.channel, post.id),
        "channel": post.channel,
        "post_id": post.id,
        "version": (latest["version"] + 1) if latest else 1,
        "text": post.text,
        "html": post.html,
        "text_sha256": digest,
        "edited": int(post.edited),
        "first_seen_at": observed_at,
        "last_seen_at": observed_at,
    }


def replace_children(db: sqlite_utils.Database, channel: str, children_by_post: dict[int, dict]) -> None:
    if not children_by_post:
        return
    ids = list(children_by_post)
    marks = ", ".join("?" * len(ids))
    for table in POST_CHILDREN:
        rows = [row for children in children_by_post.values() for row in children[table]]
        if table in SAME_ITEM:
            keep_known_values(db, table, channel, ids, rows)
        db.execute(f"delete from [{table}] where channel = ? and post_id in ({marks})", [channel, *ids])
        insert_rows(db, table, rows)


# Child rows seen by two kinds of source: the web preview shows media URLs and no file
# names, a Telegram Desktop export the reverse. A None in a new row means "not shown
# here": the value stored for the same item (same key, same kind or text) is kept.
SAME_ITEM = {
    "media": (("post_id", "position"), "kind"),
    "poll_options": (("post_id", "media_position", "position"), "text"),
}


def keep_known_values(db: sqlite_utils.Database, table: str, channel: str, ids: list[int], rows: list[dict]) -> None:
    key_columns, same = SAME_ITEM[table]
    cursor = db.execute(f"select * from [{table}] where channel = ? and post_id in ({', '.join('?' * len(ids))})",
                        [channel, *ids])
    names = [d[0] for d in cursor.description]
    stored = {tuple(r[c] for c in key_columns): r for r in (dict(zip(names, values)) for values in cursor)}
    for row in rows:
        before = stored.get(tuple(row[c] for c in key_columns))
        if before is None or before[same] != row[same]:
            continue
        for column, value in row.items():
            if value is None and before.get(column) is not None:
                row[column] = before[column]


def insert_rows(db: sqlite_utils.Database, table: str, rows: list[dict], replace: bool = False) -> None:
    """executemany, grouped by column set: sqlite-utils' insert_all introspects the
    table on every call, which dominated the time of storing a page."""
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        db.conn.executemany(_insert_sql(table, columns, replace), [tuple(r.values()) for r in group])


@functools.lru_cache(maxsize=None)
def _insert_sql(table: str, columns: tuple, replace: bool) -> str:
    names = ", ".join(f"[{c}]" for c in columns)
    verb = "insert or replace" if replace else "insert"
    return f"{verb} into [{table}] ({names}) values ({', '.join('?' * len(columns))})"


def _rows_by_id(db, sql: str, channel: str, ids: list[int], key: str) -> dict:
    cursor = db.execute(sql.format(", ".join("?" * len(ids))), [channel, *ids])
    columns = [d[0] for d in cursor.description]
    return {row[key]: row for row in (dict(zip(columns, values)) for values in cursor)}


def mark_deleted(db: sqlite_utils.Database, channel: str, ids, observed_at: str) -> int:
    """Set deleted_at on posts that are no longer on the site. Returns how many."""
    count = 0
    with db.atomic():
        for post_id in ids:
            cursor = db.execute(
                "update posts set deleted_at = ? where channel = ? and id = ? and deleted_at is null",
                [observed_at, channel, post_id],
            )
            if cursor.rowcount:
                count += 1
                db["post_events"].upsert(
                    {"post": post_key(channel, post_id), "channel": channel, "post_id": post_id,
                     "at": observed_at, "event": "deleted", "detail": None},
                    pk=("channel", "post_id", "at", "event"),
                )
    return count


def record_problem(db: sqlite_utils.Database, source: str, message: str, sha256: str | None, seen_at: str) -> None:
    """Keep a problem once per input and message (re-imports add nothing)."""
    db.execute(
        "insert or ignore into problems (source, seen_at, sha256, message) values (?, ?, ?, ?)",
        [source, seen_at, sha256, message],
    )


def _event_row(post: Post, at: str, event: str, detail: str | None = None) -> dict:
    return {"post": post_key(post.channel, post.id), "channel": post.channel, "post_id": post.id,
            "at": at, "event": event, "detail": detail}


def _get(db: sqlite_utils.Database, table: str, key) -> dict | None:
    try:
        return db[table].get(key)
    except sqlite_utils.db.NotFoundError:
        return None
