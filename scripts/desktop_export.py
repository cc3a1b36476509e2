"""Telegram Desktop exports (`result.json`, "Export chat history" as JSON) into the dataset.

An export is read as a stream (ijson), so a multi-gigabyte file costs the memory of one
batch of messages. Each message of a public channel becomes a `Post` (scripts/model.py)
with the same text and sanitised HTML the parser gives the web preview, and is stored
through `store.save_page` like a crawled page, one transaction per batch of messages.

- Which channel: the one the dataset knows by the export's numeric id (crawled pages
  carry it in data-view), else the username given (`--channel`), else the numeric id
  itself stands for the username (usernames never start with a digit).
- When it was seen: an export does not say when it was taken. The latest date or edit
  time in it is a lower bound and stands for it, unless `exported_at` is given. An
  export older than a crawl adds versions and never overwrites newer values.
- What only the web shows (views, the forwarded post, link previews, albums) is never
  wiped by an export (`Post.unknown`); what only an export shows (edit times, file names
  and sizes, exact reaction counts, poll voters) has its own columns (schema m006).
- Provenance: the file goes into archive.db as it is (in parts) with one fetch, and
  telegram.db's `fetches` cites it (source 'export', the file's sha256); `rebuild`
  replays it. Importing the same file again changes nothing.
- Bad input (not JSON, not an export, cut short) raises ExportError before anything is
  written: the file is read through once before any row is. Chats that are not public
  channels are skipped with a note.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import ijson
import sqlite_utils

from .archive import archive_file, read_parts
from .model import Link, Media, Page, PollOption, Post, Reaction
from .parse import TME, escape_text, link_domain, link_tag, sanitise_html
from .store import save_page, utc_now

log = logging.getLogger("scripts")

PUBLIC_CHANNEL = "public_channel"
BATCH = 500  # messages per transaction
# Where chats sit: a one-chat export is the chat; a full-account export lists them.
CHAT_LISTS = {"": "messages.item", "chats": "chats.list.item.messages.item",
              "left_chats": "left_chats.list.item.messages.item"}
# Posts columns an export cannot know: what the web gave is kept (see Post.unknown).
UNKNOWN_TO_EXPORTS = (
    "views", "views_text", "views_precision", "forwarded_from_id", "forwarded_from_url",
    "forwarded_from_author", "forwarded_from_post", "reply_to_author", "reply_to_text",
    "link_preview_url", "link_preview_site", "link_preview_title", "link_preview_description",
    "link_preview_image", "grouped_id", "album_ids", "media_too_big", "media_not_supported",
    "open_in_telegram", "raw_html",
)
MEDIA_TYPES = {
    "video_file": "video", "animation": "gif", "video_message": "round_video",
    "voice_message": "voice", "audio_file": "audio", "sticker": "sticker",
}
TAGS = {"bold": "b", "italic": "i", "underline": "u", "strikethrough": "s", "code": "code",
        "pre": "pre", "blockquote": "blockquote"}
SERVICE_TEXTS = {
    "create_channel": "Channel created",
    "edit_group_title": "Channel name changed to «{title}»",
    "edit_group_photo": "Channel photo updated",
    "delete_group_photo": "Channel photo removed",
    "pin_message": "Message {message_id} pinned",
    "migrate_from_group": "Channel created from a group",
}


class ExportError(ValueError):
    """The input is not a readable Telegram Desktop export (one line says why)."""


# --- reading (streaming) -----------------------------------------------------------


@dataclass
class Chat:
    """One chat of an export, as the first read found it."""

    list: str  # "" (a one-chat export), "chats" or "left_chats"
    name: str | None = None
    type: str | None = None
    id: int | None = None
    messages: int = 0

    @property
    def public(self) -> bool:
        return self.type == PUBLIC_CHANNEL and isinstance(self.id, int)


@dataclass
class Scan:
    """What the first read of a file found: its chats, and the latest time in it."""

    chats: list[Chat] = field(default_factory=list)
    latest: int = 0  # unix time of the latest date or edit

    @property
    def public(self) -> list[Chat]:
        return [chat for chat in self.chats if chat.public]


# Where a chat's own keys sit, and where its messages do.
CHAT_BASES = ("", "chats.list.item", "left_chats.list.item")
MESSAGE_PREFIXES = {"messages.item": "", "chats.list.item.messages.item": "chats.list.item",
                    "left_chats.list.item.messages.item": "left_chats.list.item"}


def scan_export(stream) -> Scan:
    """Read the whole file once (streaming) and check it is an export; ExportError if not.

    Counts each chat's messages (the second read splits the stream of messages by
    them) and checks that every message has an id and a date."""
    scan, chats = Scan(), {}
    dated = identified = 0
    events = ijson.parse(stream, use_float=True)
    try:
        first = next(events, None)
        if first is None or first[1] != "start_map":
            raise ExportError("the JSON is not an object, so not a Telegram Desktop export")
        for prefix, event, value in events:
            if prefix in MESSAGE_PREFIXES:
                if event == "start_map":
                    chat_at(MESSAGE_PREFIXES[prefix], chats, scan).messages += 1
                elif event not in ("map_key", "end_map"):
                    raise ExportError("a message is not a JSON object, so this is not a Telegram Desktop export")
                continue
            if event == "start_map" and prefix in CHAT_BASES[1:]:
                chats[prefix] = Chat(list=prefix.split(".", 1)[0])
                scan.chats.append(chats[prefix])
                continue
            base, _, key = prefix.rpartition(".")
            if base in MESSAGE_PREFIXES:
                if key == "id" and isinstance(value, int):
                    identified += 1
                elif key in ("date_unixtime", "edited_unixtime"):
                    seconds = unix_time(value)
                    if seconds is None:
                        raise ExportError(f"a message has {key} {value!r}, not a unix time")
                    dated += key == "date_unixtime"
                    scan.latest = max(scan.latest, seconds)
            elif base in CHAT_BASES and key in ("name", "type", "id") and event in ("string", "number", "null"):
                chat = chat_at(base, chats, scan)
                if key == "id":
                    chat.id = value if isinstance(value, int) else None
                else:
                    setattr(chat, key, value)
    except ijson.IncompleteJSONError as error:
        if "premature eof" in str(error).lower() or "incomplete" in str(error).lower():
            raise ExportError("the file ends before its JSON does (cut short?)") from None
        raise ExportError(f"not JSON ({first_line(error)})") from None
    except ijson.JSONError as error:
        raise ExportError(f"not JSON ({first_line(error)})") from None
    scan.chats = [chat for chat in scan.chats if chat.type is not None or chat.messages]
    if not scan.chats:
        raise ExportError("JSON, but not a Telegram Desktop export (no chat with messages, no chat list)")
    total = sum(chat.messages for chat in scan.chats)
    if identified != total or dated != total:
        raise ExportError(f"{total - min(identified, dated)} of its {total} messages have no id or no "
                          "date_unixtime: not a Telegram Desktop export")
    return scan


def chat_at(base: str, chats: dict, scan: Scan) -> Chat:
    """The chat whose keys sit at `base` ("" is a one-chat export's root)."""
    if base not in chats:
        chats[base] = Chat(list=base.split(".", 1)[0])
        scan.chats.append(chats[base])
    return chats[base]


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def iter_messages(open_stream: Callable, scan: Scan) -> Iterator[tuple[Chat, dict]]:
    """(chat, message) for every message, in file order: ijson builds the messages, and
    the counts of the first read say which chat each belongs to."""
    for list_name, prefix in CHAT_LISTS.items():
        chats = [chat for chat in scan.chats if chat.list == list_name]
        if not any(chat.messages for chat in chats):
            continue
        with open_stream() as stream:
            messages = ijson.items(stream, prefix, use_float=True)
            for chat in chats:
                for _ in range(chat.messages):
                    message = next(messages, None)
                    if message is None:
                        raise ExportError("the file changed while it was being imported")
                    yield chat, message


# --- one message as a Post (pure) -------------------------------------------------------


def unix_time(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def utc(seconds, timespec: str = "seconds") -> str | None:
    """A unix time as ISO 8601 UTC (the form every other date of the dataset has)."""
    seconds = unix_time(seconds)
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec=timespec)


def entities_of(message: dict) -> list[dict]:
    """The message's text as entities (`text_entities`, or `text` as older exports write it)."""
    entities = message.get("text_entities")
    if isinstance(entities, list):
        return [e for e in entities if isinstance(e, dict)]
    text = message.get("text")
    if isinstance(text, str):
        return [{"type": "plain", "text": text}]
    if isinstance(text, list):
        return [e if isinstance(e, dict) else {"type": "plain", "text": str(e)} for e in text]
    return []


def flattened_text(entities: list[dict]) -> str:
    """The export's text as one string, as Telegram shows it (custom emoji by their glyph)."""
    return "".join(str(e.get("text") or "") for e in entities)


def entity_href(entity: dict, channel: str) -> str | None:
    """Where an entity links to, as the web preview links it."""
    kind, text = entity.get("type"), str(entity.get("text") or "")
    if kind == "text_link":
        return entity.get("href") or None
    if kind == "link":
        return text if "://" in text or text.startswith(("tg:", "mailto:")) else "http://" + text
    if kind == "email":
        return "mailto:" + text
    if kind == "mention":
        return f"{TME}/{text.lstrip('@')}"
    if kind in ("hashtag", "cashtag"):
        return f"{TME}/s/{channel}?q={text.replace('#', '%23').replace('$', '%24')}"
    return None


def entity_html(entity: dict, channel: str) -> str:
    kind, text = entity.get("type"), str(entity.get("text") or "")
    inner = escape_text(text).replace("\n", "<br>")
    href = entity_href(entity, channel)
    if href is not None:
        return f"{link_tag(href)}{inner}</a>"
    if kind in TAGS:
        return f"<{TAGS[kind]}>{inner}</{TAGS[kind]}>"
    if kind == "spoiler":
        return f'<span class="tg-spoiler">{inner}</span>'
    return inner  # plain, custom emoji (its glyph), bank cards, phones, bot commands...


def fill_text(post: Post, entities: list[dict]) -> None:
    """Text, sanitised HTML, hashtags, mentions and links, as the parser fills them."""
    post.text = flattened_text(entities).strip() or None
    html = "".join(entity_html(e, post.channel) for e in entities).strip()
    post.html = sanitise_html(html) if html else None
    for entity in entities:
        kind, text = entity.get("type"), str(entity.get("text") or "")
        if kind == "hashtag":
            tag = text.lstrip("#")
            if tag and tag not in post.hashtags:
                post.hashtags.append(tag)
            continue
        href = entity_href(entity, post.channel)
        if href is None:
            continue
        if kind == "mention" and text.lstrip("@") and text.lstrip("@") not in post.mentions:
            post.mentions.append(text.lstrip("@"))
        post.links.append(Link(url=href, domain=link_domain(href), text=text.strip() or None))


def file_fields(value, folder: Path | None) -> dict:
    """file_path and file_status of a file an export names (or says it left out)."""
    if not isinstance(value, str) or not value:
        return {}
    if value.startswith("("):  # "(File not included. Change data exporting settings to download.)"
        return {"file_status": "not included"}
    present = folder is not None and (folder / value).is_file()
    return {"file_path": value, "file_status": "included" if present else "missing"}


def message_media(message: dict, folder: Path | None) -> list[Media]:
    """The message's media item (an export message has at most one)."""
    m = message
    size = {"width": m.get("width"), "height": m.get("height")}
    if "photo" in m:
        return [Media(0, "photo", **size, file_size=m.get("photo_file_size"), **file_fields(m["photo"], folder))]
    if "file" in m or "media_type" in m:
        kind = MEDIA_TYPES.get(m.get("media_type"), "document")
        title = {"sticker": m.get("sticker_emoji"), "audio": m.get("title"),
                 "document": m.get("file_name")}.get(kind)
        return [Media(
            0, kind, **size, duration_seconds=m.get("duration_seconds"), title=title,
            performer=m.get("performer"), file_name=m.get("file_name"), file_size=m.get("file_size"),
            mime_type=m.get("mime_type"), **file_fields(m.get("file"), folder),
        )]
    if isinstance(m.get("location_information"), dict):
        where = m["location_information"]
        title = " — ".join(str(p) for p in (m.get("place_name"), m.get("address")) if p) or None
        return [Media(0, "location", latitude=where.get("latitude"), longitude=where.get("longitude"), title=title)]
    if isinstance(m.get("contact_information"), dict):
        who = m["contact_information"]
        name = " ".join(str(p) for p in (who.get("first_name"), who.get("last_name")) if p) or None
        return [Media(0, "contact", title=name, phone=who.get("phone_number") or None)]
    if isinstance(m.get("poll"), dict):
        return [poll_media(m["poll"])]
    return []


def poll_media(poll: dict) -> Media:
    answers = [a for a in poll.get("answers") or [] if isinstance(a, dict)]
    total = poll.get("total_voters") or sum(a.get("voters") or 0 for a in answers)
    options = [
        PollOption(position=i, text=flattened_text(entities_of(a)).strip(),
                   percent=round(100 * (a.get("voters") or 0) / total) if total else None,
                   voters=a.get("voters"))
        for i, a in enumerate(answers)
    ]
    question = poll.get("question")
    question = flattened_text(entities_of({"text": question})) if not isinstance(question, str) else question
    return Media(0, "poll", poll_question=question or None,
                 poll_type="closed poll" if poll.get("closed") else None, poll_options=options)


def message_reactions(message: dict) -> list[Reaction]:
    reactions = []
    for r in message.get("reactions") or []:
        if not isinstance(r, dict):
            continue
        count = unix_time(r.get("count"))  # an integer, like a unix time
        custom = r.get("document_id") if r.get("type") == "custom_emoji" else None
        if isinstance(custom, str) and custom.startswith("("):
            custom = None  # "(File not included...)": no id to tell it apart
        reactions.append(Reaction(
            position=len(reactions), emoji=r.get("emoji") if r.get("type") == "emoji" else None,
            custom_emoji_id=custom, count=count, count_text=str(count) if count is not None else "",
            count_precision=0, paid=r.get("type") == "paid",
        ))
    return reactions


def service_text(message: dict) -> str:
    action = str(message.get("action") or "service message")
    template = SERVICE_TEXTS.get(action)
    if template is None:
        return action.replace("_", " ").capitalize()
    return template.format_map({k: v for k, v in message.items() if isinstance(v, (str, int))} | {
        "title": message.get("title", ""), "message_id": message.get("message_id", "")})


def channel_peer_id(value) -> int | None:
    """123 from "channel123" (a forward's source); people's ids are not kept."""
    if isinstance(value, str) and value.startswith("channel") and value[7:].isdigit():
        return int(value[7:])
    return None


def post_url(channel: str, channel_id: int, message_id: int) -> str:
    if channel.isdigit():  # no username known: the link members of the channel can open
        return f"{TME}/c/{channel_id}/{message_id}"
    return f"{TME}/{channel}/{message_id}"


def message_post(message: dict, channel: str, channel_id: int, folder: Path | None = None,
                 sources: dict | None = None) -> Post:
    """One export message as a Post of `channel`. `sources` resolves forwards:
    {numeric id or title: username} of the channels the dataset knows."""
    m, sources = message, sources or {}
    post = Post(channel=channel, id=int(m["id"]), url=post_url(channel, channel_id, int(m["id"])),
                date=utc(m.get("date_unixtime")), channel_id=channel_id)
    unknown = list(UNKNOWN_TO_EXPORTS)
    if m.get("type") == "service":
        post.kind = "service"
        post.service_action = str(m.get("action") or "") or None
        post.service_text = service_text(m)
    else:
        fill_text(post, entities_of(m))
        post.media = message_media(m, folder)
    post.edited = "edited_unixtime" in m or "edited" in m
    post.edited_at = utc(m.get("edited_unixtime"))
    post.author = m.get("author") or None
    post.via_bot = str(m.get("via_bot") or "").lstrip("@") or None
    if m.get("forwarded_from") is not None or m.get("forwarded_from_id") is not None:
        post.forwarded_from_name = m.get("forwarded_from")
        post.forwarded_from_channel_id = channel_peer_id(m.get("forwarded_from_id"))
        post.forwarded_from_channel = (sources.get(post.forwarded_from_channel_id)
                                       or sources.get(post.forwarded_from_name))
    if post.forwarded_from_channel is None:
        unknown.append("forwarded_from_channel")
    reply_peer = m.get("reply_to_peer_id")
    if m.get("reply_to_message_id") is not None and (reply_peer is None or channel_peer_id(reply_peer) == channel_id):
        post.reply_to_id = unix_time(m["reply_to_message_id"])
        post.reply_to_channel = channel
    post.reactions = message_reactions(m)
    post.unknown = tuple(unknown)
    return post


# --- importing (I/O) ----------------------------------------------------------------------


@dataclass
class ExportFile:
    path: Path
    sha256: str
    bytes: int
    scan: Scan


def find_export(path: Path) -> Path:
    """A result.json, or the folder holding one."""
    if path.is_dir():
        found = path / "result.json"
        if not found.is_file():
            raise ExportError(f"{path} is a folder without a result.json (Telegram Desktop names its export so)")
        return found
    if not path.is_file():
        raise ExportError(f"{path} is not a regular file")
    return path


def read_export(path: Path) -> ExportFile:
    """Check a file (reading it through) and hash it; ExportError if it is not an export."""
    path = find_export(Path(path))
    if path.stat().st_size == 0:
        raise ExportError(f"{path} is empty")
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    with open(path, "rb") as handle:
        scan = scan_export(handle)
    return ExportFile(path, digest, path.stat().st_size, scan)


def observed_time(scan: Scan, exported_at: str | None) -> str:
    """When the export stands as seen: `exported_at`, else its latest date or edit."""
    if exported_at:
        try:
            moment = datetime.fromisoformat(exported_at.replace("Z", "+00:00"))
        except ValueError:
            raise ExportError(f"--exported-at {exported_at!r} is not an ISO 8601 date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return utc(scan.latest, timespec="milliseconds") if scan.latest else utc_now()


def channel_username(db: sqlite_utils.Database, chat: Chat, given: str | None) -> str:
    """The dataset's name for the chat's channel (see the module's docstring)."""
    known = db.execute(
        "select username from channels where channel_id = ? union all "
        "select channel from (select channel from posts where channel_id = ? limit 1) limit 1",
        [chat.id, chat.id]).fetchone()
    if given:
        given = given.lstrip("@")
        spelled = db.execute("select username, channel_id from channels where lower(username) = lower(?)",
                             [given]).fetchone()
        given = spelled[0] if spelled else given
        if known and known[0].lower() != given.lower():
            raise ExportError(f"the export's channel (id {chat.id}) is {known[0]} in the dataset, not {given}")
        if spelled and spelled[1] is not None and spelled[1] != chat.id:
            raise ExportError(f"{given} has the id {spelled[1]} in the dataset, and the export's channel {chat.id}")
        return given
    return known[0] if known else str(chat.id)


def forward_sources(db: sqlite_utils.Database) -> dict:
    """{numeric id: username, title: username} of the channels the dataset knows (a
    title shared by two channels resolves to neither)."""
    sources, titles = {}, Counter()
    for username, channel_id, title in db.execute("select username, channel_id, title from channels"):
        if channel_id is not None:
            sources[channel_id] = username
        if title:
            titles[title] += 1
            sources.setdefault(title, username)
    for title, n in titles.items():
        if n > 1:
            sources.pop(title, None)
    return sources


def save_export_channel(db: sqlite_utils.Database, username: str, chat: Chat, observed_at: str) -> None:
    """The channel row: created if new; else only what it lacks (an export has no
    counters, no description and no verified mark to overwrite)."""
    if db.execute("select 1 from channels where username = ?", [username]).fetchone() is None:
        db["channels"].insert({"username": username, "channel_id": chat.id, "title": chat.name,
                               "verified": 0, "first_fetched_at": observed_at, "last_fetched_at": observed_at})
        return
    db.execute("update channels set channel_id = coalesce(channel_id, ?), title = coalesce(title, ?), "
               "first_fetched_at = min(coalesce(first_fetched_at, ?), ?) where username = ?",
               [chat.id, chat.name, observed_at, observed_at, username])


def save_export_columns(db: sqlite_utils.Database, posts: list[Post]) -> None:
    """What only exports know, in its own columns: never wiped by a crawl, never set to
    None by an export that lacks it; the latest edit time wins."""
    db.conn.executemany(
        "update posts set edited_at = case when ?1 > coalesce(edited_at, '') then ?1 else edited_at end, "
        "service_action = coalesce(?2, service_action), "
        "forwarded_from_channel_id = coalesce(?3, forwarded_from_channel_id) where channel = ?4 and id = ?5",
        [(p.edited_at, p.service_action, p.forwarded_from_channel_id, p.channel, p.id) for p in posts
         if p.edited_at or p.service_action or p.forwarded_from_channel_id])
    # Files and voters fill what a newer crawl's rows lack (store.keep_known_values
    # keeps them when a crawl comes later).
    db.conn.executemany(
        "update media set file_name = coalesce(file_name, ?), file_size = coalesce(file_size, ?), "
        "mime_type = coalesce(mime_type, ?), file_path = coalesce(file_path, ?), "
        "file_status = coalesce(file_status, ?) where channel = ? and post_id = ? and position = ? and kind = ?",
        [(m.file_name, m.file_size, m.mime_type, m.file_path, m.file_status, p.channel, p.id, m.position, m.kind)
         for p in posts for m in p.media if m.file_status or m.file_size])
    db.conn.executemany(
        "update poll_options set voters = coalesce(voters, ?) where channel = ? and post_id = ? "
        "and media_position = ? and position = ? and text = ?",
        [(o.voters, p.channel, p.id, m.position, o.position, o.text)
         for p in posts for m in p.media for o in m.poll_options if o.voters is not None])


def store_export(db: sqlite_utils.Database, open_stream: Callable, scan: Scan, fetch: dict, usernames: list[str],
                 folder: Path | None = None, progress: Callable | None = None, batch: int = BATCH) -> Counter:
    """Store the public channels of an export, one transaction per batch of messages.
    `fetch` is the archive's fetch row, `usernames` the dataset's names of scan.public."""
    observed_at = fetch["fetched_at"]
    names = {id(chat): name for chat, name in zip(scan.public, usernames)}
    citation = {key: fetch.get(key) for key in ("id", "url", "fetched_at", "status", "sha256", "bytes",
                                               "duration_ms", "channel", "source")}
    sources = forward_sources(db)
    totals, pending, started = Counter(), [], set()
    total = sum(chat.messages for chat in scan.public)

    def flush():
        with db.atomic():
            for chat, _ in pending:
                if id(chat) not in started:
                    started.add(id(chat))
                    save_export_channel(db, names[id(chat)], chat, observed_at)
            posts = [post for _, post in pending]
            summary = save_page(db, Page(channel=None, posts=posts), observed_at,
                                {**citation, "problems": f"import not finished ({totals['messages']} of {total} messages)"})
            save_export_columns(db, posts)
        totals.update({k: summary.get(k, 0) for k in ("new", "edited", "restored")})
        pending.clear()
        if progress is not None:
            progress(totals["messages"], total)

    for chat, message in iter_messages(open_stream, scan):
        if id(chat) not in names:
            continue
        pending.append((chat, message_post(message, names[id(chat)], chat.id, folder, sources)))
        totals["messages"] += 1
        totals[pending[-1][1].content_kind] += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    with db.atomic():
        db["fetches"].upsert({**citation, "posts": totals["messages"], "problems": None}, pk="id")
    return totals


def already_imported(db: sqlite_utils.Database, adb: sqlite_utils.Database, sha256: str) -> tuple[dict | None, bool]:
    """The archive's fetch of this file (by content), and whether its import finished."""
    rows = list(adb["fetches"].rows_where("sha256 = ? and source = 'export'", [sha256], order_by="id", limit=1))
    if not rows:
        return None, False
    fetch = rows[0]
    done = db.execute("select 1 from fetches where id = ? and problems is null", [fetch["id"]]).fetchone()
    return fetch, done is not None


def import_export(path: Path, db: sqlite_utils.Database, adb: sqlite_utils.Database, *, channel: str | None = None,
                  exported_at: str | None = None, echo: Callable = log.info, progress: Callable | None = None,
                  batch: int = BATCH) -> Counter:
    """Archive and store one export file. Returns counts (messages, new, kinds...,
    skipped chats). ExportError, with nothing written, on bad input."""
    export = read_export(path)
    scan = export.scan
    for chat in scan.chats:
        if not chat.public:
            echo(f"skipped {chat.type or 'a chat'} {chat.name or chat.id!r} ({chat.messages} messages): "
                 "the dataset is for public channels")
    if not scan.public:
        raise ExportError(f"{export.path} holds no public channel ({', '.join(sorted({str(c.type) for c in scan.chats}))}): "
                          "nothing imported")
    if channel and len(scan.public) > 1:
        raise ExportError(f"--channel names one channel, and {export.path} holds {len(scan.public)} public channels")
    fetch, done = already_imported(db, adb, export.sha256)
    totals = Counter(skipped=len(scan.chats) - len(scan.public))
    if done:
        totals["unchanged"] = 1
        return totals
    if fetch is None:
        usernames = [channel_username(db, chat, channel) for chat in scan.public]
        fetch = archive_file(adb, export.path, sha256=export.sha256, url=export.path.resolve().as_uri(),
                             fetched_at=observed_time(scan, exported_at), channel=",".join(usernames))
    totals.update(store_export(db, lambda: open(export.path, "rb"), scan, fetch, fetch["channel"].split(","),
                               export.path.parent, progress, batch))
    return totals


def replay_export(db: sqlite_utils.Database, adb: sqlite_utils.Database, fetch: dict) -> Counter:
    """Store an archived export again (rebuild), exactly as it was imported."""
    with read_parts(adb, fetch["sha256"]) as stream:
        scan = scan_export(stream)
    return store_export(db, lambda: read_parts(adb, fetch["sha256"]), scan, fetch, (fetch["channel"] or "").split(","))
