"""Shared test helpers. Keep this small: fixtures used by more than one test file."""

import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

# Real Telegram captures live outside the repository (never copied in): ../shared.
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_PAGES = SHARED / "telegram-pages" / "real"
FIXTURE_PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"


@pytest.fixture
def real_pages() -> Path:
    if not REAL_PAGES.is_dir():
        pytest.skip(f"real t.me captures not available at {REAL_PAGES}")
    return REAL_PAGES


# --- publishing (metadata, canned queries, plugins, places, browser): a small published
# database built from model objects, with hostile content, served like `make serve` does.

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
XSS_MARK = "__tg_xss"
# Each payload, if it ran, would set window.__tg_xss or open a dialog.
XSS_HTML = (
    '<script>window.__tg_xss="script"</script>'
    '<img src="x" onerror="window.__tg_xss=\'img\'">'
    '<a href="javascript:window.__tg_xss=\'href\'">click me</a>'
    '<svg onload="window.__tg_xss=\'svg\'"><script>alert(1)</script></svg>'
    '<b onmouseover="alert(2)" style="background:url(javascript:alert(3))">bold</b>'
    '<iframe src="javascript:alert(4)"></iframe>'
)
XSS_TEXT = 'Plain <script>alert("text")</script> and <img src=x onerror=alert(5)> in Oslo'
XSS_URL = "javascript:window.__tg_xss='url'"


def _publish_pages():
    from telegram_datasette.model import Channel, Count, Link, Media, Post, Reaction

    channel = Channel(
        username="TestEmb", title='Test <script>alert("title")</script> Embassy',
        description="About <svg onload=alert(6)>", description_html=XSS_HTML,
        avatar_url='https://cdn.example/a.jpg"><script>alert(7)</script>', channel_id=1001,
        counters={"subscribers": Count("1.2K", 1200, 50), "photos": Count("10", 10, 0)},
    )
    source = Channel(username="SourceMFA", title="Source MFA", channel_id=1002,
                     counters={"subscribers": Count("500", 500, 0)})

    def post(i, **kw):
        base = dict(channel="TestEmb", id=i, url=f"https://t.me/TestEmb/{i}",
                    date=f"2026-0{1 + i % 3}-1{i % 10}T10:00:00+00:00", views=100 * i,
                    views_text=str(100 * i), views_precision=0)
        base.update(kw)
        return Post(**base)

    posts = [
        post(1, text="Посол России в Норвегии посетил Осло и Киркенес. #Норвегия",
             html="Посол России в Норвегии посетил Осло и Киркенес. <a href=\"https://t.me/s/TestEmb?q=%23Норвегия\">#Норвегия</a>",
             hashtags=["Норвегия"],
             links=[Link("https://mid.ru/ru/news/1", "mid.ru", "МИД")],
             reactions=[Reaction(0, "👍", None, 12, "12"), Reaction(1, "🔥", None, 3, "3")],
             media=[Media(0, "photo", url="https://cdn.example/p1.jpg", thumbnail_url="https://cdn.example/p1t.jpg")]),
        post(2, text="The ambassador met colleagues in Moscow and London. #Diplomacy",
             html="The ambassador met colleagues in Moscow and London. #Diplomacy",
             hashtags=["Diplomacy", "Норвегия"],
             links=[Link("https://www.regjeringen.no/x", "regjeringen.no", "x"), Link("https://mid.ru/ru/news/2", "mid.ru", "y")],
             reply_to_id=999, reply_to_channel="TestEmb"),  # a reply to a post the dataset never saw
        post(3, text="Forwarded statement", html="Forwarded statement",
             forwarded_from_name="Source MFA", forwarded_from_channel="SourceMFA",
             forwarded_from_id=77, forwarded_from_url="https://t.me/SourceMFA/77"),
        post(4, text=XSS_TEXT, html=XSS_HTML,
             link_preview_url=XSS_URL, link_preview_title='<img src=x onerror=alert(8)>Title',
             link_preview_description='<script>alert(9)</script>', link_preview_site="<b>site</b>",
             link_preview_image='javascript:alert(10)',
             forwarded_from_name='<img src=x onerror=alert(11)>', forwarded_from_url=XSS_URL,
             hashtags=['<script>alert(12)</script>'],
             links=[Link(XSS_URL, None, "<svg onload=alert(13)>")],
             reactions=[Reaction(0, "<img src=x onerror=alert(14)>", None, 1, "1")],
             media=[Media(0, "photo", url=XSS_URL, thumbnail_url='https://cdn.example/t.jpg" onerror="alert(15)'),
                    Media(1, "location", title='<img src=x onerror=alert(16)>Pin', latitude=59.9, longitude=10.7)]),
        post(5, text="Deleted soon", html="Deleted soon"),
        post(6, text="Share a location", html="Share a location",
             reply_to_id=1, reply_to_channel="TestEmb", reply_to_author="Test Embassy",
             reply_to_text="<img src=x onerror=alert(17)>Посол России",
             media=[Media(0, "location", title="Embassy", latitude=59.92, longitude=10.71)]),
    ]
    original = Post(channel="SourceMFA", id=77, url="https://t.me/SourceMFA/77",
                    date="2026-01-13T08:30:00+00:00", text="Original statement",
                    html="Original statement", views=5000, views_text="5K", views_precision=500)
    return channel, source, posts, original


@pytest.fixture(scope="session")
def published_db(tmp_path_factory) -> Path:
    """telegram.db with two channels, forwards, an edit, a deletion, snapshots, places and
    hostile content, built through the real store and derive steps."""
    import dataclasses

    from telegram_datasette.derive import derive
    from telegram_datasette.model import Page
    from telegram_datasette.schema import open_db
    from telegram_datasette.store import mark_deleted, save_page

    channel, source, posts, original = _publish_pages()
    path = tmp_path_factory.mktemp("published") / "telegram.db"
    db = open_db(path)
    save_page(db, Page(channel=source, posts=[original]), "2026-01-14T00:00:00.000+00:00")
    save_page(db, Page(channel=channel, posts=posts), "2026-03-01T00:00:00.000+00:00")
    later = [dataclasses.replace(p, views=(p.views or 0) + 50, views_text=str((p.views or 0) + 50)) for p in posts]
    later[0] = dataclasses.replace(later[0], text=later[0].text + " (обновлено)", html=later[0].html + " (обновлено)", edited=True)
    channel.counters["subscribers"] = type(channel.counters["subscribers"])("1.3K", 1300, 50)
    save_page(db, Page(channel=channel, posts=[p for p in later if p.id != 5]), "2026-03-02T00:00:00.000+00:00")
    mark_deleted(db, "TestEmb", [5], "2026-03-02T00:00:00.000+00:00")
    derive(db)
    db.close()
    return path


def publish_metadata() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "metadata.yml").read_text())


SERVE_SETTINGS = {"sql_time_limit_ms": 3000, "max_returned_rows": 1000, "suggest_facets": False}


def make_datasette(db_path: Path, *, plain: bool = False):
    from datasette.app import Datasette

    if plain:
        return Datasette([str(db_path)], immutables=[], settings=SERVE_SETTINGS)
    return Datasette(
        [], immutables=[str(db_path)], metadata=publish_metadata(),
        template_dir=str(ROOT / "templates"), settings=SERVE_SETTINGS,
    )


@pytest.fixture(scope="session")
def ds(published_db):
    return make_datasette(published_db)


def serve_command(db_path: Path, port: int) -> list[str]:
    """The published site's way: the database immutable, the project's options."""
    from telegram_datasette.publish import METADATA, TEMPLATES, served_files, settings_args

    immutable = [part for path in served_files(db_path) for part in ("--immutable", str(path))]
    return [str(Path(sys.executable).parent / "datasette"), "serve", *immutable,
            "--metadata", str(METADATA), "--template-dir", str(TEMPLATES), *settings_args(),
            "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process, timeout: float = 30.0, log: Path | None = None) -> None:
    """Until url answers; fails with the server's output (stderr, or `log`) if it exits."""
    import time

    import httpx

    def output() -> str:
        if log is not None:
            return log.read_text(errors="replace")[-3000:]
        return process.stderr.read().decode(errors="replace")[-3000:] if process.stderr else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{output()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{output() if log else ''}")


def stop(process) -> None:
    """Terminate a server (kill it if it does not go)."""
    import subprocess

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def datasette_served(db_path: Path, workdir: Path):
    """db_path served by a real `datasette serve` on a loopback port, as `make serve` does."""
    import subprocess

    port = free_port()
    log = workdir / "datasette.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(serve_command(db_path, port), cwd=ROOT, stdout=output, stderr=output)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/-/versions.json", process, log=log)
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="session")
def live_datasette(published_db, tmp_path_factory):
    """The published database served by a real `datasette serve` on a loopback port."""
    with datasette_served(published_db, tmp_path_factory.mktemp("meta")) as base:
        yield base


@pytest.fixture(scope="module")
def chromium():
    """A real headless Chromium (Debian's), through Playwright.

    Module-scoped: the sync API runs an event loop on this thread while it is open,
    and asyncio tests in later modules need the thread free.
    """
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: browser tests need Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def png(width: int, height: int, rgb=(0xE8, 0xEC, 0xE0)) -> bytes:
    """A plain PNG: what the stubbed network answers for map tiles and CDN images."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


TILE = png(256, 256)


def route_offline(page, base: str) -> None:
    """No real network: requests to `base` go through, other hosts' images (map tiles,
    Telegram's CDN) get a plain PNG, anything else is refused; every request to another
    host is recorded in `page.external`."""
    page.external = []

    def route(route):
        request = route.request
        if request.url.startswith(base):
            route.continue_()
            return
        page.external.append(request.url)
        if request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=TILE)
        else:
            route.abort()

    page.route("**/*", route)
