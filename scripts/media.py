"""The media store: download the files the dataset shows into media.db, once each.

Runs after the crawl (`run_crawl`), as its own stage:

- `media_candidates` lists every file a post or channel shows (photos, video and GIF
  thumbnails, sticker images, link-preview images, avatars; video, round-video, voice
  and audio files when `media_video_and_audio` is on) with what became of it so far;
- `wanted` decides which of them to download now (pure);
- `fetch_media` downloads them in turn through the project's Fetcher (its own rate limit
  for the CDN hosts, the same retries and deadline as pages, a per-file cap) and checks
  each: an HTML error page is not an image, an image must decode (Pillow). It keeps the
  original bytes. Past the run's budget the rest is "over budget" and waits for the next run;
- `save_media` writes one outcome: the file (once per sha256) and the attempt into
  media.db in one transaction, then its `media_files` row in telegram.db.

Statuses: stored, expired (the CDN answered 403 or 410: the URL's token ran out; a
re-crawl that sees a fresh URL tries again), too big (over `media_max_file_bytes`; tried
again when the cap is raised past its size), over budget (tried by the next run), failed
(with the reason; tried again on the next two runs, and whenever the URL changes).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils

from .fetch import Fetcher, FetchFailed, FileTooBig
from .schema import media_item, media_item_sql

log = logging.getLogger("scripts")

# Media kinds whose `url` is an image, and those whose `url` is a video or audio file.
IMAGE_FILES = {"photo"}
AV_FILES = {"video", "gif", "round_video", "voice", "audio"}
STICKER_IMAGE_SUFFIXES = (".webp", ".png", ".jpg", ".jpeg")  # else an animated sticker (.tgs, .webm)
# Kinds whose `thumbnail_url` is an image the CDN serves.
THUMBNAILED = {"video", "gif", "round_video", "sticker"}
EXPIRED_STATUSES = {403, 410}
FAILED_TRIES = 3  # a file that failed is tried on this many runs (and again when its URL changes)
GIVE_UP_AFTER = 5  # network failures in a row: the CDN cannot be reached, stop for this run

CANDIDATES_SQL = """
select c.*, f.status, f.url as tried_url, f.bytes as tried_bytes, f.attempts
from (
  select username as channel, null as post, null as position, 'avatar' as role, 'avatar' as kind,
    avatar_url as url, '9999' as date
  from channels
  union all
  select m.channel, m.post, m.position, 'file', m.kind, m.url, p.date
  from media m join posts p on p.post = m.post
  union all
  select m.channel, m.post, m.position, 'thumbnail', m.kind, m.thumbnail_url, p.date
  from media m join posts p on p.post = m.post where m.kind in ({thumbnailed})
  union all
  select channel, post, null, 'link_preview', 'link_preview', link_preview_image, date
  from posts
) c
left join media_files f on f.item = (case c.role
  when 'avatar' then {avatar} when 'link_preview' then {link_preview}
  when 'file' then {file} else {thumbnail} end)
where c.url like 'http%'
order by c.date desc, c.post, c.position, c.role
"""


@dataclass
class Candidate:
    item: str
    channel: str
    post: str | None
    position: int | None
    role: str  # file, thumbnail, link_preview, avatar
    kind: str  # the media kind (photo, video...), or link_preview / avatar
    url: str
    status: str | None = None  # what became of it so far (None: never tried)
    tried_url: str | None = None
    tried_bytes: int | None = None
    attempts: int = 0

    @property
    def is_image(self) -> bool:
        if self.role != "file":
            return True
        if self.kind == "sticker":
            return urlsplit(self.url).path.lower().endswith(STICKER_IMAGE_SUFFIXES)
        return self.kind in IMAGE_FILES


def media_candidates(db: sqlite_utils.Database, channels: set[str] | None = None) -> list[Candidate]:
    """Every file the dataset shows (of these channels, lower-case, when given), newest
    posts first, with what became of it so far."""
    sql = CANDIDATES_SQL.format(
        thumbnailed=", ".join(f"'{k}'" for k in sorted(THUMBNAILED)),
        **{role: media_item_sql(role, "c.channel", "c.post", "c.position")
           for role in ("avatar", "link_preview", "file", "thumbnail")})
    found = []
    for row in db.query(sql):
        if row["role"] == "file" and row["kind"] not in IMAGE_FILES | AV_FILES | {"sticker"}:
            continue  # documents, polls, locations, contacts: no file on the CDN
        if channels is not None and (row["channel"] or "").lower() not in channels:
            continue
        found.append(Candidate(
            item=media_item(row["role"], row["channel"], row["post"], row["position"]),
            channel=row["channel"], post=row["post"], position=row["position"], role=row["role"],
            kind=row["kind"], url=row["url"], status=row["status"], tried_url=row["tried_url"],
            tried_bytes=row["tried_bytes"], attempts=row["attempts"] or 0,
        ))
    return found


def wanted(candidate: Candidate, config: dict) -> bool:
    """Whether to download this file now, from what became of it so far (pure)."""
    if not (config["media_images"] if candidate.is_image else config["media_video_and_audio"]):
        return False
    status = candidate.status
    if status is None or status == "over budget":
        return True
    if status == "stored":
        return False
    url_changed = candidate.url != candidate.tried_url
    if status == "expired":
        return url_changed
    if status == "too big":
        return candidate.tried_bytes is not None and candidate.tried_bytes <= config["media_max_file_bytes"]
    return url_changed or candidate.attempts < FAILED_TRIES  # failed


@dataclass
class Download:
    """What one download gave: `status` and, when stored, the file."""

    candidate: Candidate
    status: str  # stored, expired, too big, over budget, failed
    reason: str | None = None
    fetched_at: str | None = None
    http_status: int | None = None
    duration_ms: int | None = None
    body: bytes | None = None
    sha256: str | None = None
    bytes: int | None = None  # the file's size; for "too big", its announced size or a lower bound
    mime: str | None = None
    width: int | None = None
    height: int | None = None


class NotMedia(ValueError):
    """The body is not the file it should be (an error page, an image that does not decode)."""


def check_file(body: bytes, content_type: str | None, image: bool) -> tuple[str, int | None, int | None]:
    """(mime, width, height) of a downloaded file, or NotMedia saying why it is not one (pure)."""
    declared = (content_type or "").split(";")[0].strip().lower()
    head = body[:64].lstrip().lower()
    if declared.startswith("text/") or head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise NotMedia(f"not {'an image' if image else 'a media file'}: the CDN answered "
                       f"{declared or 'no content type'} starting {body[:40]!r} (an error page?)")
    if not body:
        raise NotMedia("the CDN answered an empty body")
    if not image:
        # Served back from the site as they are: only types a browser plays, never renders as a page.
        if not declared.startswith(("video/", "audio/")) and declared not in ("application/ogg", "application/octet-stream"):
            raise NotMedia(f"not a video or audio file: the CDN answered {declared or 'no content type'}")
        return declared, None, None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as picture:
                picture.verify()  # reads the whole image: a truncated or corrupt file raises
                return Image.MIME.get(picture.format, declared or "image"), picture.width, picture.height
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds; any means "not an image"
        raise NotMedia(f"not an image Pillow can read ({declared or 'no content type'}): "
                       f"{type(error).__name__}: {error}") from None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def download(fetcher: Fetcher, candidate: Candidate, cap: int) -> Download:
    """Fetch and check one file; every outcome is a Download, never an exception."""
    import hashlib

    try:
        response = fetcher.get(candidate.url)
    except FileTooBig as error:
        return Download(candidate, "too big", f"larger than media_max_file_bytes ({cap:,} bytes)",
                        fetched_at=utc_now(), bytes=error.size)
    except FetchFailed as error:
        return Download(candidate, "failed", str(error), fetched_at=utc_now())
    done = Download(candidate, "failed", fetched_at=response.fetched_at, http_status=response.status,
                    duration_ms=response.duration_ms)
    if response.status in EXPIRED_STATUSES:
        done.status = "expired"
        done.reason = (f"HTTP {response.status}: the URL's token ran out before it was fetched; "
                       "a re-crawl that sees a fresh URL fills it in")
        return done
    if response.status != 200:
        done.reason = f"HTTP {response.status}"
        return done
    try:
        done.mime, done.width, done.height = check_file(response.body, response.content_type, candidate.is_image)
    except NotMedia as error:
        done.reason = str(error)
        return done
    done.status, done.body, done.bytes = "stored", response.body, len(response.body)
    done.sha256 = hashlib.sha256(response.body).hexdigest()
    return done


@dataclass
class MediaResult:
    counts: dict[str, int] = field(default_factory=dict)
    stored_bytes: int = 0
    new_files: int = 0  # files media.db did not have (others were already there for another item)
    waiting: int = 0  # left for the next run because the CDN could not be reached
    stopped: str | None = None

    def line(self) -> str:
        parts = [f"{n} {status}" + (f" ({self.stored_bytes:,} bytes, {self.new_files} new files)"
                                    if status == "stored" else "")
                 for status, n in sorted(self.counts.items(), key=lambda kv: STATUS_ORDER.index(kv[0]))]
        line = "media: " + (", ".join(parts) or "nothing to download")
        if self.counts.get("over budget"):
            line += "; over budget waits for the next run"
        if self.stopped:
            line += f"; stopped early ({self.stopped}): {self.waiting} files wait for the next run"
        return line


STATUS_ORDER = ["stored", "expired", "too big", "over budget", "failed"]


def fetch_media(candidates: list[Candidate], fetcher: Fetcher, config: dict, result: MediaResult):
    """Download the wanted candidates in turn (a generator of Downloads); past the budget
    the rest are "over budget", without a request."""
    budget, spent, failures_in_a_row = config["media_budget_bytes"], 0, 0
    todo = [c for c in candidates if wanted(c, config)]
    for index, candidate in enumerate(todo):
        if spent >= budget:
            yield Download(candidate, "over budget",
                           f"this run downloaded its budget of {budget:,} bytes (media_budget_bytes); "
                           "the next run fetches it")
            continue
        done = download(fetcher, candidate, config["media_max_file_bytes"])
        if done.status == "stored":
            spent += done.bytes
        network_failure = done.status == "failed" and done.http_status is None
        failures_in_a_row = failures_in_a_row + 1 if network_failure else 0
        yield done
        if failures_in_a_row >= GIVE_UP_AFTER:
            result.stopped = f"{GIVE_UP_AFTER} downloads in a row failed: {done.reason}"
            result.waiting = len(todo) - index - 1
            return


def save_media(db: sqlite_utils.Database, mdb: sqlite_utils.Database, done: Download) -> bool:
    """Record one outcome. The file and the attempt go into media.db in one transaction,
    then the item's `media_files` row into telegram.db, so telegram.db never cites a file
    media.db does not hold. Returns whether the file was new to media.db."""
    c = done.candidate
    new_file = False
    if done.status != "over budget":  # an attempt was made: media.db keeps it
        with mdb.atomic():
            if done.status == "stored":
                new_file = mdb.execute(
                    "insert or ignore into files (sha256, bytes, mime, width, height, stored_at, content) "
                    "values (?, ?, ?, ?, ?, ?, ?)",
                    [done.sha256, done.bytes, done.mime, done.width, done.height, done.fetched_at, done.body],
                ).rowcount == 1
            mdb.execute(
                "insert into fetches (item, url, fetched_at, status, reason, http_status, sha256, bytes, duration_ms) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [c.item, c.url, done.fetched_at, done.status, done.reason, done.http_status, done.sha256,
                 done.bytes, done.duration_ms],
            )
    row = {"item": c.item, "post": c.post, "channel": c.channel, "position": c.position, "role": c.role,
           "status": done.status, "reason": done.reason}
    if done.status != "over budget":
        row.update(url=c.url, sha256=done.sha256, bytes=done.bytes, mime=done.mime, width=done.width,
                   height=done.height, fetched_at=done.fetched_at, attempts=c.attempts + 1)
    with db.atomic():
        db["media_files"].upsert(row, pk="item")
    return new_file


def make_fetcher(config: dict) -> Fetcher:
    """The media fetcher: the CDN's own rate limit, the pages' retries and deadline, the file cap."""
    return Fetcher(
        requests_per_second=float(config["media_requests_per_second"]),
        timeout=float(config["timeout_seconds"]),
        max_retries=int(config["max_retries"]),
        request_deadline=float(config["request_deadline_seconds"]),
        max_bytes=int(config["media_max_file_bytes"]),
        retry_too_big=False,
    )


def store_media(db: sqlite_utils.Database, mdb: sqlite_utils.Database, config: dict,
                fetcher: Fetcher | None = None, channels: set[str] | None = None) -> MediaResult:
    """The media stage: download what is wanted into `mdb` (media.db), record every outcome."""
    result = MediaResult()
    own = fetcher is None
    fetcher = fetcher or make_fetcher(config)
    try:
        for done in fetch_media(media_candidates(db, channels), fetcher, config, result):
            if save_media(db, mdb, done):
                result.new_files += 1
            result.counts[done.status] = result.counts.get(done.status, 0) + 1
            if done.status == "stored":
                result.stored_bytes += done.bytes or 0
            elif done.status == "failed":
                log.info("%s: %s", done.candidate.url, done.reason)
    finally:
        if own:
            fetcher.close()
    return result


def run_media(db: sqlite_utils.Database, config: dict, echo=print,
              channels: set[str] | None = None) -> MediaResult | None:
    """The stage as `crawl` and `build` run it: media.db beside telegram.db, one summary
    line. `channels` (lower-case) limits it to those channels' files: a shard's own."""
    from .schema import media_beside, open_media

    path = database_path(db)
    if path is None:
        return None
    mdb = open_media(media_beside(path))
    try:
        result = store_media(db, mdb, config, channels=channels)
    finally:
        mdb.close()
    echo(result.line())
    return result


def database_path(db: sqlite_utils.Database) -> Path | None:
    """The file of an open database (None in memory)."""
    for _, name, file in db.execute("pragma database_list"):
        if name == "main":
            return Path(file) if file else None
    return None


def link_media_files(db: sqlite_utils.Database, mdb: sqlite_utils.Database) -> int:
    """`media_files` again from media.db's record of every download (for `rebuild`): per
    item, its latest attempt, for the items whose post or channel the database has.
    Returns how many rows were written."""
    posts = {r[0] for r in db.execute("select post from posts")}
    channels = {r[0] for r in db.execute("select username from channels")}
    rows = []
    for item, url, fetched_at, status, reason, sha256, size, attempts, mime, width, height in mdb.execute(
        "select f.item, f.url, f.fetched_at, f.status, f.reason, f.sha256, f.bytes, n.attempts, "
        "file.mime, file.width, file.height from fetches f "
        "join (select item, max(id) as id, count(*) as attempts from fetches group by item) n on n.id = f.id "
        "left join files file on file.sha256 = f.sha256"
    ):
        owner, _, part = item.rpartition("#")
        post = None if part == "avatar" else owner
        if (post is None and owner not in channels) or (post is not None and post not in posts):
            continue
        position, _, role = part.partition(".")
        role = role or ("file" if position.isdigit() else part)
        rows.append({
            "item": item, "post": post, "channel": owner if post is None else post.rpartition("/")[0],
            "position": int(position) if position.isdigit() else None, "role": role, "url": url,
            "status": status, "reason": reason, "sha256": sha256, "bytes": size, "mime": mime,
            "width": width, "height": height, "fetched_at": fetched_at, "attempts": attempts,
        })
    with db.atomic():
        db["media_files"].upsert_all(rows, pk="item")
    return len(rows)
