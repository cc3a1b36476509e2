"""The project's own fake Telegram: a loopback HTTP server that serves generated
channels the way t.me does, so the crawler can be developed and tested offline.

    GET /s/NAME                newest page (about 20 message ids)
    GET /s/NAME?before=ID      older page;  GET /s/NAME?after=ID  newer page
    GET /NAME/ID?embed=1       one post as an embed widget ("Post not found" if absent)
    GET /NAME                  the contact page (no channel history)
    /s/NAME of a channel without public preview, or of an unknown one: 302 to /NAME
    GET /file/HEX.EXT?token=T  a file of the CDN: the pages point their media here (FakeMedia)

Tests drive it from Python (`FakeTelegram`, `FakeChannel`); another process can drive
it over HTTP through the admin endpoints under /_fake/ (see `AdminRoutes`). Faults
(`FakeTelegram.inject` and its named helpers) play the hostile cases: rate limits, any
status, slow, truncated, drip-fed, endless and deeply nested responses, a missing
"more" link, a changed layout and a page that is not Telegram's.
"""

from __future__ import annotations

import functools
import io
import json
import random
import re
import threading
import time
from bisect import bisect_left, bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import click

from devtools.demo import _KINDS, CDN, count, count_precision, generate_channel, make_post
from telegram_datasette.model import Channel, Post
from devtools.render import (
    _ENTITY_RE, format_count, last_id, render_channel_page, render_contact_page, render_embed_page,
)

PAGE_IDS = 20  # t.me shows about 20 message ids per page
ADMIN_PREFIX = "/_fake/"


# ---------------------------------------------------------------- channels and their changes

@dataclass
class FakeChannel:
    """A channel as the fake server holds it: the record, its posts (oldest first)."""

    channel: Channel
    posts: list[Post]
    public_preview: bool = True
    seed: int = 0
    listed: bool = True  # in the demo's crawl list; False: a source reached only through forwards
    _ids: list[int] = field(default_factory=list, repr=False)  # every occupied message id
    _owner: dict[int, Post] = field(default_factory=dict, repr=False)  # message id -> post

    def __post_init__(self):
        self.posts.sort(key=lambda p: p.id)
        self.reindex()
        self._rng = random.Random(f"{self.channel.username}/changes/{self.seed}")

    @classmethod
    def demo(cls, username: str, n_posts: int, *, seed: int = 0, first_id: int = 1,
             public_preview: bool = True, listed: bool = True, **options) -> FakeChannel:
        channel, posts = generate_channel(username, n_posts, seed=seed, first_id=first_id, **options)
        return cls(channel, posts, public_preview=public_preview, seed=seed, listed=listed)

    @property
    def username(self) -> str:
        return self.channel.username

    def reindex(self) -> None:
        self._owner = {}
        for post in self.posts:
            for message_id in post.album_ids or [post.id]:
                self._owner[message_id] = post
        self._ids = sorted(self._owner)

    def post(self, post_id: int) -> Post | None:
        return self._owner.get(post_id)

    def page(self, *, before: int | None = None, after: int | None = None) -> tuple[list[Post], bool, bool]:
        """The posts t.me would show, and whether older / newer ones exist.

        A page takes about 20 message ids; an album whose ids straddle the edge is
        shown whole, so a page may hold a few more.
        """
        ids = self._ids
        if after is not None:
            start = bisect_right(ids, after)
            chosen = ids[start:start + PAGE_IDS]
        elif before is not None:
            end = bisect_left(ids, before)
            chosen = ids[max(0, end - PAGE_IDS):end]
        else:
            chosen = ids[-PAGE_IDS:]
        posts: list[Post] = []
        for message_id in chosen:
            post = self._owner[message_id]
            if not posts or posts[-1] is not post:
                posts.append(post)
        if not posts:
            return [], False, False
        return posts, posts[0].id > ids[0], last_id(posts[-1]) < ids[-1]

    # -- scripted changes between crawls --------------------------------------------

    def add_posts(self, n: int = 1, *, kinds: list[str] | None = None, gap: int = 0,
                  when: datetime | None = None) -> list[Post]:
        """Publish n new posts after the newest one (ids after a `gap` of deleted ids)."""
        next_id = (self._ids[-1] + 1 if self._ids else 1) + gap
        last_date = datetime.fromisoformat(self.posts[-1].date) if self.posts else datetime.now(timezone.utc)
        when = when or last_date
        added = []
        for i in range(n):
            kind = kinds[i % len(kinds)] if kinds else self._rng.choice(_KINDS[:-1])  # no service
            when = when + timedelta(minutes=self._rng.randint(5, 180))
            post = make_post(self._rng, self.username, next_id, kind, when, channel_title=self.channel.title or "")
            post.channel_id = self.channel.channel_id
            added.append(post)
            next_id = last_id(post) + 1
        self.posts.extend(added)
        self.reindex()
        return added

    def edit_post(self, post_id: int, text: str | None = None) -> Post:
        """Change a post's text; t.me then shows the word "edited"."""
        post = self._owner[post_id]
        post.text = text if text is not None else (post.text or "") + "\n\nUpdate: the time has changed."
        post.html = None  # rendered again from the new text
        post.hashtags = [m.group("tag") for m in _ENTITY_RE.finditer(post.text) if m.group("tag")]
        post.mentions = [m.group("mention")[1:] for m in _ENTITY_RE.finditer(post.text) if m.group("mention")]
        post.edited = True
        return post

    def delete_post(self, post_id: int) -> Post:
        post = self._owner[post_id]
        self.posts.remove(post)
        self.reindex()
        return post

    def grow_views(self, factor: float = 1.25, *, add: int = 0, ids: list[int] | None = None) -> int:
        """Views (and reactions) grow as posts are read. Returns how many posts changed."""
        targets = [self._owner[i] for i in ids] if ids else self.posts
        changed = 0
        for post in targets:
            if post.views is None:
                continue
            post.views = int(post.views * factor) + add
            post.views_text = format_count(post.views)
            post.views_precision = count_precision(post.views_text)
            for reaction in post.reactions:
                reaction.count = int((reaction.count or 0) * factor) + (1 if add else 0)
                reaction.count_text = format_count(reaction.count)
                reaction.count_precision = count_precision(reaction.count_text)
            changed += 1
        return changed

    def set_counter(self, name: str, value: int) -> None:
        self.channel.counters[name] = count(value)


# ---------------------------------------------------------------- faults

FAULT_KINDS = ("rate_limit", "status", "slow", "truncate", "no_more_link", "layout", "not_telegram",
               "drip", "endless", "deep_nesting")


@dataclass
class Fault:
    kind: str  # one of FAULT_KINDS
    times: int | None = 1  # how many matching requests it hits; None: until cleared
    path: str | None = None  # regex searched in "path?query"; None: every request
    retry_after: int = 1  # rate_limit
    status: int = 503  # status
    seconds: float = 0.0  # slow: the delay; drip: the pause between two bytes
    keep: float = 0.5  # truncate: the share of the body sent
    lie_length: bool = True  # truncate: announce the full length, then hang up
    chunk: int = 65536  # endless: bytes per chunk
    depth: int = 50_000  # deep_nesting: how many elements deep the first message text goes
    tag: str = "b"  # deep_nesting: the element nested

    def matches(self, target: str) -> bool:
        return self.times != 0 and (self.path is None or re.search(self.path, target) is not None)


NOT_TELEGRAM_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Checking your connection</title></head>
<body><div class="portal"><h1>One moment, please</h1>
<p>This network requires you to accept its terms before browsing.</p>
<form method="post" action="/accept"><button>Accept and continue</button></form></div></body></html>
"""


# ---------------------------------------------------------------- media (the CDN)
#
# The demo records carry CDN URLs (devtools.demo.CDN/<hex>.<ext>?token=<hex>). The pages
# the fake serves point them at the fake itself (`FakeMedia.here`), with the time the
# page was served in the token, and the fake answers them with real image bytes made by
# Pillow (JPEG, PNG, WebP; several sizes, from the file's name) or stand-in video and
# audio bytes. `FakeMedia.ttl` makes URLs expire (403) that long after their page was
# served; `FakeMedia.fault` plays slow, huge, error-page and any-status answers.
# Media requests are logged in `FakeMedia.requests`, not in `FakeTelegram.requests`.

MEDIA_PREFIX = "/file/"
MEDIA_FAULTS = ("slow", "huge", "error_page", "status")
_CDN_URL = re.compile(re.escape(CDN) + r"/([0-9a-f]+\.[a-z0-9]+)\?token=([0-9a-f]+)")
_MEDIA_PATH = re.compile(r"^/file/([0-9a-f]+)\.([a-z0-9]+)$")
IMAGE_SIZES = [(320, 240), (640, 480), (800, 600), (1280, 720), (512, 512), (800, 1000), (90, 90)]
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "mp4": "video/mp4",
               "ogg": "audio/ogg"}
CDN_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>Error</title></head><body>"
                  b"<h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n")


@dataclass
class MediaFault:
    kind: str  # one of MEDIA_FAULTS
    path: str | None = None  # regex searched in "path?query"; None: every media request
    times: int | None = None  # how many requests it hits; None: until cleared
    seconds: float = 0.0  # slow
    size: int = 50_000_000  # huge: the body's size
    announce: bool = True  # huge: send Content-Length (else a chunked body of that size)
    status: int = 404  # status
    content_type: str = "text/html; charset=utf-8"  # error_page: the type it claims


@functools.lru_cache(maxsize=1024)
def media_bytes(name: str, ext: str) -> tuple[str, bytes]:
    """(content type, body) of a fake CDN file: a picture whose size, colours and format
    follow from its name (a .jpg is sometimes a PNG, as link previews are), or stand-in
    video and audio bytes."""
    import hashlib

    digest = hashlib.sha256(name.encode()).digest()
    if ext in ("mp4", "ogg"):
        head = b"\x00\x00\x00\x18ftypmp42" if ext == "mp4" else b"OggS\x00\x02"
        size = 20_000 + int.from_bytes(digest[:2], "big") * 3
        return MEDIA_TYPES[ext], head + (digest * (size // len(digest) + 1))[:size]
    from PIL import Image, ImageDraw

    width, height = IMAGE_SIZES[digest[0] % len(IMAGE_SIZES)]
    picture = Image.new("RGB", (width, height), tuple(digest[1:4]))
    draw = ImageDraw.Draw(picture)
    for i in range(6):  # a few shapes, so each file differs and compresses like a photo
        x, y = digest[4 + i] * width // 256, digest[10 + i] * height // 256
        draw.ellipse([x - width // 6, y - height // 6, x + width // 6, y + height // 6],
                     fill=tuple(digest[16 + i:19 + i]))
    draw.text((8, 8), name[:12], fill=(255, 255, 255))
    kind = "webp" if ext == "webp" else "png" if ext == "png" or digest[20] % 5 == 0 else "jpg"
    out = io.BytesIO()
    picture.save(out, {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[kind], quality=80)
    return MEDIA_TYPES[kind], out.getvalue()


class FakeMedia:
    """The fake's CDN: URLs on the fake server, files made on request, expiry and faults."""

    def __init__(self):
        self.ttl: float | None = None  # seconds a URL works after its page was served
        self.faults: list[MediaFault] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def here(self, html: str, base_url: str | None) -> str:
        """The page with its CDN URLs on the fake server, each token carrying the time."""
        if not base_url:
            return html
        issued = int(time.time() * 1000)
        return _CDN_URL.sub(lambda m: f"{base_url}{MEDIA_PREFIX}{m[1]}?token={m[2]}-{issued}", html)

    def fault(self, kind: str, path: str | None = None, times: int | None = None, **options) -> MediaFault:
        if kind not in MEDIA_FAULTS:
            raise ValueError(f"unknown media fault {kind!r}; expected one of {', '.join(MEDIA_FAULTS)}")
        fault = MediaFault(kind, path, times, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()
        self.ttl = None

    def take_fault(self, target: str) -> MediaFault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times != 0 and (fault.path is None or re.search(fault.path, target)):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def expired(self, query: dict) -> bool:
        token = (query.get("token") or [""])[0]
        issued = token.rpartition("-")[2]
        if self.ttl is None or not issued.isdigit():
            return False
        return time.time() * 1000 - int(issued) > self.ttl * 1000


# ---------------------------------------------------------------- the server


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a crawler past its deadline or size cap) is not an error."""

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

class FakeTelegram:
    """Serves FakeChannels like t.me; holds the request log and the pending faults."""

    def __init__(self, channels: dict[str, FakeChannel] | list[FakeChannel] | None = None):
        if isinstance(channels, dict):
            channels = list(channels.values())
        self.channels: dict[str, FakeChannel] = {c.username.lower(): c for c in channels or []}
        self.requests: list[str] = []  # "path?query" of every non-admin request, in order
        self.user_agents: list[str] = []  # the User-Agent of each of those requests
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.stopped = threading.Event()  # ends drip-fed and endless responses on stop()
        self.base_url: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self.media = FakeMedia()  # the CDN (see "media" above)

    # -- running ---------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        handler = type("Handler", (FakeTelegramHandler,), {"fake": self})
        self.stopped.clear()
        self._server = QuietServer((host, port), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        # a short poll interval makes stop() (and so each test) quick
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-telegram", daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        self.stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0):
        """Run in a background thread; yields the base URL, e.g. http://127.0.0.1:54321."""
        url = self.start(host, port)
        try:
            yield url
        finally:
            self.stop()

    # -- scripted changes (delegated to the channel) ----------------------------------

    def channel(self, name: str) -> FakeChannel:
        return self.channels[name.lower()]

    def add_channel(self, channel: FakeChannel) -> None:
        with self.lock:
            self.channels[channel.username.lower()] = channel

    def add_posts(self, name: str, n: int = 1, **options) -> list[Post]:
        with self.lock:
            return self.channel(name).add_posts(n, **options)

    def edit_post(self, name: str, post_id: int, text: str | None = None) -> Post:
        with self.lock:
            return self.channel(name).edit_post(post_id, text)

    def delete_post(self, name: str, post_id: int) -> Post:
        with self.lock:
            return self.channel(name).delete_post(post_id)

    def grow_views(self, name: str, factor: float = 1.25, **options) -> int:
        with self.lock:
            return self.channel(name).grow_views(factor, **options)

    def set_counter(self, name: str, counter: str, value: int) -> None:
        with self.lock:
            self.channel(name).set_counter(counter, value)

    def advance(self, name: str | None = None, *, new_posts: int = 3, edits: int = 1,
                deletions: int = 1, views_factor: float = 1.2) -> dict:
        """One scripted batch of changes, as between two real crawls."""
        report = {}
        with self.lock:
            for fake in [self.channel(name)] if name else list(self.channels.values()):
                if not fake.posts:
                    continue
                rng = fake._rng
                old = [p for p in fake.posts if p.kind == "message"]
                edited = [fake.edit_post(p.id).id for p in rng.sample(old, min(edits, len(old)))]
                pool = [p for p in fake.posts if p.id not in edited]
                deleted = [fake.delete_post(p.id).id for p in rng.sample(pool, min(deletions, len(pool)))]
                fake.grow_views(views_factor)
                added = [p.id for p in fake.add_posts(new_posts)]
                subscribers = fake.channel.counters.get("subscribers")
                if subscribers and subscribers.value is not None:
                    fake.set_counter("subscribers", subscribers.value + rng.randint(1, 50))
                report[fake.username] = {"added": added, "edited": edited, "deleted": deleted,
                                         "views_factor": views_factor}
        return report

    # -- faults ------------------------------------------------------------------------

    def inject(self, kind: str, times: int | None = 1, path: str | None = None, **options) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind=kind, times=times, path=path, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def rate_limit(self, times: int | None = 1, retry_after: int = 1, path: str | None = None) -> Fault:
        """429 Too Many Requests with Retry-After."""
        return self.inject("rate_limit", times, path, retry_after=retry_after)

    def server_error(self, times: int | None = 1, status: int = 503, path: str | None = None) -> Fault:
        return self.inject("status", times, path, status=status)

    def slow(self, seconds: float, times: int | None = 1, path: str | None = None) -> Fault:
        return self.inject("slow", times, path, seconds=seconds)

    def truncate(self, times: int | None = 1, keep: float = 0.5, lie_length: bool = True,
                 path: str | None = None) -> Fault:
        """Cut the body. lie_length=True: Content-Length announces the whole page and the
        connection closes early (a transfer cut off on the wire; clients see a protocol
        error). lie_length=False: a complete response whose HTML is cut (a broken page)."""
        return self.inject("truncate", times, path, keep=keep, lie_length=lie_length)

    def drop_more_link(self, times: int | None = 1, path: str | None = None) -> Fault:
        return self.inject("no_more_link", times, path)

    def change_layout(self, times: int | None = 1, path: str | None = None) -> Fault:
        """Class names renamed: content is there, but no recognisable posts."""
        return self.inject("layout", times, path)

    def not_telegram(self, times: int | None = 1, path: str | None = None) -> Fault:
        return self.inject("not_telegram", times, path)

    def status(self, status: int, times: int | None = 1, path: str | None = None) -> Fault:
        """Answer with this HTTP status (404 on an older page, 410, 500...)."""
        return self.inject("status", times, path, status=status)

    def drip(self, seconds: float = 5.0, times: int | None = 1, path: str | None = None) -> Fault:
        """Send the headers, then the body one byte every `seconds`: each read of the
        client gets data in time, so only an overall deadline ends the request."""
        return self.inject("drip", times, path, seconds=seconds)

    def endless(self, times: int | None = 1, chunk: int = 65536, path: str | None = None) -> Fault:
        """A chunked body that never ends: the page, then filler, until the client hangs up."""
        return self.inject("endless", times, path, chunk=chunk)

    def deep_nesting(self, depth: int = 50_000, tag: str = "b", times: int | None = 1,
                     path: str | None = None) -> Fault:
        """The first message text of the page nested `depth` <tag> elements deep."""
        return self.inject("deep_nesting", times, path, depth=depth, tag=tag)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_faults(self, target: str) -> list[Fault]:
        """The faults that hit this request (at most one of each kind), used up once."""
        hit: dict[str, Fault] = {}
        with self.lock:
            for fault in self.faults:
                if fault.kind not in hit and fault.matches(target):
                    hit[fault.kind] = fault
                    if fault.times is not None:
                        fault.times -= 1
            self.faults = [f for f in self.faults if f.times != 0]
        return list(hit.values())

    # -- responses -----------------------------------------------------------------------

    def respond(self, path: str, query: dict[str, list[str]], faults: dict[str, Fault]) -> tuple[int, dict, bytes]:
        """(status, headers, body) for a GET, faults applied except slow/truncate."""
        if "rate_limit" in faults:
            return 429, {"Retry-After": str(faults["rate_limit"].retry_after)}, b"Too Many Requests\n"
        if "status" in faults:
            status = faults["status"].status
            return status, {}, f"<html><body><h1>{status} {status_phrase(status)}</h1></body></html>\n".encode()
        if "not_telegram" in faults:
            return 200, {}, NOT_TELEGRAM_HTML.encode()
        parts = [p for p in path.split("/") if p]
        with self.lock:
            if len(parts) == 2 and parts[0] == "s":
                return self.channel_page(parts[1], query, faults)
            if len(parts) == 2 and parts[1].isdigit():
                return self.post_page(parts[0], int(parts[1]), query)
            if len(parts) == 1:
                return self.contact_page(parts[0])
        return 404, {}, b"<html><body>Not found</body></html>\n"

    def channel_page(self, name: str, query: dict, faults: dict) -> tuple[int, dict, bytes]:
        fake = self.channels.get(name.lower())
        if fake is None or not fake.public_preview:
            return 302, {"Location": f"/{name}"}, b""
        before = _int(query.get("before"))
        after = _int(query.get("after"))
        posts, has_older, has_newer = fake.page(before=before, after=after)
        html = render_channel_page(
            fake.channel, posts, has_older=has_older, has_newer=has_newer,
            more_link="no_more_link" not in faults, layout="renamed" if "layout" in faults else "current",
            seen_at=int(time.time()),
        )
        if "deep_nesting" in faults:
            html = nest_deeply(html, faults["deep_nesting"].depth, faults["deep_nesting"].tag)
        return 200, {}, self.media.here(html, self.base_url).encode()

    def post_page(self, name: str, post_id: int, query: dict) -> tuple[int, dict, bytes]:
        fake = self.channels.get(name.lower())
        post = fake.post(post_id) if fake else None
        if "embed" in query:
            if fake is None:
                return 200, {}, render_embed_page(Channel(username=name), None).encode()
            return 200, {}, self.media.here(render_embed_page(fake.channel, post), self.base_url).encode()
        return self.contact_page(name)

    def contact_page(self, name: str) -> tuple[int, dict, bytes]:
        fake = self.channels.get(name.lower())
        if fake is None:
            return 200, {}, render_contact_page(name).encode()
        c = fake.channel
        subscribers = c.counters.get("subscribers")
        return 200, {}, render_contact_page(
            c.username, title=c.title, description=c.description,
            subscribers=subscribers.text if subscribers else None, preview=fake.public_preview,
        ).encode()

    def admin(self, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        return AdminRoutes(self).handle(method, path[len(ADMIN_PREFIX):], body)


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


MESSAGE_TEXT = '<div class="tgme_widget_message_text js-message_text" dir="auto">'


def nest_deeply(html: str, depth: int, tag: str = "b") -> str:
    """The page with `depth` nested <tag> elements at the start of its first message text
    (or of the message history when no post has text): a parser-breaking page."""
    nested = f"<{tag}>" * depth + "deep" + f"</{tag}>" * depth
    at = html.find(MESSAGE_TEXT)
    at = at + len(MESSAGE_TEXT) if at >= 0 else html.index("js-message_history\">") + len("js-message_history\">")
    return html[:at] + nested + html[at:]


def _int(values: list[str] | None) -> int | None:
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


class AdminRoutes:
    """HTTP control for a fake server running in another process. JSON in, JSON out.

    POST /_fake/advance   {"channel"?, "new_posts"?, "edits"?, "deletions"?, "views_factor"?}
    POST /_fake/fault     {"kind", "times"?, "path"?, ...Fault options}  (kinds: FAULT_KINDS)
    POST /_fake/clear     drop pending faults and the request log
    GET  /_fake/log       {"requests": [...]}
    GET  /_fake/channels  each channel's newest id and post count
    """

    def __init__(self, fake: FakeTelegram):
        self.fake = fake

    def handle(self, method: str, route: str, body: bytes) -> tuple[int, dict, bytes]:
        try:
            data = json.loads(body or b"{}")
            if (method, route) == ("POST", "advance"):
                result = self.fake.advance(data.pop("channel", None), **data)
            elif (method, route) == ("POST", "fault"):
                fault = self.fake.inject(data.pop("kind"), data.pop("times", 1), data.pop("path", None), **data)
                result = {"kind": fault.kind, "times": fault.times, "path": fault.path}
            elif (method, route) == ("POST", "clear"):
                self.fake.clear_faults()
                with self.fake.lock:
                    self.fake.requests.clear()
                result = {"ok": True}
            elif (method, route) == ("GET", "log"):
                result = {"requests": list(self.fake.requests)}
            elif (method, route) == ("GET", "channels"):
                result = {c.username: {"posts": len(c.posts), "newest_id": c._ids[-1] if c._ids else None,
                                       "public_preview": c.public_preview}
                          for c in self.fake.channels.values()}
            else:
                return 404, {}, _json({"error": f"no admin route {method} /_fake/{route}"})
        except (ValueError, TypeError, KeyError) as error:
            return 400, {}, _json({"error": f"{type(error).__name__}: {error}"})
        return 200, {}, _json(result)


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


class FakeTelegramHandler(BaseHTTPRequestHandler):
    fake: FakeTelegram  # set on the subclass made by FakeTelegram.start
    protocol_version = "HTTP/1.1"  # keep-alive, like the real site
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format, *args):  # quiet: the request log is in fake.requests
        pass

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def handle_request(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if split.path.startswith(ADMIN_PREFIX):
            self.send(*self.fake.admin(method, split.path, body), content_type="application/json")
            return
        if split.path.startswith(MEDIA_PREFIX):
            self.send_media(split.path, parse_qs(split.query))
            return
        target = split.path + (f"?{split.query}" if split.query else "")
        with self.fake.lock:
            self.fake.requests.append(target)
            self.fake.user_agents.append(self.headers.get("User-Agent", ""))
        faults = {f.kind: f for f in self.fake.take_faults(target)}
        if "slow" in faults:
            time.sleep(faults["slow"].seconds)
        status, headers, payload = self.fake.respond(split.path, parse_qs(split.query), faults)
        if "endless" in faults:
            self.send_endless(status, headers, payload, faults["endless"].chunk)
        elif "drip" in faults:
            self.send_drip(status, headers, payload, faults["drip"].seconds)
        else:
            self.send(status, headers, payload, truncate=faults.get("truncate"))

    def send(self, status: int, headers: dict, body: bytes, *, content_type: str = "text/html; charset=utf-8",
             truncate: Fault | None = None) -> None:
        sent = body
        if truncate is not None:
            sent = body[:int(len(body) * truncate.keep)]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        announced = len(body) if truncate is not None and truncate.lie_length else len(sent)
        self.send_header("Content-Length", str(announced))
        for name, value in headers.items():
            self.send_header(name, value)
        if truncate is not None and truncate.lie_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(sent)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_media(self, path: str, query: dict) -> None:
        """A file of the fake CDN (see FakeMedia), with its expiry and faults."""
        media = self.fake.media
        target = path + ("?" + "&".join(f"{k}={v[0]}" for k, v in query.items()) if query else "")
        with media.lock:
            media.requests.append(target)
        fault = media.take_fault(target)
        if fault is not None and fault.kind == "slow" and self.fake.stopped.wait(fault.seconds):
            return
        found = _MEDIA_PATH.match(path)
        if media.expired(query):
            self.send(403, {}, b"<html><body><h1>403 Forbidden</h1></body></html>\n")
        elif fault is not None and fault.kind == "status":
            self.send(fault.status, {}, f"<html><body><h1>{fault.status}</h1></body></html>\n".encode())
        elif fault is not None and fault.kind == "error_page":
            self.send(200, {}, CDN_ERROR_PAGE, content_type=fault.content_type)
        elif fault is not None and fault.kind == "huge":
            self.send_huge(fault.size, fault.announce)
        elif found is None or found[2] not in MEDIA_TYPES:
            self.send(404, {}, b"<html><body>Not found</body></html>\n")
        else:
            content_type, body = media_bytes(found[1], found[2])
            self.send(200, {"Cache-Control": "max-age=2592000"}, body, content_type=content_type)

    def send_huge(self, size: int, announce: bool) -> None:
        """A JPEG-looking body of `size` bytes, announced or chunked, until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length" if announce else "Transfer-Encoding", str(size) if announce else "chunked")
        self.end_headers()
        self.close_connection = True
        chunk, sent = b"\xff\xd8\xff\xe0" + b"\x00" * 65532, 0
        try:
            while sent < size and not self.fake.stopped.is_set():
                part = chunk[:size - sent]
                self.wfile.write(part if announce else b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
            if not announce:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def send_drip(self, status: int, headers: dict, body: bytes, seconds: float) -> None:
        """The whole length announced, then one byte every `seconds`, until the client
        hangs up or the server stops."""
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.flush()
            for i in range(len(body)):
                if self.fake.stopped.wait(seconds):
                    return
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_endless(self, status: int, headers: dict, body: bytes, chunk: int) -> None:
        """A chunked body that never ends: the page, then filler, until the client hangs
        up or the server stops."""
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        filler = (b"<!-- and more -->\n" * (chunk // 18 + 1))[:chunk]
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            while not self.fake.stopped.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(filler), filler))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


# ---------------------------------------------------------------- demo set and CLI

def demo_channels(seed: int = 0, specs: list[tuple[str, int]] | None = None) -> dict[str, FakeChannel]:
    """The default demo: an embassy channel with every kind of post, the ministry
    channel it forwards from, a channel whose ids start late, and one without preview;
    and, not in the crawl list, the sources its forwards point to: a culture channel
    (some originals edited or deleted after the forward) and a trade desk without a
    public preview. "A. Reader" forwards come from a hidden account (no link)."""
    if specs:
        channels = [FakeChannel.demo(name, n, seed=seed) for name, n in specs]
    else:
        channels = [
            FakeChannel.demo("demo_embassy", 300, seed=seed, title="Demo Embassy in Norway",
                             verified=True, subscribers=12_345),
            FakeChannel.demo("demo_mfa", 120, seed=seed, title="Demo MFA", subscribers=1_510_000),
            FakeChannel.demo("demo_late_start", 60, seed=seed, first_id=5001, title="Demo Late Start"),
            FakeChannel.demo("demo_closed", 10, seed=seed, public_preview=False, title="Demo Closed"),
            FakeChannel.demo("demo_culture_no", 400, seed=seed, listed=False, title="Arctic Culture Demo",
                             every_kind=False),
            FakeChannel.demo("trade_desk_demo", 40, seed=seed, listed=False, public_preview=False,
                             title="Trade Desk Demo", every_kind=False),
        ]
    channels = {c.username: c for c in channels}
    link_forwards(channels, random.Random(f"forwards/{seed}"))
    return channels


def link_forwards(channels: dict[str, FakeChannel], rng: random.Random) -> None:
    """Make every forward between served channels point at a real, earlier original
    carrying the same text (as Telegram copies it), then change some originals after the
    fact: an edit, so the forward keeps the old text, or a deletion."""
    linked: list[tuple[FakeChannel, Post]] = []
    for fake in channels.values():
        for post in fake.posts:
            source = channels.get((post.forwarded_from_channel or "").lower())
            if source is None or source is fake:
                continue
            earlier = [o for o in source.posts if o.date < post.date and o.text and not o.album_ids
                       and not o.forwarded_from_name]  # an original is the source's own post
            if not earlier:
                continue
            original = earlier[-1 - rng.randrange(min(5, len(earlier)))]
            post.forwarded_from_id = original.id
            post.forwarded_from_url = f"https://t.me/{source.username}/{original.id}"
            post.forwarded_from_name = source.channel.title
            post.text, post.html = original.text, original.html
            post.hashtags, post.mentions = list(original.hashtags), list(original.mentions)
            post.links = list(original.links)
            linked.append((source, original))
    unique = {(s.username, o.id): (s, o) for s, o in linked}
    changeable = [(s, o) for s, o in unique.values() if s.listed is False and s.public_preview]
    for number, (source, original) in enumerate(changeable[:12]):
        if number % 3 == 0:
            source.delete_post(original.id)
        elif number % 3 == 1:
            source.edit_post(original.id, (original.text or "") + "\n\nCorrection: the date has changed.")


@contextmanager
def demo_server(seed: int = 0, specs: list[tuple[str, int]] | None = None):
    """The demo set served on a free loopback port: yields (base_url, channel names to
    crawl). The channel without public preview is served but not listed."""
    fake = FakeTelegram(demo_channels(seed, specs))
    with fake.serve() as url:
        yield url, [c.username for c in fake.channels.values() if c.public_preview and c.listed]


def parse_channel_spec(value: str) -> tuple[str, int]:
    name, _, posts = value.partition(":")
    if not name or not posts.isdigit():
        raise click.BadParameter(f"expected NAME:POSTS, e.g. demo_embassy:300, got {value!r}")
    return name, int(posts)


@click.command("fake-telegram")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int, help="0 picks a free port.")
@click.option("--channel", "channel_specs", multiple=True, metavar="NAME:POSTS",
              help="Serve a generated channel (repeatable). Default: the demo set.")
@click.option("--seed", default=0, show_default=True, type=int)
def cli(host, port, channel_specs, seed):
    """Serve generated channels like t.me, on loopback, until interrupted."""
    specs = [parse_channel_spec(v) for v in channel_specs]
    fake = FakeTelegram(demo_channels(seed, specs))
    url = fake.start(host, port)
    for c in fake.channels.values():
        note = "" if c.public_preview else " (no public preview: /s/ redirects)"
        click.echo(f"{url}/s/{c.username}  {len(c.posts)} posts{note}")
    click.echo(f"admin: POST {url}/_fake/advance, POST {url}/_fake/fault, GET {url}/_fake/log")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    cli()
