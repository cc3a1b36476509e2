"""The security plugin (plugins/security.py): limits on what a query may build, a cap on
every response but the database download, and security headers that every page still
works with in a real Chromium.

The asyncio tests come first and the browser tests last: the Chromium fixture is
module-scoped and holds this thread's event loop while it is open (see conftest)."""

from __future__ import annotations

import re
import sqlite3
import threading
import time

import httpx
import pytest

from conftest import free_port, make_datasette, route_offline, SCREENSHOTS
from telegram_datasette.plugins import security

EXPECTED_HEADERS = {
    "content-security-policy": security.CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}
FAST = 5.0  # seconds: "fails fast" on a busy shared machine (the unlimited query took 86 s)


def assert_security_headers(response):
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get_list(name) == [value], f"{response.url}: {name}"


def sql_url(sql: str, fmt: str = ".json") -> str:
    return "/telegram" + fmt + "?" + str(httpx.QueryParams({"sql": sql}))


def error_of(response) -> str:
    return response.json()["error"] if response.headers["content-type"].startswith("application/json") else response.text


# --- headers -------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("path", [
    "/", "/telegram", "/telegram/posts", "/telegram/posts/TestEmb~2F1", "/telegram/places",
    "/telegram/search?q=ambassador", "/-/search?q=ambassador",
    "/telegram/posts.json", "/telegram.json?sql=select+1", "/-/versions.json", "/telegram/posts.csv",
    "/telegram/no_such_table", "/telegram.json?sql=select+nonsense",  # errors too
    "/-/static/app.css", "/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js",
    "/telegram.db",
])
async def test_every_response_carries_the_security_headers(ds, path):
    response = await ds.client.get(path)
    assert response.status_code in (200, 400, 404)
    assert_security_headers(response)


@pytest.mark.asyncio
async def test_static_files_have_the_types_nosniff_requires(ds):
    js = await ds.client.get("/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js")
    leaflet = await ds.client.get("/-/static-plugins/datasette-leaflet/leaflet-v1.7.1.js")
    css = await ds.client.get("/-/static/app.css")
    assert "javascript" in js.headers["content-type"] and "javascript" in leaflet.headers["content-type"]
    assert css.headers["content-type"].startswith("text/css")


# --- limits on what a query builds -----------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("sql", [
    "select randomblob(1000000000)",
    "select length(randomblob(2000000000))",
    "select zeroblob(1000000000)",
    "select length(zeroblob(2000000000))",
    "select hex(randomblob(3000000))",  # a 6 MB string
    "with recursive c(x) as (select 1 union all select x + 1 from c limit 600000) "
    "select length(group_concat('0123456789', '')) from c",  # a 6 MB aggregate
])
async def test_a_huge_value_fails_fast_with_an_error(ds, sql):
    started = time.monotonic()
    response = await ds.client.get(sql_url(sql))
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert "string or blob too big" in error_of(response)
    assert len(response.content) < 10_000 and elapsed < FAST
    assert_security_headers(response)


@pytest.mark.asyncio
async def test_a_huge_value_is_an_error_page_in_html_too(ds):
    started = time.monotonic()
    response = await ds.client.get(sql_url("select randomblob(1000000000)", fmt=""))
    assert response.status_code == 400 and time.monotonic() - started < FAST
    assert "string or blob too big" in response.text and len(response.content) < 100_000


@pytest.mark.asyncio
@pytest.mark.parametrize("sql, message", [
    # 1001 rows of 4 MiB: each value is allowed, together they are 4 GB
    ("with recursive c(x) as (select 1 union all select x + 1 from c limit 1001) "
     f"select zeroblob({security.MAX_VALUE_BYTES}) from c", "query result too big"),
    ("with recursive c(x) as (select 1 union all select x + 1 from c limit 1001) "
     f"select randomblob({security.MAX_VALUE_BYTES}) from c", "query result too big"),
    # one row of many columns of the same value
    ("with t(b) as (select zeroblob(1000)) select " + ", ".join(["b"] * (security.MAX_COLUMNS + 1)) + " from t",
     "too many columns"),
])
async def test_many_big_values_fail_fast_with_an_error(ds, sql, message):
    started = time.monotonic()
    response = await ds.client.get(sql_url(sql))
    assert response.status_code == 400 and time.monotonic() - started < FAST
    assert message in error_of(response)


@pytest.mark.asyncio
async def test_values_and_results_within_the_limits_still_work(ds, published_db):
    largest = await ds.client.get(sql_url(f"select length(randomblob({security.MAX_VALUE_BYTES})) as n"))
    assert largest.status_code == 200 and largest.json()["rows"] == [[security.MAX_VALUE_BYTES]]
    blob = await ds.client.get(sql_url("select randomblob(1048576) as b"))
    assert blob.status_code == 200 and len(blob.content) > 1_048_576  # base64 in JSON
    # the widest join a person might write, and every table, fit the column limit
    joined = await ds.client.get(sql_url(
        "select * from posts join media on media.channel = posts.channel and media.post_id = posts.id "
        "join channels on channels.username = posts.channel"))
    assert joined.status_code == 200 and len(joined.json()["columns"]) < security.MAX_COLUMNS
    conn = sqlite3.connect(published_db)
    widest = max(len(conn.execute(f"select * from [{name}] limit 0").description)
                 for (name,) in conn.execute("select name from sqlite_master where type in ('table', 'view')"))
    conn.close()
    assert widest + 40 <= security.MAX_COLUMNS, "a table nears the column limit: raise MAX_COLUMNS"
    page = await ds.client.get("/telegram/posts.json?_size=1000")
    assert page.status_code == 200 and len(page.json()["rows"]) >= 6


# --- the response cap ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_the_database_download_is_whole_and_never_capped(ds, published_db, monkeypatch):
    monkeypatch.setattr(security, "MAX_RESPONSE_BYTES", 5000)
    assert published_db.stat().st_size > 20 * 5000
    response = await ds.client.get("/telegram.db")
    assert response.status_code == 200
    assert response.content == published_db.read_bytes()
    assert response.headers["content-type"] == "application/octet-stream"
    assert_security_headers(response)
    # the same cap stops every other response
    capped = await ds.client.get("/telegram/posts.json?_size=1000")
    assert capped.status_code == 400 and "Response too large" in capped.json()["error"]


@pytest.mark.asyncio
async def test_a_response_past_the_cap_is_an_error_before_anything_is_sent(ds, monkeypatch):
    monkeypatch.setattr(security, "MAX_RESPONSE_BYTES", 5000)
    for path in ("/telegram/posts", "/telegram/posts.json?_size=100", sql_url("select randomblob(4000) as b")):
        response = await ds.client.get(path)
        assert response.status_code == 400, path
        assert "Response too large" in response.text and len(response.content) < 1000
        assert_security_headers(response)
    assert (await ds.client.get("/-/versions.json")).status_code == 200  # small ones pass


@pytest.mark.asyncio
async def test_a_stream_past_the_cap_is_aborted(ds, monkeypatch):
    monkeypatch.setattr(security, "MAX_RESPONSE_BYTES", 2000)  # the CSV's header row fits, not its rows
    with pytest.raises(security.ResponseTooLarge):
        await ds.client.get("/telegram/posts.csv?_stream=1&_size=max")


def streaming_app(chunks, headers=()):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})
    return app


async def run_asgi(app, path="/x"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    wrapped = security.secure_app(app, FakeDatasette())
    try:
        await wrapped({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
        return sent, None
    except security.ResponseTooLarge as error:
        return sent, error


class FakeDatasette:
    databases = {}

    def setting(self, name):
        return "/"


@pytest.mark.asyncio
async def test_the_cap_on_raw_asgi_streams(monkeypatch):
    monkeypatch.setattr(security, "MAX_RESPONSE_BYTES", 100)
    # within the cap, to the byte: sent as it came, headers added
    sent, error = await run_asgi(streaming_app([b"a" * 60, b"b" * 40]))
    assert error is None and [m.get("body") for m in sent[1:]] == [b"a" * 60, b"b" * 40]
    assert (b"x-frame-options", b"DENY") in sent[0]["headers"]
    # a Content-Length past the cap: an error instead, nothing of the body
    sent, error = await run_asgi(streaming_app([b"a" * 200], [(b"content-length", b"200")]))
    assert error is None and sent[0]["status"] == 400 and b"Response too large" in sent[1]["body"]
    # past the cap mid-stream: what was within it went out, then the app is stopped and
    # the server told (the exception) to drop the connection
    sent, error = await run_asgi(streaming_app([b"a" * 60, b"b" * 60, b"c" * 60]))
    assert isinstance(error, security.ResponseTooLarge)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"a" * 60 and sent[1]["more_body"] is True


def test_a_stream_past_the_cap_reaches_a_real_client_incomplete(published_db, monkeypatch):
    """Over real HTTP (uvicorn, as `datasette serve` runs): the client gets an error, never
    a cut CSV that looks complete."""
    import uvicorn

    monkeypatch.setattr(security, "MAX_RESPONSE_BYTES", 2000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_datasette(published_db).app(), host="127.0.0.1", port=port,
                                           log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/-/versions.json").status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(base + "/telegram/posts.csv?_stream=1&_size=max", timeout=10)
        assert httpx.get(base + "/telegram.db", timeout=10).content == published_db.read_bytes()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- every page works with the headers, in Chromium (last: see the module docstring) ---

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {
    "home": "/",
    "database": "/telegram",
    "posts": "/telegram/posts",
    "post": "/telegram/posts/TestEmb~2F1",
    "map": "/telegram/places",
    "canned_query": "/telegram/search?q=ambassador",
    "sql_editor": "/telegram?sql=select+channel,+count(*)+from+posts+group+by+channel",
    "search_all": "/-/search?q=ambassador",
}
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""


def open_watched(chromium, base, viewport):
    """A page that records console errors, page errors, CSP violations and every request
    to another host. No real network: other hosts' images (OpenStreetMap tiles, Telegram's
    CDN) get a plain PNG, anything else from them is refused (and would be a console error)."""
    page = chromium.new_page(viewport=VIEWPORTS[viewport])
    page.problems = []
    route_offline(page, base)
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" or "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))

    page.add_init_script(WATCH_CSP)
    return page


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", PAGES)
def test_every_page_works_under_the_policy(chromium, live_datasette, name, viewport):
    page = open_watched(chromium, live_datasette, viewport)
    try:
        response = page.goto(live_datasette + PAGES[name], wait_until="networkidle")
        assert response.status == 200
        assert response.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
        if name == "map":
            page.wait_for_selector(".leaflet-marker-icon", timeout=15000)
            page.wait_for_selector("img.leaflet-tile-loaded", timeout=15000)
            tiles = [url for url in page.external if "tile.openstreetmap.org" in url]
            assert tiles and all(re.match(r"https://[abc]\.tile\.openstreetmap\.org/\d+/\d+/\d+\.png$", u) for u in tiles)
            page.locator(".leaflet-container").scroll_into_view_if_needed()
        if name == "search_all":
            page.wait_for_selector("table", timeout=10000)
            assert "The ambassador met colleagues" in page.inner_text("body")
        if name == "canned_query":
            assert page.locator("mark").count() >= 1  # the snippet's highlight, from the results
        if name == "post":
            assert page.locator("article.tg-card img").count() >= 1  # the CDN thumbnail
        if name == "sql_editor":
            assert page.locator(".cm-editor, .CodeMirror").count() >= 1  # the editor's script ran
        page.wait_for_timeout(300)  # late violations (styles applied by scripts) are reported async
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"security_{name}_{viewport}.png"), full_page=True)
        violations = page.evaluate("window.__csp")
        assert violations == [] and page.problems == [], violations + page.problems
    finally:
        page.close()


@pytest.mark.browser
def test_the_watch_sees_a_violation(chromium, live_datasette):
    """The check above can fail: a script from another host and a plain-http image are
    blocked and reported."""
    page = open_watched(chromium, live_datasette, "desktop")
    try:
        page.goto(live_datasette + "/", wait_until="load")
        page.evaluate("""() => {
          const s = document.createElement('script'); s.src = 'https://cdn.example/evil.js'; document.head.append(s);
          const i = document.createElement('img'); i.src = 'http://cdn.example/plain.png'; document.body.append(i);
        }""")
        page.wait_for_timeout(500)
        violations = page.evaluate("window.__csp")
        assert any(v.startswith("script-src") and "evil.js" in v for v in violations), violations
        assert any(v.startswith("img-src") and "plain.png" in v for v in violations), violations
        assert any("Content Security Policy" in p for p in page.problems)
        assert not any("evil.js" in url for url in page.external)  # never even requested
    finally:
        page.close()
