"""Issue 12, items 1 and 2: the posts table reads as posts (cards), and every post has one
key (`post`, "<channel>/<id>") that Datasette follows: rows about a post link to it, a post's
page lists them, and posts link to their channel, reply target and archived original.
Facets, filters, sort, JSON and CSV stay Datasette's."""

import re

import pytest

POST_LINK = re.compile(r'href="(/telegram/posts/TestEmb~2F(\d+))"')


@pytest.mark.asyncio
async def test_the_posts_table_shows_one_card_per_post_linked_to_its_page(ds):
    response = await ds.client.get("/telegram/posts")
    assert response.status_code == 200
    html = response.text
    cards = re.findall(r'<article class="tg-card" data-post="([^"]+)"', html)
    assert sorted(cards) == sorted([f"TestEmb/{i}" for i in range(1, 7)] + ["SourceMFA/77"])
    assert '<table class="rows-and-columns">' not in html
    linked = {int(i) for _, i in POST_LINK.findall(html)}
    assert linked >= {1, 2, 3, 4, 5, 6}
    for path, _ in set(POST_LINK.findall(html)):
        assert (await ds.client.get(path)).status_code == 200, path
    assert 'href="/telegram/channels/TestEmb"' in html  # the channel, a foreign key
    assert 'href="https://t.me/TestEmb/1"' in html
    assert 'href="/telegram/posts/SourceMFA~2F77"' in html  # post 3's archived original
    assert "deleted</strong>" in html  # post 5
    # The column descriptions are there, folded; hash and raw columns are not shown.
    assert '<details class="tg-column-descriptions">' in html and "text_sha256" in html.split("</details>")[0]
    cards_html = html.split('class="tg-cards"', 1)[1].split("<pre", 1)[0]  # not the schema below
    assert "raw_html" not in cards_html and not re.search(r"\b[0-9a-f]{64}\b", cards_html)


@pytest.mark.asyncio
async def test_replies_link_to_their_target_when_the_dataset_has_it(ds):
    html = (await ds.client.get("/telegram/posts")).text
    card6 = html.split('data-post="TestEmb/6"', 1)[1].split("</article>", 1)[0]
    assert 'href="/telegram/posts/TestEmb~2F1"' in card6 and "Test Embassy" in card6
    assert "<img src=x" not in card6 and "&lt;img src=x" in card6
    card2 = html.split('data-post="TestEmb/2"', 1)[1].split("</article>", 1)[0]
    assert "TestEmb/999" in card2 and "TestEmb~2F999" not in card2  # not archived: no dead link
    page = (await ds.client.get("/telegram/posts/TestEmb~2F6")).text
    assert 'class="tg-reply-archived" href="/telegram/posts/TestEmb~2F1"' in page
    assert "post 999 (not archived)" in (await ds.client.get("/telegram/posts/TestEmb~2F2")).text


@pytest.mark.asyncio
async def test_json_csv_facets_filters_and_sort_stay_datasettes(ds):
    data = (await ds.client.get("/telegram/posts.json?_shape=objects&_size=100&_sort=id")).json()
    assert sorted(r["post"] for r in data["rows"]) == sorted([f"TestEmb/{i}" for i in range(1, 7)] + ["SourceMFA/77"])
    first = next(r for r in data["rows"] if r["post"] == "TestEmb/1")
    assert first["channel"] == "TestEmb" and first["id"] == 1 and "html" in first and "text_sha256" in first
    csv = (await ds.client.get("/telegram/posts.csv?_size=100")).text
    assert csv.splitlines()[0].startswith("post,channel,id,url,date,text,html,")
    assert len(csv.splitlines()) >= 8
    faceted = (await ds.client.get("/telegram/posts.json?_facet=kind&channel=TestEmb")).json()
    assert faceted["filtered_table_rows_count"] == 6 and faceted["facet_results"]["kind"]["results"]
    page = (await ds.client.get("/telegram/posts?_sort=views&channel=TestEmb")).text
    order = [int(i) for i in re.findall(r'data-post="TestEmb/(\d+)"', page)]
    assert order == sorted(order)  # views grow with the id in this data
    grid = (await ds.client.get("/telegram/posts?_tg_view=table")).text
    assert '<table class="rows-and-columns">' in grid and 'class="tg-cards"' not in grid
    picked = (await ds.client.get("/telegram/posts?_col=text")).text  # no html column: the grid
    assert '<table class="rows-and-columns">' in picked


@pytest.mark.asyncio
async def test_a_posts_page_lists_the_rows_about_it_and_each_links_back(ds):
    page = (await ds.client.get("/telegram/posts/TestEmb~2F1")).text
    assert 'href="/telegram/channels/TestEmb"' in page
    linked = dict((table, (href, int(count))) for href, count, table in re.findall(
        r'<li><a href="([^"]+)">(\d+) rows? in (\w+)</a></li>', page))
    for table in ("media", "links", "hashtags", "reactions", "places", "post_versions", "view_snapshots",
                  "reaction_snapshots", "post_events"):
        assert table in linked, table
    assert "1 reply to this post" in page  # post 6
    for table, (href, count) in linked.items():
        href = href.replace("&amp;", "&")
        data = (await ds.client.get(href.replace(f"/telegram/{table}?", f"/telegram/{table}.json?") + "&_shape=objects")).json()
        assert data["filtered_table_rows_count"] == count, table
        assert all(r["post"] == "TestEmb/1" for r in data["rows"]), table
    media = (await ds.client.get("/telegram/media")).text
    assert 'href="/telegram/posts/TestEmb~2F1"' in media  # every child row links to its post
    channel = (await ds.client.get("/telegram/channels/TestEmb")).text
    assert "/telegram/posts?channel=TestEmb" in channel


@pytest.mark.asyncio
async def test_old_post_addresses_redirect_to_the_new_ones(ds):
    for old, new in (("/telegram/posts/TestEmb,1", "/telegram/posts/TestEmb~2F1"),
                     ("/telegram/posts/TestEmb,1.json", "/telegram/posts/TestEmb~2F1.json"),
                     ("/telegram/posts/SourceMFA,77?_shape=objects", "/telegram/posts/SourceMFA~2F77?_shape=objects")):
        response = await ds.client.get(old)
        assert response.status_code == 301 and response.headers["location"] == new, old
        assert (await ds.client.get(new)).status_code == 200
    assert (await ds.client.get("/telegram/posts/TestEmb,999")).status_code == 301
    assert (await ds.client.get("/telegram/posts/TestEmb~2F999")).status_code == 404


@pytest.mark.asyncio
async def test_canned_query_results_link_to_post_pages(ds):
    """A query's post keys and post ids (when the row's url is the post's) link to the
    post's page; an original only when it is archived."""
    viewed = (await ds.client.get("/telegram/most_viewed?channel=TestEmb")).text
    assert '<a href="/telegram/posts/TestEmb~2F1">1</a>' in viewed
    lag = (await ds.client.get("/telegram/amplification_lag")).text
    assert '<a href="/telegram/posts/TestEmb~2F3">3</a>' in lag  # post_id, with its url
    assert '<a href="/telegram/posts/SourceMFA~2F77">SourceMFA/77</a>' in lag  # the archived original
    own = (await ds.client.get("/telegram/own_posts?channel=TestEmb")).text
    assert '<a href="/telegram/posts/TestEmb~2F2">TestEmb/2</a>' in own
    sql = (await ds.client.get("/telegram?sql=select+1+as+id,+'TestEmb'+as+channel,+'x'+as+url")).text
    assert "/telegram/posts/TestEmb~2F1" not in sql  # not a post's row: no link
