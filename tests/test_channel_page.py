"""The channel page (the `channel` dashboard of metadata.yml, drawn by datasette-dashboards)
and the post page's views-over-time chart: through datasette.client for what the server
answers, and in headless Chromium at desktop and phone sizes for what a person sees.

The database is conftest's published one plus more hostile values (a mention, a domain, a
views text and a channel username), so every chart, card and table of the page meets a payload.
"""

import re
import shutil
import sqlite3
from importlib.metadata import version
from urllib.parse import urlencode

import pytest

from conftest import ROOT, SCREENSHOTS, XSS_MARK, datasette_served, make_datasette, publish_metadata, route_offline

DASHBOARD = "/-/dashboards/channel"
VIEWPORTS = [(1280, 900), (390, 844)]
HOSTILE_MENTION = '<img src=x onerror="window.__tg_xss=\'mention\'">'
HOSTILE_DOMAIN = '<svg onload="window.__tg_xss=\'domain\'">.example'
HOSTILE_VIEWS = '<img src=x onerror="window.__tg_xss=\'views\'">'
HOSTILE_USERNAME = 'Bad"><img src=x onerror=alert(30)>'
# What table and metric charts may contain: the plugin inserts them with innerHTML.
ALLOWED_TAG = re.compile(r'<(?:/(?:a|strong|em)|strong|em|br|a href="(?:/telegram/[^"<>]*|https://t\.me/s/\w+)"'
                         r'(?: rel="noopener noreferrer nofollow")?)>')


def charts() -> dict:
    return publish_metadata()["plugins"]["datasette-dashboards"]["channel"]["charts"]


def insert(db, table: str, **values) -> None:
    """A row as the store writes it: with the `post` key where the table has one."""
    columns = [row[1] for row in db.execute(f"pragma table_info([{table}])")]
    if "post" in columns and "post" not in values:
        values["post"] = f"{values['channel']}/{values.get('post_id', values.get('id'))}"
    names = ", ".join(f"[{name}]" for name in values)
    db.execute(f"insert into [{table}] ({names}) values ({', '.join('?' * len(values))})", list(values.values()))


def post_path(channel: str, post_id: int) -> str:
    """The post's page: its key `post` ("<channel>/<id>") as Datasette writes it in a URL."""
    return f"/telegram/posts/{channel}~2F{post_id}"


@pytest.fixture(scope="module")
def hostile_db(published_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("channel_page") / "telegram.db"
    shutil.copy(published_db, path)
    with sqlite3.connect(path) as db:
        insert(db, "mentions", channel="TestEmb", post_id=4, username=HOSTILE_MENTION)
        insert(db, "links", channel="TestEmb", post_id=4, position=9, url="https://x.example/", domain=HOSTILE_DOMAIN,
               text="x")
        db.execute("update posts set views_text = ? where channel = 'TestEmb' and id = 2", [HOSTILE_VIEWS])
        insert(db, "channels", username=HOSTILE_USERNAME, title="<b>bad</b>")
    db.close()
    return path


@pytest.fixture(scope="module")
def ds(hostile_db):
    return make_datasette(hostile_db)


async def chart_rows(ds, slug: str, channel: str | None) -> list[dict]:
    """A chart's rows, fetched as the plugin's JavaScript fetches them."""
    params = {"sql": charts()[slug]["query"], "_shape": "objects"}
    if channel is not None:
        params["channel"] = channel
    response = await ds.client.get("/telegram.json?" + urlencode(params))
    assert response.status_code == 200, (slug, response.text[:500])
    return response.json()["rows"]


def test_pinned_with_datasette_0_65_and_installed_on_the_site():
    from telegram_datasette.publish import site_installs

    assert "datasette-dashboards==0.8.0" in (ROOT / "requirements.txt").read_text().splitlines()
    assert "datasette-dashboards==0.8.0" in site_installs("the-package")
    assert version("datasette-dashboards") == "0.8.0" and version("datasette") == "0.65.5"


def test_every_vega_chart_is_interpreted_not_compiled():
    """The site's CSP has no 'unsafe-eval': Vega must interpret its expressions (`ast`)."""
    libraries = {slug: chart["library"] for slug, chart in charts().items()}
    assert set(libraries.values()) <= {"vega-lite", "metric", "table"}  # no raw Vega, no map
    for slug, chart in charts().items():
        if chart["library"] == "vega-lite":
            assert chart["display"]["usermeta"]["embedOptions"]["ast"] is True, slug


@pytest.mark.asyncio
async def test_the_page_answers_with_every_chart_and_the_channels_to_pick(ds):
    response = await ds.client.get(DASHBOARD + "?channel=TestEmb")
    assert response.status_code == 200
    for slug in charts():
        assert f'id="chart-{slug}"' in response.text
    assert '<option value="TestEmb" selected>TestEmb</option>' in response.text
    assert "Bad&#34;&gt;" not in response.text and "Bad&quot;&gt;" not in response.text  # no posts: not listed


@pytest.mark.asyncio
async def test_values_are_readable(ds):
    assert await chart_rows(ds, "subscribers", "testemb") == [{"value": "1.3K"}]  # any case
    assert await chart_rows(ds, "posts", "TestEmb") == [{"value": "6"}]
    assert await chart_rows(ds, "first_post", "TestEmb") == [{"value": "2026-01-13"}]
    assert await chart_rows(ds, "last_post", "TestEmb") == [{"value": "2026-03-15"}]
    about = {row[" "]: row["  "] for row in await chart_rows(ds, "about", "TestEmb")}
    assert about["Subscribers"] == "1.3K (1,300 ± 50)"
    assert about["Channel"] == "<strong>Test &lt;script&gt;alert(\"title\")&lt;/script&gt; Embassy</strong>"
    assert about["Crawled"] == "2026-03-01 to 2026-03-02 00:00 UTC"
    months = await chart_rows(ds, "posts_per_month", "TestEmb")
    assert sum(row["posts"] for row in months) == 6
    assert sum(row["posts"] for row in months if row["origin"] == "forwarded") == 2
    subscribers = await chart_rows(ds, "subscribers_over_time", "TestEmb")
    assert [row["subscribers"] for row in subscribers] == [1200, 1300]
    hashtags = {row["label"]: row["posts"] for row in await chart_rows(ds, "top_hashtags", "TestEmb")}
    assert hashtags["#Норвегия"] == 2
    sources = {row["label"]: row["posts"] for row in await chart_rows(ds, "forward_sources", "TestEmb")}
    assert sources["Source MFA"] == 1
    views = await chart_rows(ds, "recent_views", "TestEmb")
    assert [row["id"] for row in views][:2] == [5, 2]  # newest first
    latest = [row["newest first (times UTC)"] for row in await chart_rows(ds, "latest_posts", "TestEmb")]
    assert len(latest) == 6
    assert latest[0].startswith('<a href="/telegram/posts/TestEmb') and " · <em>deleted</em><br>" in latest[0]
    assert "2026-03-12 10:00</a> · &lt;img src=x" in latest[1]  # the hostile views text, escaped


@pytest.mark.asyncio
@pytest.mark.parametrize("channel", ["TestEmb", "SourceMFA", "nobody", HOSTILE_USERNAME, None])
async def test_cards_hold_only_escaped_text_and_safe_links(ds, channel):
    """Metric and table charts are inserted with innerHTML: nothing but their own markup."""
    for slug, chart in charts().items():
        if chart["library"] not in ("metric", "table"):
            continue
        rows = await chart_rows(ds, slug, channel)
        assert rows, (slug, channel)  # the plugin fails on an empty result
        for row in rows:
            for value in row.values():
                leftover = ALLOWED_TAG.sub("", str(value))
                assert "<" not in leftover and ">" not in leftover, (slug, value)


@pytest.mark.asyncio
async def test_an_unknown_channel_says_so_and_no_channel_shows_the_newest(ds):
    about = await chart_rows(ds, "about", "nobody")
    assert about == [{" ": "Channel", "  ": "No archived channel has that name."}]
    assert await chart_rows(ds, "latest_posts", HOSTILE_USERNAME) == [
        {"newest first (times UTC)": "No posts archived for this channel."}]
    assert await chart_rows(ds, "recent_views", "nobody") == []
    newest = await chart_rows(ds, "about", None)
    assert "t.me/s/TestEmb" in newest[1]["  "]


@pytest.mark.asyncio
async def test_channel_row_and_home_page_link_to_the_channel_page(ds):
    link = f'href="{DASHBOARD}?channel=TestEmb"'
    row = await ds.client.get("/telegram/channels/TestEmb")
    assert row.status_code == 200 and link in row.text
    home = await ds.client.get("/")
    assert link in home.text


@pytest.mark.asyncio
async def test_links_of_the_cards_answer_200(ds):
    hrefs = set()
    for slug in ("about", "latest_posts"):
        for row in await chart_rows(ds, slug, "TestEmb"):
            hrefs.update(re.findall(r'href="(/[^"]+)"', " ".join(map(str, row.values()))))
    hrefs.update(row["link"] for row in await chart_rows(ds, "recent_views", "TestEmb"))
    assert post_path("TestEmb", 4) in hrefs
    assert len(hrefs) >= 9
    for href in sorted(hrefs):
        response = await ds.client.get(href.replace("&amp;", "&"))
        assert response.status_code == 200, href


@pytest.mark.asyncio
async def test_post_page_has_a_views_chart_only_with_two_observations(ds):
    page = (await ds.client.get(post_path("TestEmb", 1))).text
    assert 'id="tg-views-chart"' in page
    assert '"views": 100' in page and '"views": 150' in page
    assert "ast: true" in page
    single = (await ds.client.get(post_path("TestEmb", 5))).text  # deleted: seen once
    assert 'id="tg-views-chart"' not in single and "vega.min.js" not in single


# --- in Chromium ----------------------------------------------------------------------

VEGA_CHARTS = [slug for slug, chart in charts().items() if chart["library"] == "vega-lite"]
INSPECT = """() => ({
  mark: window.%s === undefined ? null : String(window.%s),
  handlers: [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
    .filter(a => a.name.toLowerCase().startsWith('on')).map(a => el.tagName + ' ' + a.name)),
  jsUrls: [...document.querySelectorAll('[href],[src]')].map(el => el.getAttribute('href') || el.getAttribute('src'))
    .filter(v => v.trim().toLowerCase().startsWith('javascript:')),
  scrollWidth: document.documentElement.scrollWidth,
})""" % (XSS_MARK, XSS_MARK)


@pytest.fixture(scope="module")
def live(hostile_db, tmp_path_factory):
    with datasette_served(hostile_db, tmp_path_factory.mktemp("channel_page_server")) as base:
        yield base


def open_page(chromium, live, path, width, height):
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.problems, page.dialogs, page.failed = [], [], []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("requestfailed", lambda request: page.failed.append(request.url))
    route_offline(page, live)
    response = page.goto(live + path, wait_until="networkidle")
    assert response.status == 200
    return page


def own_problems(page, live) -> list[str]:
    """Console errors and page errors, less those of requests to other hosts (refused offline)."""
    assert all(not url.startswith(live) for url in page.failed), page.failed
    return [p for p in page.problems if not (p.startswith("Failed to load resource") and page.failed)]


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.parametrize("width,height", VIEWPORTS)
def test_channel_page_in_chromium(chromium, live, width, height):
    page = open_page(chromium, live, DASHBOARD + "?channel=TestEmb", width, height)
    try:
        for slug in VEGA_CHARTS:
            # the data's own marks (bars, lines, points), not only axes
            page.wait_for_selector(f"#chart-{slug} svg g.role-mark path", state="attached", timeout=15000)
        page.wait_for_function("document.querySelectorAll('#chart-latest_posts td').length === 6")
        assert page.inner_text("#chart-posts").strip() == "6"
        assert page.inner_text("#chart-subscribers").strip() == "1.3K"
        assert 'Test <script>alert("title")</script> Embassy' in page.inner_text("#chart-about")
        labels = page.text_content("#chart-top_hashtags svg") + page.text_content("#chart-top_mentions svg")
        assert "#<script>alert(12)</script>" in labels and '@<img src=x onerror="' in labels  # text, cut to fit
        # every tooltip of the views chart, with the hostile post text in it
        bars = page.locator("#chart-recent_views svg g.mark-rect.role-mark path")
        assert bars.count() == 6  # one per post, in the query's order: 5, 2, 4, 1, 6, 3
        for index in (0, 1, 3, 4, 5, 2):
            bars.nth(index).hover(force=True)
        page.wait_for_function("document.querySelector('#vg-tooltip-element.visible')")
        assert 'Plain <script>alert("text")</script>' in page.text_content("#vg-tooltip-element")  # post 4
        shoot(page, f"channel_page_{width}")
        found = page.evaluate(INSPECT)
        assert found["mark"] is None and page.dialogs == []
        assert found["handlers"] == [] and found["jsUrls"] == []
        assert found["scrollWidth"] <= width
        assert own_problems(page, live) == []
    finally:
        page.close()


@pytest.mark.browser
def test_links_on_the_channel_page_answer_200_and_a_bar_opens_its_post(chromium, live):
    page = open_page(chromium, live, DASHBOARD + "?channel=TestEmb", 1280, 900)
    try:
        page.wait_for_function("document.querySelectorAll('#chart-latest_posts td a').length === 6")
        hrefs = page.eval_on_selector_all(".dashboard-grid a[href]", "els => els.map(a => a.href)")
        own = sorted({href for href in hrefs if href.startswith(live)})
        assert len(own) >= 8
        for href in own:
            assert page.request.get(href).status == 200, href
        # the newest post's bar: a click opens its page
        page.wait_for_selector("#chart-recent_views svg g.mark-rect path")
        bars = page.locator("#chart-recent_views svg g.mark-rect path")
        boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
        newest = max(range(len(boxes)), key=lambda i: boxes[i]["x"])
        with page.expect_navigation():
            bars.nth(newest).click(force=True)
        assert page.url == live + post_path("TestEmb", 5)
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width,height", VIEWPORTS)
def test_post_page_views_chart_in_chromium(chromium, live, width, height):
    page = open_page(chromium, live, post_path("TestEmb", 4), width, height)
    try:
        page.wait_for_selector("#tg-views-chart svg g.role-mark path", state="attached", timeout=15000)
        assert page.locator("#tg-views-chart svg g.mark-symbol path").count() == 2
        shoot(page, f"post_views_chart_{width}")
        found = page.evaluate(INSPECT)
        assert found["mark"] is None and page.dialogs == []
        assert found["scrollWidth"] <= width
        assert own_problems(page, live) == []
    finally:
        page.close()
