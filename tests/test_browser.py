"""What a person sees, in a real headless Chromium against `datasette serve` on loopback:
the index, the posts table with facets, a post page, search-all and the map. Screenshots
are kept in artifacts/screenshots/."""

import pytest

from conftest import SCREENSHOTS

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium, live_datasette):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_datasette) else route.abort())
    page.base = live_datasette
    page.errors = errors
    yield page
    page.close()


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_index(page):
    page.goto(page.base + "/", wait_until="load")
    assert "Telegram channels as open data" in page.title() or page.locator("h1").first.inner_text()
    assert page.locator("text=expiring tokens").count() >= 1
    page.goto(page.base + "/telegram", wait_until="load")
    for query in ("Posts per month per channel", "Amplification lag", "Posts that mention a place"):
        assert page.locator(f"text={query}").count() >= 1
    shoot(page, "index")
    assert page.errors == []


def test_posts_table_with_facets(page):
    page.goto(page.base + "/telegram/posts", wait_until="load")
    page.locator("a", has_text="channel, kind and forward source").click()  # the facet link of the description
    page.wait_for_load_state("load")
    facets = page.locator(".facet-info")
    assert facets.count() >= 3  # channel, kind, forwarded_from_channel
    assert page.locator(".facet-info", has_text="channel").count() >= 1
    assert page.locator(".tg-post").count() >= 6
    assert page.locator("img.tg-thumb").count() >= 1
    # channel is a foreign key: its facet shows each channel's title, linked by username
    page.locator('.facet-info a[href*="channel=TestEmb"]').first.click()
    page.wait_for_load_state("load")
    assert "channel=TestEmb" in page.url
    shoot(page, "posts_table")
    assert page.errors == []


def test_post_page(page):
    page.goto(page.base + "/telegram/posts/TestEmb~2F1", wait_until="load")
    card = page.locator("article.tg-card")
    assert card.is_visible()
    assert "Посол России" in card.inner_text()
    assert card.locator(".tg-reaction").count() == 2
    assert card.locator("a.tg-link").get_attribute("href") == "https://t.me/TestEmb/1"
    assert page.locator("table.tg-versions tbody tr").count() == 2
    assert page.locator("table.tg-views tbody tr").count() == 2
    shoot(page, "post_page")
    assert page.errors == []


def test_search_all(page):
    page.goto(page.base + "/-/search?q=ambassador", wait_until="networkidle")
    page.wait_for_selector("table", timeout=10000)
    assert "The ambassador met colleagues" in page.inner_text("body")
    shoot(page, "search_all")


def test_map_with_markers(page):
    page.goto(page.base + "/telegram/places", wait_until="networkidle")
    page.wait_for_selector(".leaflet-marker-icon", timeout=15000)
    assert page.locator(".leaflet-container").is_visible()
    assert page.locator(".leaflet-marker-icon").count() >= 3
    page.locator(".leaflet-container").scroll_into_view_if_needed()
    shoot(page, "map")
    assert page.errors == []


PHONE_PAGES = ["/", "/telegram", "/telegram/posts", "/telegram/posts/TestEmb~2F1", "/telegram/channels/TestEmb",
               "/-/search?q=Norway", "/telegram/places", "/telegram/post_places", "/telegram/reactions"]


@pytest.mark.parametrize("path", PHONE_PAGES)
def test_no_horizontal_scroll_on_a_phone(page, path):
    """At 390 px wide, wide tables scroll inside the page; the page itself never does."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(page.base + path, wait_until="load")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
    assert page.errors == []
