"""Atom feeds (datasette-atom) of the canned queries feed_new_posts, feed_edits_and_deletions
and feed_search: valid XML, the expected entries for the published test database, no live
markup from hostile posts, and links to them from the home page and the search query."""

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from conftest import publish_metadata

pytestmark = pytest.mark.asyncio

ATOM = "{http://www.w3.org/2005/Atom}"
QUERIES = publish_metadata()["databases"]["telegram"]["queries"]
FEEDS = ("feed_new_posts", "feed_edits_and_deletions", "feed_search")


async def feed(ds, name, **params):
    response = await ds.client.get(f"/telegram/{name}.atom", params=params)
    assert response.status_code == 200, response.text[:500]
    content_type = response.headers["content-type"]
    assert "atom" in content_type or "xml" in content_type, content_type
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    assert root.find(f"{ATOM}title").text == QUERIES[name]["title"]
    return [
        {
            "id": entry.find(f"{ATOM}id").text,
            "title": entry.find(f"{ATOM}title").text,
            "updated": entry.find(f"{ATOM}updated").text,
            "link": entry.find(f"{ATOM}link").get("href"),
            "content": (entry.find(f"{ATOM}content").text or ""),
            "content_type": entry.find(f"{ATOM}content").get("type"),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_no_live_markup(html: str):
    assert "<script" not in html.lower()
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "svg", "iframe", "object", "embed", "style"), tag
        for name, value in attrs.items():
            assert not name.lower().startswith("on"), (tag, name)
            assert name != "style", tag
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)


async def test_each_feed_is_a_canned_query_with_an_atom_link(ds):
    for name in FEEDS:
        assert QUERIES[name]["hide_sql"] is True and QUERIES[name]["title"]
        page = await ds.client.get(f"/telegram/{name}", params={"q": "Норвегия"} if name == "feed_search" else {})
        assert page.status_code == 200
        assert f"/telegram/{name}.atom" in page.text


async def test_new_posts_feed(ds):
    entries = await feed(ds, "feed_new_posts")
    ids = [e["id"] for e in entries]
    assert set(ids) == {f"https://t.me/TestEmb/{i}" for i in range(1, 7)} | {"https://t.me/SourceMFA/77"}
    assert [e["updated"] for e in entries] == sorted((e["updated"] for e in entries), reverse=True)
    by_id = {e["id"]: e for e in entries}
    first = by_id["https://t.me/TestEmb/1"]
    assert first["title"].startswith("TestEmb: Посол России в Норвегии посетил Осло")
    assert first["link"] == "https://t.me/TestEmb/1"
    assert first["content_type"] == "html" and "(обновлено)" in first["content"]
    assert by_id["https://t.me/SourceMFA/77"]["title"] == "SourceMFA: Original statement"
    # one channel
    only = await feed(ds, "feed_new_posts", channel="SourceMFA")
    assert [e["id"] for e in only] == ["https://t.me/SourceMFA/77"]


async def test_long_first_line_is_cut(ds):
    response = await ds.client.get("/telegram.json", params={
        "sql": QUERIES["feed_new_posts"]["sql"].replace("from posts\n", "from (select 'x' as channel, 1 as id, "
               "'2026-01-01' as date, null as html, 'u' as url, null as deleted_at, 'text' as kind, "
               "printf('%.200c', 'a') || char(10) || 'second' as text)\n"),
        "channel": "", "_shape": "objects"})
    assert response.status_code == 200, response.text[:500]
    title = response.json()["rows"][0]["atom_title"]
    assert title == "x: " + "a" * 99 + "…"


async def test_edits_and_deletions_feed(ds):
    entries = await feed(ds, "feed_edits_and_deletions")
    titles = {e["title"] for e in entries}
    assert "edited: TestEmb post 1" in titles and "deleted: TestEmb post 5" in titles
    assert all(e["title"].split(":")[0] in ("edited", "deleted", "restored") for e in entries)
    assert len({e["id"] for e in entries}) == len(entries)
    edited = next(e for e in entries if e["title"] == "edited: TestEmb post 1")
    assert edited["id"].startswith("https://t.me/TestEmb/1#edited-") and edited["link"] == "https://t.me/TestEmb/1"
    deleted = next(e for e in entries if e["title"] == "deleted: TestEmb post 5")
    assert "Deleted soon" in deleted["content"]


async def test_search_feed_finds_word_forms(ds):
    entries = await feed(ds, "feed_search", q="Норвегия")
    ids = [e["id"] for e in entries]
    assert "https://t.me/TestEmb/1" in ids
    assert "Норвегии" in next(e for e in entries if e["id"] == "https://t.me/TestEmb/1")["content"]
    none = await ds.client.get("/telegram/feed_search.json", params={"q": "Норвегия", "channel": "SourceMFA"})
    assert none.json()["rows"] == []


async def test_hostile_posts_are_not_live_markup_in_feeds(ds):
    for name, params in (("feed_new_posts", {}), ("feed_search", {"q": "Oslo"})):
        entries = await feed(ds, name, **params)
        hostile = next(e for e in entries if e["id"] == "https://t.me/TestEmb/4")
        assert hostile["content_type"] == "html" and "bold" in hostile["content"]
        for entry in entries:
            assert_no_live_markup(entry["content"])
    raw = (await ds.client.get("/telegram/feed_new_posts.atom")).text
    assert "<script" not in raw.lower() and "<img src=\"x\" onerror" not in raw


async def test_home_and_search_link_the_feeds(ds):
    html = (await ds.client.get("/")).text
    assert 'href="/telegram/feed_new_posts.atom"' in html
    assert 'href="/telegram/feed_edits_and_deletions.atom"' in html
    assert 'href="/telegram/feed_search.atom?q=' in html or 'href="/telegram/feed_search"' in html
    assert "/telegram/feed_search.atom?q=" in QUERIES["search"]["description_html"]
    search = (await ds.client.get("/telegram/search")).text
    assert "feed_search.atom?q=" in search


async def test_posts_without_html_still_make_a_feed(published_db, tmp_path):
    """Media-only posts have no html: their entries have empty content, not a 500."""
    import shutil
    import sqlite3

    from conftest import make_datasette

    copy = tmp_path / "telegram.db"
    shutil.copyfile(published_db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("update posts set html = null where channel = 'TestEmb' and id = 2")
    conn.commit()
    conn.close()
    ds = make_datasette(copy)
    for name, params in (("feed_new_posts", {"channel": ""}), ("feed_search", {"q": "ambassador", "channel": ""})):
        entries = await feed(ds, name, **params)
        assert any(e["link"] == "https://t.me/TestEmb/2" and e["content"] == "" for e in entries), name

