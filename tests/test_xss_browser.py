"""Hostile posts, link previews, channel descriptions and location titles, opened in a
real headless Chromium on every page that shows them: no payload runs.

The test database (conftest.published_db) stores the payloads as if the parser had let
them through, so these tests check the rendering layer on its own (defence in depth)."""

import pytest

from conftest import XSS_MARK

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/telegram",
    "/telegram/posts",
    "/telegram/posts?_facet=hashtag&_sort=id",
    "/telegram/posts?_tg_view=table",
    "/telegram/posts/TestEmb~2F6",
    "/telegram/posts/TestEmb~2F4",
    "/telegram/posts/TestEmb~2F1",
    "/telegram/channels",
    "/telegram/channels/TestEmb",
    "/telegram/media",
    "/telegram/links",
    "/telegram/hashtags",
    "/telegram/reactions",
    "/telegram/post_versions",
    "/telegram/most_viewed",
    "/telegram/posts_mentioning_place",
    "/telegram/forward_sources",
    "/telegram/top_hashtags",
    "/telegram/top_domains",
    "/telegram/deleted_posts",
    "/-/search?q=Plain",
    "/-/search?q=Forwarded",
    "/telegram/places",
    "/telegram/forwards",
    "/telegram/follows",
    "/telegram/amplification_lag",
    "/telegram/channel_network",
    "/telegram/media_files",
    "/-/dashboards/channel?channel=TestEmb",
]

INSPECT = """() => {
  const handlers = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.toLowerCase().startsWith('on')) handlers.push(el.tagName + ' ' + attr.name);
    }
  }
  const jsUrls = [...document.querySelectorAll('[href],[src],[action],[formaction]')]
    .map(el => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action') || el.getAttribute('formaction') || '')
    .filter(v => v.trim().toLowerCase().startsWith('javascript:'));
  return {
    mark: window.%s === undefined ? null : String(window.%s),
    handlers, jsUrls,
    iframes: document.querySelectorAll('iframe, object, embed').length,
    svgScripts: document.querySelectorAll('svg script').length,
  };
}""" % (XSS_MARK, XSS_MARK)


def open_page(chromium, url, dialogs):
    page = chromium.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # Only the local server: map tiles and CDN thumbnails are not fetched.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url.split("/", 3)[0] + "//" + url.split("/", 3)[2]) else route.abort())
    # Pages that fetch their content with JavaScript (search-all, the map) need the network idle.
    page.goto(url, wait_until="networkidle" if ("/-/" in url or "places" in url) else "load")
    return page


def hover_and_click_content(page):
    """Trigger mouse handlers a payload might have smuggled into post content."""
    page.evaluate("""() => {
      for (const el of document.querySelectorAll('.tg-text *, .tg-reaction, .tg-media *, td')) {
        for (const type of ['mouseover', 'mouseenter', 'focus', 'click']) {
          if (type === 'click' && el.closest('a')) continue;  // do not navigate away
          el.dispatchEvent(new Event(type, {bubbles: true}));
        }
      }
    }""")


@pytest.mark.parametrize("path", PAGES)
def test_no_payload_runs(chromium, live_datasette, path):
    dialogs = []
    page = open_page(chromium, live_datasette + path, dialogs)
    try:
        hover_and_click_content(page)
        found = page.evaluate(INSPECT)
        assert dialogs == []
        assert found["mark"] is None
        assert found["handlers"] == []
        assert found["jsUrls"] == []
        assert found["iframes"] == 0 and found["svgScripts"] == 0
    finally:
        page.close()


def test_map_popups_are_inert_and_link_to_posts(chromium, live_datasette):
    dialogs = []
    page = open_page(chromium, live_datasette + "/telegram/places", dialogs)
    try:
        page.wait_for_selector(".leaflet-marker-icon", timeout=15000)
        popups = set()
        for _ in range(12):
            # open every single marker's popup, reading each before closing it
            count = len(page.query_selector_all(".leaflet-marker-icon:not(.marker-cluster)"))
            for index in range(count):
                page.evaluate(
                    "i => document.querySelectorAll('.leaflet-marker-icon:not(.marker-cluster)')[i]"
                    ".dispatchEvent(new MouseEvent('click', {bubbles: true}))", index)
                page.wait_for_selector(".leaflet-popup-content", state="attached", timeout=5000)
                popups.add(page.inner_html(".leaflet-popup-content"))
                page.dispatch_event(".leaflet-popup-close-button", "click")
                page.wait_for_selector(".leaflet-popup-content", state="detached", timeout=5000)
            # then zoom into a cluster (clusters zoom in, or spiderfy at the last zoom level)
            if not page.query_selector(".marker-cluster"):
                break
            page.dispatch_event(".marker-cluster", "click")
            page.wait_for_timeout(700)
        assert popups, "no marker could be opened"
        joined = "\n".join(popups)
        assert "<img src" not in joined.replace('<img style', '')
        assert 'href="posts/TestEmb~2F' in joined
        assert "&lt;img src=x onerror=alert(16)&gt;Pin" in joined  # the hostile location title, escaped
        found = page.evaluate(INSPECT)
        assert dialogs == [] and found["mark"] is None and found["handlers"] == [] and found["jsUrls"] == []
    finally:
        page.close()
