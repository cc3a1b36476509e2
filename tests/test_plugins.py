"""The render plugin and the post page, through datasette.client on a real database."""

import re

import pytest

pytestmark = pytest.mark.asyncio

DANGEROUS = [
    re.compile(r"<script[^>]*>\s*(alert|window\.__tg_xss)", re.I),
    re.compile(r"<[a-z]+[^>]*\son[a-z]+\s*=", re.I),  # event handler attributes
    re.compile(r"(href|src|action)\s*=\s*[\"']?\s*javascript:", re.I),
    re.compile(r"<svg[^>]*\son", re.I),
    re.compile(r"<iframe", re.I),
]


def assert_no_live_payload(html: str):
    for pattern in DANGEROUS:
        match = pattern.search(html)
        assert match is None, f"{pattern.pattern} found: {html[max(0, match.start() - 80):match.end() + 80]}"


async def test_posts_table_renders_sanitised_html_media_and_reactions(ds):
    response = await ds.client.get("/telegram/posts?_sort=id&channel=TestEmb")
    assert response.status_code == 200
    html = response.text
    assert_no_live_payload(html)
    assert html.count('class="tg-post"') == 6
    assert 'src="https://cdn.example/p1t.jpg"' in html  # media thumbnail
    assert "👍 12" in html  # reactions
    assert '<a href="https://t.me/TestEmb/1"' in html  # the post's t.me link
    assert 'href="https://t.me/SourceMFA/77"' in html  # forwarded: link to the original


async def test_post_page_reads_like_the_post(ds):
    response = await ds.client.get("/telegram/posts/TestEmb~2F1")
    assert response.status_code == 200
    html = response.text
    card = html[html.index('<article class="tg-card"'):html.index("</article>")]
    assert "Посол России в Норвегии" in card
    assert 'href="https://t.me/TestEmb/1"' in card
    assert "p1t.jpg" in card and "👍 12" in card and "🔥 3" in card
    assert "Versions (2)" in html and "(обновлено)" in html
    assert "Views over time" in html and ">100<" in html and ">150<" in html
    assert "All columns" in html  # the row itself is still there


async def test_forwarded_post_links_to_archived_original(ds):
    html = (await ds.client.get("/telegram/posts/TestEmb~2F3")).text
    assert 'class="tg-original" href="https://t.me/SourceMFA/77"' in html
    assert 'class="tg-original-archived" href="/telegram/posts/SourceMFA~2F77"' in html


async def test_hostile_post_page_and_channel_are_inert(ds):
    for path in ("/telegram/posts/TestEmb~2F4", "/telegram/channels", "/telegram/channels/TestEmb",
                 "/telegram/media", "/telegram/links", "/telegram/reactions", "/telegram/hashtags",
                 "/telegram/places", "/telegram/post_versions", "/-/search?q=Plain"):
        response = await ds.client.get(path)
        assert response.status_code == 200, path
        assert_no_live_payload(response.text)


async def test_unknown_post_falls_back_to_the_plain_row_page(ds):
    assert (await ds.client.get("/telegram/posts/TestEmb~2F999")).status_code == 404


async def test_helpers():  # async only because the module is marked asyncio
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("telegram_render", Path(__file__).parents[1] / "plugins" / "telegram_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.web_url("javascript:alert(1)") is None
    assert module.web_url(" https://example.org/x ") == "https://example.org/x"
    assert module.tme_post_url("bad/name", 1) is None
    assert module.tme_post_url("Good_1", "7") == "https://t.me/Good_1/7"
    cleaned = str(module.sanitise('<a href="javascript:x()" onclick="y()">a</a><script>z()</script><span class="tg-spoiler">s</span>'))
    assert "javascript" not in cleaned and "onclick" not in cleaned and "script" not in cleaned
    assert 'class="tg-spoiler"' in cleaned
    assert module.thumbnail("http://insecure/x.jpg") is None


DEMO_PAGES = ["/", "/telegram", "/telegram/posts", "/telegram/posts/TestEmb~2F1", "/telegram/channels",
              "/telegram?sql=select+1", "/-/search?q=test"]


async def test_a_demo_site_says_so_on_every_page(published_db, tmp_path):
    import shutil

    import sqlite_utils

    from conftest import make_datasette

    demo = tmp_path / "telegram.db"
    shutil.copyfile(published_db, demo)
    sqlite_utils.Database(demo)["dataset_info"].upsert({"key": "demo", "value": "1"}, pk="key")
    for ds, expected in ((make_datasette(demo), True), (make_datasette(published_db), False)):
        for path in DEMO_PAGES:
            response = await ds.client.get(path)
            assert response.status_code == 200, path
            assert ("telegram-demo-note" in response.text) is expected, path
