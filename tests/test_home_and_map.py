"""The home page follows the data it serves (its channels, example searches that find
posts, the canned queries, where the files are, the schedule the workflow runs), and the
map is where it means something: on places and post_places, at the top of the page, one
pin per post and place, with the post's first line and a link to it; never on media.
Browser checks at 1280x900 and 390x844, screenshots in artifacts/screenshots/."""

import json
import re
import sqlite3
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

from conftest import publish_metadata, ROOT, route_offline, SCREENSHOTS
from telegram_datasette.plugins.site import example_words, release_links

METADATA = publish_metadata()
WORKFLOW = ROOT / ".github" / "workflows" / "update.yml"
MAP_JS = "datasette-cluster-map.js"


class Links(HTMLParser):
    """The links of a page, with the class of the element around them."""

    def __init__(self):
        super().__init__()
        self.links, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append((attrs.get("href"), " ".join(self.stack)))
        elif tag in ("p", "ul", "section", "div"):
            self.stack.append(attrs.get("class") or "")

    def handle_endtag(self, tag):
        if tag in ("p", "ul", "section", "div") and self.stack:
            self.stack.pop()


def links_in(html: str, css_class: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return [href for href, around in parser.links if css_class in around.split()]


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# --- the home page -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_home_lists_the_channels_of_the_served_database(ds, published_db):
    html = (await ds.client.get("/")).text
    channels = rows(published_db, "select username, (select count(*) from posts where channel = username) from channels")
    assert {c for c, _ in channels} == {"TestEmb", "SourceMFA"}
    listed = links_in(html, "tg-channels")
    for username, posts in channels:
        assert f"/telegram/posts?channel={username}" in listed
        assert f"https://t.me/s/{username}" in listed
        assert f"{posts} post" in html
    assert "RusEmbNo" not in html  # the default channel of channels.yml is not in this database
    assert "Test &lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; Embassy" in html  # titles escaped
    assert "<script>alert(\"title\")" not in html
    total = rows(published_db, "select count(*) from posts")[0][0]
    assert f"{total} posts of 2 channels" in html


@pytest.mark.asyncio
async def test_each_example_search_finds_posts(ds):
    html = (await ds.client.get("/")).text
    examples = links_in(html, "tg-examples")
    assert len(examples) >= 3, examples
    for href in examples:
        path, _, query = href.partition("?")
        assert path == "/telegram/search" and query.startswith("q=")
        found = await ds.client.get(f"{path}.json?{query}&_shape=array")
        assert found.status_code == 200 and len(found.json()) >= 1, href



@pytest.mark.asyncio
async def test_another_database_gets_its_own_channels_searches_and_the_demo_banner(tmp_path):
    from conftest import make_datasette
    from telegram_datasette.derive import derive
    from telegram_datasette.schema import open_db

    path = tmp_path / "telegram.db"
    db = open_db(path)
    db["channels"].insert({"username": "demo_embassy", "title": "Demo Embassy", "subscribers_text": "1"})
    db["posts"].insert_all([
        {"post": f"demo_embassy/{i}", "channel": "demo_embassy", "id": i, "date": f"2026-01-0{i}T00:00:00+00:00", "kind": "text", "text": text}
        for i, text in enumerate(["Визит в Тромсё и встреча с мэром.", "Выставка в Тромсё открылась.",
                                  "Concert in Bergen tonight."], start=1)])
    db["dataset_info"].insert({"key": "demo", "value": "1"})
    derive(db)
    db.close()
    other = make_datasette(path)
    html = (await other.client.get("/")).text
    assert "Demo data: generated" in html  # the banner stays
    assert "https://t.me/s/demo_embassy" in links_in(html, "tg-channels") and "TestEmb" not in html
    assert "3 posts of 1 channel," in html and "1 subscriber<" in " ".join(html.split()).replace(" <", "<")
    examples = links_in(html, "tg-examples")
    assert examples and "q=%D0%A2%D1%80%D0%BE%D0%BC%D1%81%D1%91" in examples[0]  # Тромсё, in two posts
    for href in examples:
        assert len((await other.client.get(href.replace("?", ".json?") + "&_shape=array")).json()) >= 1, href

def test_example_words_are_hashtags_then_names_one_per_stem():
    texts = [
        "Посол России в Норвегии посетил Осло. Встреча в Осло прошла хорошо.",
        "The minister met colleagues in Moscow, Oslo and London.",
        "Новости: в Норвегии и в России. В Министерстве сообщили, что министерство работает.",
    ]
    words = example_words(["Норвегия", "<script>alert(1)</script>", "2024"], texts)
    assert words[0] == "Норвегия"  # hashtags first; the hostile and numeric ones dropped
    assert "Норвегии" not in words  # the same stem as the hashtag
    assert {"России", "Осло", "Moscow", "London"} <= set(words)
    assert "Министерстве" not in words  # the word is also written in lower case: not a name
    assert "Посол" not in words and "The" not in words and "Встреча" not in words  # sentence starts


@pytest.mark.asyncio
async def test_home_says_where_the_queries_and_the_files_are(ds):
    html = (await ds.client.get("/")).text
    assert "below" not in METADATA["description_html"]
    queries = links_in(html, "tg-queries")
    canned = METADATA["databases"]["telegram"]["queries"]
    assert queries == [f"/telegram/{name}" for name in canned]
    assert '<a href="/telegram">telegram database page</a>' in html
    assert 'href="/telegram/post_places">The places the posts mention</a>' in html
    for href in queries[:3]:
        assert (await ds.client.get(href)).status_code == 200
    assert (await ds.client.get("/telegram.db")).status_code == 200 and 'href="/telegram.db"' in html
    release = release_links(METADATA["about_url"])
    assert release["page"] == METADATA["about_url"] + "/releases/tag/data"
    assert f'href="{release["page"]}"' in html
    for name, url in release["files"]:
        assert url == f'{METADATA["about_url"]}/releases/download/data/{name}' and f'href="{url}"' in html
    # another about_url: no guessed link, the words alone
    assert release_links("https://example.org/telegram") == {"page": None, "files": []}


NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 6: "six", 8: "eight", 12: "twelve"}


def schedule_words(cron: str) -> list[str]:
    """What the site must say about a cron line of the workflow: how often, and when (UTC)."""
    minute, hour, day, month, weekday = cron.split()
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit(), f"describe this cron too: {cron}"
    if step := re.fullmatch(r"\*/(\d+)", hour):
        every = int(step[1])
        often, hours = ("every hour" if every == 1 else f"every {NUMBERS[every]} hours"), range(0, 24, every)
    else:
        often, hours = "daily", [int(h) for h in hour.split(",")]
    times = [f"{h:02d}:{int(minute):02d}" for h in hours]
    return [often, (", ".join(times[:-1]) + " and " + times[-1] if len(times) > 1 else times[0]) + " UTC"]


def test_the_schedule_text_is_the_workflows_cron():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    (schedule,) = triggers["schedule"]
    assert schedule["cron"] == "17 */6 * * *"  # this test's own example; the check below is general
    text = " ".join(METADATA["description_html"].split())
    for words in schedule_words(schedule["cron"]):
        assert words in text, words
    other = {"daily", "hourly", "every hour "} - set(schedule_words(schedule["cron"]))
    assert not [w for w in other if w in text]
    assert schedule_words("5 3 * * *") == ["daily", "03:05 UTC"]


@pytest.mark.asyncio
async def test_the_home_page_keeps_caveats_license_source_and_the_banner_slot(ds):
    html = (await ds.client.get("/")).text
    for needle in ("expiring tokens", "no edit", "rounded by Telegram", "machine-extracted",
                   "every six hours", METADATA["license_url"], METADATA["source_url"], "search-all-q"):
        assert needle in html, needle


# --- the map ---------------------------------------------------------------------------

MAP_TABLES = ("places", "post_places")


def test_the_map_is_configured_on_places_and_post_places_only(ds):
    def columns(table):
        config = ds.plugin_config("datasette-cluster-map", database="telegram", table=table) or {}
        return config.get("latitude_column"), config.get("longitude_column")

    for table in MAP_TABLES:
        config = ds.plugin_config("datasette-cluster-map", database="telegram", table=table)
        assert columns(table) == ("latitude", "longitude") and config["container"] == "#telegram-map"
        assert config["tile_layer_options"]["maxZoom"] <= 13 and "OpenStreetMap" in config["tile_layer_options"]["attribution"]
    for table in ("media", "posts", None):  # None: the database page, SQL and canned queries
        assert columns(table) == ("map_latitude", "map_longitude"), table


@pytest.mark.asyncio
@pytest.mark.parametrize("path", MAP_TABLES)
async def test_the_map_goes_at_the_top_of_places(ds, path):
    html = (await ds.client.get(f"/telegram/{path}")).text
    assert MAP_JS in html and 'window.DATASETTE_CLUSTER_MAP_CONTAINER = "#telegram-map";' in html
    container = html.index('<div id="telegram-map"')
    assert html.index("metadata-description") < container < html.index('<details class="tg-column-descriptions"')
    assert container < html.index('class="filters"') < html.index('class="rows-and-columns"')


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [
    "/telegram/media", "/telegram/media?kind=video", "/telegram/media?kind=location", "/telegram/posts",
    "/telegram/posts_mentioning_place", "/telegram?sql=select+latitude,+longitude+from+places",
    "/telegram/places/TestEmb,1,0", "/telegram",
])
async def test_no_map_elsewhere(ds, path):
    response = await ds.client.get(path)
    assert response.status_code == 200
    assert MAP_JS not in response.text and "telegram-map" not in response.text


@pytest.mark.asyncio
async def test_a_query_can_ask_for_the_map_by_naming_its_columns(ds):
    sql = "select name, latitude as map_latitude, longitude as map_longitude from places"
    html = (await ds.client.get("/telegram", params={"sql": sql})).text
    assert MAP_JS in html and '"map_latitude"' in html


@pytest.mark.asyncio
async def test_post_places_has_one_row_per_post_and_place(ds, published_db):
    got = (await ds.client.get("/telegram/post_places.json?_shape=array&_size=max")).json()
    keys = [(r["channel"], r["post_id"], r["place"], r["latitude"], r["longitude"]) for r in got]
    assert len(keys) == len(set(keys))
    mentions = rows(published_db, "select channel, post_id, name, latitude, longitude from places where latitude is not null")
    assert set(keys) == set(mentions) and sum(r["mentions"] for r in got) == len(mentions)
    # post 1 names Norway twice (Норвегии, #Норвегия): one row, one pin
    (norway,) = [r for r in got if (r["channel"], r["post_id"], r["place"]) == ("TestEmb", 1, "Norway")]
    assert norway["mentions"] == 2 and norway["matched_text"] == "Норвегии,Норвегия"
    assert len([m for m in mentions if m[:3] == ("TestEmb", 1, "Norway")]) == 2
    # location messages are there too
    assert {("TestEmb", 6, "Embassy")} <= {k[:3] for k in keys}


@pytest.mark.asyncio
async def test_each_pin_has_the_posts_first_line_and_a_link_to_it(ds, published_db):
    got = (await ds.client.get("/telegram/post_places.json?_shape=array&_size=max")).json()
    for row in got:
        popup = json.loads(row["popup"])
        assert popup["title"] == row["place"]
        text = rows(published_db, "select text from posts where channel = ? and id = ?", (row["channel"], row["post_id"]))[0][0]
        first_line = text.strip().splitlines()[0].strip()
        shown = first_line if len(first_line) <= 140 else first_line[:139].rstrip() + "…"
        assert popup["description"] == f'{row["channel"]}, {row["date"][:10]}: {shown}'
        assert popup["link"] == f'posts/{row["channel"]}~2F{row["post_id"]}'
        post = await ds.client.get(urljoin("/telegram/post_places", popup["link"]))
        assert post.status_code == 200 and "tg-card" in post.text


def test_the_popup_of_a_long_or_empty_post(tmp_path):
    from telegram_datasette.schema import open_db

    db = open_db(tmp_path / "telegram.db")
    db["posts"].insert_all([
        {"post": "c/1", "channel": "c", "id": 1, "date": "2026-01-01T00:00:00+00:00", "kind": "text",
         "text": "\n  " + "Длинная строка " * 20 + "\nвторая строка"},
        {"post": "c/2", "channel": "c", "id": 2, "date": "2026-01-02T00:00:00+00:00", "kind": "location", "text": None},
    ])
    db["places"].insert_all([
        {"channel": "c", "post_id": 1, "position": 0, "name": "Oslo", "latitude": 59.9, "longitude": 10.7},
        {"channel": "c", "post_id": 1, "position": 1, "name": "Oslo", "latitude": 59.9, "longitude": 10.7},
        {"channel": "c", "post_id": 1, "position": 2, "name": "Bergen", "latitude": None, "longitude": None},
        {"channel": "c", "post_id": 2, "position": 0, "name": "Location", "latitude": 1.5, "longitude": 2.5},
    ])
    long, empty = [json.loads(r["popup"]) for r in db.query("select popup from post_places order by post_id")]
    assert long["description"].startswith("c, 2026-01-01: Длинная строка Длинная") and long["description"].endswith("…")
    assert len(long["description"]) <= len("c, 2026-01-01: ") + 140 and "вторая" not in long["description"]
    assert empty["description"] == "c, 2026-01-02: (location post without text)"
    assert [r["mentions"] for r in db.query("select mentions from post_places order by post_id")] == [2, 1]


# --- in Chromium -----------------------------------------------------------------------

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {
    "home": "/",
    "places": "/telegram/places",
    "post_places": "/telegram/post_places",
    "media": "/telegram/media",
    "media_video": "/telegram/media?kind=video",
    "media_photo": "/telegram/media?kind=photo",  # rows without coordinates ("Bounds are not valid" before)
}
MAP_PAGES = {"places", "post_places"}


def open_page(chromium, base, viewport):
    """A page that records page errors and console errors. Offline: images from other hosts
    (OpenStreetMap tiles, Telegram's CDN) get a plain PNG, anything else from them is
    refused; console errors about those URLs alone are excepted."""
    page = chromium.new_page(viewport=VIEWPORTS[viewport])
    page.problems = []
    route_offline(page, base)

    def console(message):
        url = message.location.get("url") or ""
        if message.type != "error" or (url.startswith("http") and not url.startswith(base)):
            return  # not an error, or an external resource that cannot load offline
        page.problems.append(f"console: {message.text} ({url})")

    page.on("console", console)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    return page


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"home_and_map_{name}.png"), full_page=True)


def tile_zooms(page) -> set[int]:
    return {int(urlsplit(u).path.split("/")[1]) for u in page.external if "tile.openstreetmap.org" in u}


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", PAGES)
def test_pages_in_chromium(chromium, live_datasette, name, viewport):
    page = open_page(chromium, live_datasette, viewport)
    try:
        response = page.goto(live_datasette + PAGES[name], wait_until="networkidle")
        assert response.status == 200
        if name in MAP_PAGES:
            page.wait_for_selector("#telegram-map .leaflet-marker-icon", timeout=15000)
            page.wait_for_selector("img.leaflet-tile-loaded", timeout=15000)
            box = page.locator("#telegram-map .leaflet-container").bounding_box()
            assert box["y"] < VIEWPORTS[viewport]["height"] * 0.55, box  # starts in the first screen
            assert box["width"] >= VIEWPORTS[viewport]["width"] - 40 and box["height"] >= 300
            assert tile_zooms(page) and max(tile_zooms(page)) <= 12
        else:
            page.wait_for_timeout(300)  # the map script would have run by now
            assert page.locator(".leaflet-container").count() == 0
        if name == "home":
            assert page.locator(".tg-channels li").count() == 2
            assert page.locator(".tg-examples a").count() >= 3
            home = page.locator(".tg-home").bounding_box()
            assert home["width"] <= VIEWPORTS[viewport]["width"]
            assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
        shoot(page, f"{name}_{viewport}")
        assert page.problems == []
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_one_pin_per_post_and_place_with_its_post(chromium, live_datasette, viewport):
    """Post 1 names Norway twice: places has two pins there (a cluster of 2), post_places one,
    whose popup has the post's first line and a link that opens the post; one place zooms to 12."""
    page = open_page(chromium, live_datasette, viewport)
    try:
        page.goto(live_datasette + "/telegram/places?post_id=1&name=Norway", wait_until="networkidle")
        page.wait_for_selector("#telegram-map .marker-cluster", timeout=15000)
        assert page.locator("#telegram-map .marker-cluster").inner_text().strip() == "2"

        page.goto(live_datasette + "/telegram/post_places?post_id=1&place=Norway", wait_until="networkidle")
        page.wait_for_selector("#telegram-map .leaflet-marker-icon", timeout=15000)
        page.wait_for_selector("img.leaflet-tile-loaded", timeout=15000)
        assert page.locator("#telegram-map .leaflet-marker-icon").count() == 1
        assert page.locator("#telegram-map .marker-cluster").count() == 0
        assert max(tile_zooms(page)) == 12  # one place: its region, not one street (19)
        page.locator("#telegram-map .leaflet-marker-icon").click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5000)
        assert "Norway" in popup.inner_text() and "Посол России в Норвегии посетил Осло" in popup.inner_text()
        page.wait_for_timeout(400)  # the popup fades in
        shoot(page, f"popup_{viewport}")
        popup.locator("a").click()
        page.wait_for_load_state("load")
        assert page.url == live_datasette + "/telegram/posts/TestEmb~2F1"
        assert page.locator("article.tg-card").is_visible()
        assert page.problems == []
    finally:
        page.close()
