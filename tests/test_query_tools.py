"""Canned queries read as tools (templates/query-telegram.html): the query's title is the
page title, the SQL is hidden until asked for, and parameters are selects and date inputs."""

import html as htmllib
import re

import pytest

from conftest import SCREENSHOTS, datasette_served, publish_metadata

QUERIES = publish_metadata()["databases"]["telegram"]["queries"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_every_canned_query_hides_its_sql():
    assert all(query.get("hide_sql") is True for query in QUERIES.values())


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_title_is_the_query_title_and_sql_is_hidden(ds, name):
    response = await ds.client.get(f"/telegram/{name}")
    assert response.status_code == 200
    page = response.text
    title = htmllib.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1)).strip()
    assert title.startswith(QUERIES[name]["title"]), title
    assert "select" not in title.lower()
    heading = htmllib.unescape(re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1))
    assert QUERIES[name]["title"] in heading
    assert 'id="sql-query"' not in page and 'id="sql-editor"' not in page
    assert "_show_sql=1" in page  # the "show" link stays
    for param in QUERIES[name].get("params", []):
        assert f'name="{param}"' in page  # Datasette's form fields, unchanged
    shown = await ds.client.get(f"/telegram/{name}?_show_sql=1")
    assert 'id="sql-query"' in shown.text or 'id="sql-editor"' in shown.text


@pytest.mark.asyncio
async def test_sql_pages_keep_the_sql_title(ds):
    response = await ds.client.get("/telegram", params={"sql": "select 1 as one"})
    assert "select 1 as one" in re.search(r"<title>(.*?)</title>", response.text, re.S).group(1)


@pytest.mark.browser
def test_search_form_has_channel_select_and_date_inputs(chromium, published_db, tmp_path):
    with datasette_served(published_db, tmp_path) as base:
        for viewport, size in VIEWPORTS.items():
            page = chromium.new_page(viewport=size)
            problems = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            try:
                page.goto(base + "/telegram/search?q=ambassador&from=2026-01-01", wait_until="networkidle")
                page.wait_for_selector("select#" + page.get_attribute("label:text-is('channel')", "for"))
                channels = page.eval_on_selector_all("select[name=channel] option", "os => os.map(o => o.value)")
                assert channels == ["", "SourceMFA", "TestEmb"]
                assert page.eval_on_selector_all("select[name=language] option", "os => os.map(o => o.value)") == [
                    "", "ru", "en", "no", "other"]
                assert page.get_attribute("input[name=from]", "type") == "date"
                assert page.input_value("input[name=from]") == "2026-01-01"
                assert page.get_attribute("input[name=to]", "type") == "date"
                assert page.locator("#sql-query").count() == 0
                assert page.title().startswith(QUERIES["search"]["title"])
                assert page.locator("mark").count() >= 1
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"query_tools_search_{viewport}.png"), full_page=True)
                # Submitting the form keeps Datasette's parameters (so JSON/CSV links work).
                page.select_option("select[name=channel]", "TestEmb")
                page.click("form.sql input[type=submit]")
                page.wait_for_load_state("networkidle")
                assert "channel=TestEmb" in page.url and "q=ambassador" in page.url
                assert page.input_value("select[name=channel]") == "TestEmb"
                assert page.locator("a[href*='search.json']").count() >= 1
                assert problems == [], problems
            finally:
                page.close()
