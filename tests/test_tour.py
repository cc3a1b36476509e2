"""Issue 12: a researcher's tour of the site in a real headless Chromium, on a database
built from the real captures in ../shared and on one crawled from the fake Telegram, at a
laptop's size and a phone's. Every page loads with no console or page error (other hosts'
images are stubbed offline), nothing scrolls sideways, and the internal links a page
offers (post pages, channels, linked rows) answer 200. Screenshots: artifacts/tour/."""

from __future__ import annotations

import gc
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import REAL_PAGES, ROOT, datasette_served, route_offline

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
SHOTS = ROOT / "artifacts" / "tour"


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    if not REAL_PAGES.is_dir():
        pytest.skip(f"real t.me captures not available at {REAL_PAGES}")
    from telegram_datasette.build import import_pages

    folder = tmp_path_factory.mktemp("tour-real")
    import_pages([REAL_PAGES], folder / "telegram.db", folder / "archive.db")
    settle(folder)
    with datasette_served(folder / "telegram.db", folder) as base:
        yield base, folder / "telegram.db"


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    from telegram_datasette.build import build_demo
    from telegram_datasette.derive import derive
    from telegram_datasette.schema import open_db

    folder = tmp_path_factory.mktemp("tour-demo")
    build_demo(folder / "telegram.db", folder / "archive.db", echo=lambda *a, **k: None)
    db = open_db(folder / "telegram.db")
    derive(db)
    db.close()
    settle(folder)
    with datasette_served(folder / "telegram.db", folder) as base:
        yield base, folder / "telegram.db"


def settle(folder: Path) -> None:
    """The site serves its files immutable, which reads no write-ahead log: fold each WAL
    into its file first, as the release's export does (a test once served a half-folded
    demo: "database disk image is malformed")."""
    gc.collect()  # connections the build left open
    for name in ("telegram.db", "media.db"):
        if (folder / name).exists():
            conn = sqlite3.connect(folder / name)
            try:
                assert conn.execute("pragma journal_mode = delete").fetchone()[0] == "delete", name
            finally:
                conn.close()


def one(db_path: Path, sql: str):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


def tour_paths(db_path: Path) -> list[str]:
    """The pages of issue 12 (home, database, posts, post, channel, search, canned queries,
    the map, a child table), chosen from what this database holds."""
    channel = one(db_path, "select channel from posts group by channel order by count(*) desc limit 1")[0]
    post = one(db_path, "select post from posts where media_count > 0 and html is not null order by date desc limit 1")
    replying = one(db_path, "select post from posts where reply_to_post in (select post from posts) limit 1")
    word = one(db_path, "select hashtag from hashtags group by hashtag order by count(*) desc limit 1")
    paths = ["/", "/telegram", "/telegram/posts", f"/telegram/channels/{channel}",
             f"/-/dashboards/channel?channel={channel}",
             f"/telegram/posts?channel={channel}&_facet=kind", "/telegram/media", "/telegram/places",
             "/telegram/search", "/telegram/posts_per_month", "/telegram/most_viewed", "/telegram/forward_sources"]
    for key in filter(None, [post, replying]):
        paths.append("/telegram/posts/" + key[0].replace("/", "~2F"))
    if word:
        paths += [f"/-/search?q={quote(word[0])}", f"/telegram/posts?_search={quote(word[0])}",
                  f"/telegram/search?q={quote(word[0])}"]
    return paths


def internal_links(page, base: str, path: str) -> list[str]:
    """Links to pages this tour promises: posts, channels and the rows linked to a post."""
    hrefs = page.eval_on_selector_all(
        ".tg-card a[href], .tg-linked a[href], h1 a[href]", "els => els.map(e => e.href)")
    wanted = [h for h in hrefs if h.startswith(base + "/telegram/")]
    return list(dict.fromkeys(wanted))[:12]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("site", ["real_site", "demo_site"])
def test_every_page_of_the_tour(request, chromium, site, size):
    base, db_path = request.getfixturevalue(site)
    width, height = SIZES[size]
    page = chromium.new_page(viewport={"width": width, "height": height})
    problems, followed = [], set()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    route_offline(page, base)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for number, path in enumerate(tour_paths(db_path)):
            response = page.goto(base + path, wait_until="networkidle" if "/-/" in path or "places" in path else "load")
            assert response.status == 200, path
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path}: {scroll} px wide on a {width} px screen"
            page.screenshot(path=str(SHOTS / f"{site}-{size}-{number:02}-{re.sub(r'[^a-z0-9]+', '_', path.lower())[:60]}.png"))
            assert problems == [], (path, problems)
            for link in internal_links(page, base, path):
                if link not in followed:
                    followed.add(link)
                    assert httpx.get(link, timeout=30).status_code == 200, (path, link)
        assert len(followed) >= 10
    finally:
        page.close()
