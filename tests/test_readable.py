"""Values as people read them, on HTML pages only (plugins/telegram_render.py).

The session database (conftest.published_db) has no custom emoji, paid reactions, big
counters, placeholder avatars or times with microseconds, so this module copies it and adds
a channel with all of them (and hostile values in each new rendering), through the real
store and derive steps. JSON and CSV are checked to be exactly what Datasette gives."""

import base64
import csv
import io
import json
import re
import shutil
import sqlite3
from html.parser import HTMLParser

import pytest

from conftest import SCREENSHOTS, XSS_MARK, datasette_served, make_datasette

GLYPH_ID = "5368324170671202286"  # a custom emoji the page showed with its fallback glyph
BARE_ID = "5465587407350942612"  # a custom emoji the page showed without one
HOSTILE_ID = '"><img src=x onerror=alert(20)>'
SVG = ('<svg width="160" height="160" viewBox="0 0 100 100" xmlns="http://www.w3.org/2000/svg">'
       '<rect width="100" height="100" fill="#6fa8dc"/><text x="50" y="66" font-size="44" '
       'text-anchor="middle" fill="#fff">B</text></svg>')
# As t.me gives it: base64 with the padding percent-encoded.
AVATAR = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode().replace("=", "%3D")
HOSTILE_AVATAR = "data:text/html;base64," + base64.b64encode(b"<script>window.__tg_xss='avatar'</script>").decode()
BARE_BASE64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(60))).decode()
OBSERVED = "2026-03-03T14:05:09.123456+00:00"
FETCH_SHA = "3f2a9b0c1d2e" + "4" * 52
# A post that writes FTS5's highlight markers itself, around a payload.
MARKED_TEXT = 'Sanctions </mark><img src=x onerror="window.__tg_xss=\'mark\'"> <mark>again'

class _Elements(HTMLParser):
    """What a browser would make of a page: tags, their attributes, and script texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def assert_no_live_payload(html: str):
    """No element or attribute a payload could have made: event handlers, javascript: or
    data:text URLs, frames, or a script that is not the site's own."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag not in ("iframe", "object", "embed"), (tag, attrs)
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, attrs)
            if name in ("href", "src", "action", "formaction"):
                assert not (value or "").strip().lower().startswith(("javascript:", "data:text")), (tag, attrs)
    for script in parser.scripts:
        assert "alert(" not in script and XSS_MARK not in script, script[:200]


@pytest.fixture(scope="module")
def readable_db(published_db, tmp_path_factory):
    from telegram_datasette.derive import derive
    from telegram_datasette.model import Channel, Count, Page, Post, Reaction
    from telegram_datasette.schema import open_db
    from telegram_datasette.store import save_page

    path = tmp_path_factory.mktemp("readable") / "telegram.db"
    shutil.copyfile(published_db, path)
    db = open_db(path)
    big = Channel(
        username="BigChan", title="Big channel", channel_id=2001, avatar_url=AVATAR,
        counters={"subscribers": Count("23.7M", 23_700_000, 50_000), "photos": Count("812", 812, 0),
                  "videos": Count("1.2K", 1_200, 50)},
    )
    posts = [
        Post(channel="BigChan", id=10, url="https://t.me/BigChan/10", date="2026-03-01T14:05:00+00:00",
             text="Sanctions statement by the ministry", html="Sanctions statement by the <b>ministry</b>",
             views=1_510_000, views_text="1.51M", views_precision=5_000,
             reactions=[Reaction(0, "❤", GLYPH_ID, 23_400, "23.4K", 50),
                        Reaction(1, None, BARE_ID, 7_760, "7.76K", 5),
                        Reaction(2, None, None, 15, "15", 0, paid=True),
                        Reaction(3, "👍", None, 5, "<img src=x onerror=alert(21)>", 0),
                        Reaction(4, None, HOSTILE_ID, 2, "2", 0)]),
        Post(channel="BigChan", id=11, url="https://t.me/BigChan/11", date="2026-03-02T09:30:00+00:00",
             text=MARKED_TEXT, html="Sanctions again", views=999, views_text="999", views_precision=0),
    ]
    save_page(db, Page(channel=big, posts=posts), OBSERVED,
              fetch={"url": "https://t.me/s/BigChan", "fetched_at": OBSERVED, "status": 200, "sha256": FETCH_SHA,
                     "bytes": 123_456, "duration_ms": 321, "channel": "BigChan", "source": "crawl"})
    for name, avatar in (("EvilPic", HOSTILE_AVATAR), ("RawPic", BARE_BASE64)):
        save_page(db, Page(channel=Channel(username=name, title=name, avatar_url=avatar), posts=[]), OBSERVED)
    derive(db)
    db.close()
    return path


@pytest.fixture(scope="module")
def rds(readable_db):
    return make_datasette(readable_db)


def cells(html: str, column: str) -> list[str]:
    """The inner HTML of every cell of a column on a table page."""
    return re.findall(rf'<td class="col-{re.escape(column)} [^"]*">(.*?)</td>', html, re.S)


def primary_keys(path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in sorted((r for r in conn.execute(f"pragma table_info([{table}])") if r[5]), key=lambda r: r[5])]
    finally:
        conn.close()


def sqlite_rows(path, table: str) -> list[dict]:
    """Every row, in primary key order (Datasette's order for `?_sort=<first key>`)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        order = ", ".join(f"[{c}]" for c in primary_keys(path, table))
        return [dict(r) for r in conn.execute(f"select * from [{table}] order by {order}")]
    finally:
        conn.close()


# --- item 8: values as people read them ---------------------------------------------------

@pytest.mark.asyncio
async def test_reactions_show_emoji_and_counts(rds):
    response = await rds.client.get("/telegram/reactions?channel=BigChan&_sort=position")
    assert response.status_code == 200
    html = response.text
    assert_no_live_payload(html)
    for column in ("reaction", "emoji"):
        shown = cells(html, column)
        assert shown[0] == f'<span class="tg-emoji tg-custom-emoji" title="custom emoji {GLYPH_ID}">❤</span>'
        assert shown[1] == f'<span class="tg-emoji tg-custom-emoji" title="custom emoji {BARE_ID}">◌</span>'
        assert shown[2] == '<span class="tg-emoji tg-paid" title="paid reaction (Telegram Stars)">⭐</span>'
        assert shown[3] == "👍"
        # a hostile id stays in the title, escaped
        assert shown[4] == ('<span class="tg-emoji tg-custom-emoji" title="custom emoji '
                            '&#34;&gt;&lt;img src=x onerror=alert(20)&gt;">◌</span>')
        assert not any(BARE_ID in re.sub(r'title="[^"]*"', "", cell) for cell in shown)  # the id is no glyph
    counts = cells(html, "count")
    assert counts[0] == ('<span class="tg-count" style="white-space:nowrap" title="Telegram shows 23.4K">'
                         '23,400 <span class="tg-rounded">(23.4K)</span></span>')
    assert counts[1].startswith('<span class="tg-count"') and "7,760 <span" in counts[1] and "(7.76K)" in counts[1]
    assert counts[2] == "15"  # exact and small: as Datasette shows it
    assert "(&lt;img src=x onerror=alert(21)&gt;)" in counts[3]  # a hostile count text, escaped

    # snapshots keep only the key: the glyph comes from the post's reactions row
    html = (await rds.client.get("/telegram/reaction_snapshots?channel=BigChan&_sort=reaction")).text
    assert_no_live_payload(html)
    shown = dict(zip([re.sub(r"<[^>]+>", "", c) for c in cells(html, "count_text")], cells(html, "reaction")))
    assert shown["23.4K"] == f'<span class="tg-emoji tg-custom-emoji" title="custom emoji {GLYPH_ID}">❤</span>'
    assert shown["7.76K"] == f'<span class="tg-emoji tg-custom-emoji" title="custom emoji {BARE_ID}">◌</span>'
    assert shown["15"] == '<span class="tg-emoji tg-paid" title="paid reaction (Telegram Stars)">⭐</span>'
    assert ">2026-03-03 14:05 UTC</time>" in cells(html, "fetched_at")[0]


@pytest.mark.asyncio
async def test_post_cards_show_custom_emoji(rds):
    html = (await rds.client.get("/telegram/posts/BigChan~2F10")).text
    card = html[html.index('<article class="tg-card"'):html.index("</article>")]
    assert f'title="custom emoji {BARE_ID}">◌</span> 7.76K' in card
    assert f'title="custom emoji {GLYPH_ID}">❤</span> 23.4K' in card
    assert "⭐</span> 15" in card
    assert f">{BARE_ID}<" not in card


@pytest.mark.asyncio
async def test_channels_counters_dates_and_avatars(rds):
    html = (await rds.client.get("/telegram/channels")).text
    assert_no_live_payload(html)
    names = [re.sub(r"<[^>]+>", "", c).strip() for c in cells(html, "username")]
    row = dict(zip(names, range(len(names))))
    subscribers = cells(html, "subscribers")[row["BigChan"]]
    assert "23,700,000 <span class=\"tg-rounded\">(23.7M)</span>" in subscribers
    assert 'title="Telegram shows 23.7M (±50,000)"' in subscribers
    assert "1,200 <span" in cells(html, "videos")[row["BigChan"]]
    assert cells(html, "photos")[row["BigChan"]] == "812"
    # dates: compact, the stored value in the title, never wrapping
    fetched = cells(html, "last_fetched_at")[row["BigChan"]]
    assert fetched == (f'<time datetime="{OBSERVED}" title="{OBSERVED}" style="white-space:nowrap">'
                       "2026-03-03 14:05 UTC</time>")
    # the placeholder avatar as a small picture, never as base64 text
    avatar = cells(html, "avatar_url")[row["BigChan"]]
    assert avatar.startswith('<img class="tg-avatar" src="data:image/svg+xml;base64,')
    assert 'width="32" height="32"' in avatar and 'alt="placeholder picture"' in avatar
    assert html.count(AVATAR[30:90]) == 1  # in the src only
    # not an image, or no data: URI at all: a short label
    for name in ("EvilPic", "RawPic"):
        cell = cells(html, "avatar_url")[row[name]]
        assert cell.startswith('<span class="tg-embedded"') and "[embedded picture]" in cell
    assert HOSTILE_AVATAR[25:60] not in html and BARE_BASE64[10:50] not in html
    # the hostile https avatar of the session database is still shown as Datasette shows it
    assert "alert(7)</script>" not in html


@pytest.mark.asyncio
async def test_posts_table_views_dates_and_hashes(rds, readable_db):
    cards = (await rds.client.get("/telegram/posts?channel=BigChan&_sort=id")).text
    assert "1,510,000 <span class=\"tg-rounded\">(1.51M)</span></span> views" in cards
    html = (await rds.client.get("/telegram/posts?channel=BigChan&_sort=id&_tg_view=table")).text  # the grid
    assert_no_live_payload(html)
    assert "1,510,000 <span class=\"tg-rounded\">(1.51M)</span>" in cells(html, "views")[0]
    assert 'title="Telegram shows 1.51M (±5,000)"' in cells(html, "views")[0]
    assert cells(html, "views")[1] == "999"
    assert ">2026-03-01 14:05 UTC</time>" in cells(html, "date")[0]
    assert ">2026-03-03 14:05 UTC</time>" in cells(html, "first_seen_at")[0]
    digest = next(r["text_sha256"] for r in sqlite_rows(readable_db, "posts") if (r["channel"], r["id"]) == ("BigChan", 10))
    assert cells(html, "text_sha256")[0] == f'<code class="tg-hash" title="{digest}">{digest[:12]}…</code>'
    assert digest not in re.sub(r'title="[^"]*"', "", html)
    fetches = (await rds.client.get("/telegram/fetches")).text
    assert f'<code class="tg-hash" title="{FETCH_SHA}">3f2a9b0c1d2e…</code>' in fetches
    assert "123,456" in fetches


@pytest.mark.asyncio
async def test_view_snapshots(rds):
    html = (await rds.client.get("/telegram/view_snapshots?channel=BigChan&_sort=post_id")).text
    assert cells(html, "fetched_at")[0] == (f'<time datetime="{OBSERVED}" title="{OBSERVED}" '
                                           'style="white-space:nowrap">2026-03-03 14:05 UTC</time>')
    assert "1,510,000 <span class=\"tg-rounded\">(1.51M)</span>" in cells(html, "views")[0]
    # the session database's snapshots (milliseconds)
    html = (await rds.client.get("/telegram/view_snapshots?channel=TestEmb&_sort=post_id")).text
    assert ">2026-03-01 00:00 UTC</time>" in html and 'title="2026-03-01T00:00:00.000+00:00"' in html


@pytest.mark.asyncio
@pytest.mark.parametrize("table", ["reactions", "channels", "posts", "view_snapshots", "reaction_snapshots", "fetches"])
async def test_json_and_csv_are_datasettes_own(rds, readable_db, table):
    """JSON rows are the stored values; CSV is byte for byte what a plain Datasette gives."""
    stored = sqlite_rows(readable_db, table)
    by_key = f"_sort={primary_keys(readable_db, table)[0]}&_size=max"
    response = await rds.client.get(f"/telegram/{table}.json?_shape=array&{by_key}")
    assert response.status_code == 200
    assert response.json() == stored
    default = (await rds.client.get(f"/telegram/{table}.json")).json()
    assert {json.dumps(r, sort_keys=True) for r in
            (dict(zip(default["columns"], r)) for r in default["rows"])} <= {json.dumps(r, sort_keys=True) for r in stored}
    assert "<span" not in json.dumps(default) and "<time" not in json.dumps(default)

    plain = make_datasette(readable_db, plain=True)
    ours = (await rds.client.get(f"/telegram/{table}.csv?{by_key}")).text
    theirs = (await plain.client.get(f"/telegram/{table}.csv?{by_key}")).text
    assert ours == theirs
    assert list(csv.DictReader(io.StringIO(ours))) == [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in stored]
    assert "<span" not in ours and "<time" not in ours


# --- in Chromium, at both sizes ----------------------------------------------------------------

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
INSPECT = """() => ({
  mark: window.%s === undefined ? null : String(window.%s),
  handlers: [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
    .filter(a => a.name.toLowerCase().startsWith('on')).map(a => el.tagName + ' ' + a.name)),
  scripts: document.querySelectorAll('#search-all-results script, td script').length,
})""" % (XSS_MARK, XSS_MARK)


@pytest.fixture(scope="module")
def readable_site(readable_db, tmp_path_factory):
    with datasette_served(readable_db, tmp_path_factory.mktemp("readable-site")) as base:
        yield base


def open_page(chromium, base, path, viewport):
    page = chromium.new_page(viewport=VIEWPORTS[viewport])
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
    response = page.goto(base + path, wait_until="networkidle")
    assert response.status == 200
    return page


def finish(page, name):
    page.wait_for_timeout(200)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    found = page.evaluate(INSPECT)
    assert found == {"mark": None, "handlers": [], "scripts": 0}
    assert page.problems == []


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_reactions_in_chromium(chromium, readable_site, viewport):
    page = open_page(chromium, readable_site, "/telegram/reactions?_sort=position&channel=BigChan", viewport)
    try:
        bare = page.locator(f'td.col-emoji .tg-custom-emoji[title="custom emoji {BARE_ID}"]')
        assert bare.inner_text() == "◌"
        assert page.locator(f'td.col-reaction .tg-custom-emoji[title="custom emoji {GLYPH_ID}"]').inner_text() == "❤"
        assert page.locator("td.col-emoji .tg-paid").inner_text() == "⭐"
        assert page.locator("td.col-count").first.inner_text() == "23,400 (23.4K)"
        assert BARE_ID not in page.locator("td.col-emoji").all_inner_texts()
        finish(page, f"readable_reactions_{viewport}")
        page.goto(readable_site + "/telegram/channels", wait_until="networkidle")
        avatar = page.locator("img.tg-avatar")
        assert avatar.count() == 1 and avatar.evaluate("img => img.complete && img.naturalWidth > 0")
        time_cell = page.locator("td.col-last_fetched_at time").first
        assert time_cell.evaluate("t => t.getClientRects().length") == 1  # one line
        finish(page, f"readable_channels_{viewport}")
    finally:
        page.close()

