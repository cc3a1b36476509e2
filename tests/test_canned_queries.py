"""Every canned query of metadata.yml works as HTML, JSON and CSV on a real database,
and answers the question it is named for."""

import csv
import io

import pytest

from conftest import publish_metadata

pytestmark = pytest.mark.asyncio

QUERIES = {
    name: query
    for name, query in publish_metadata()["databases"]["telegram"]["queries"].items()
    if name != "search"  # owned and tested by the search work
}


def rows(ds_client_response):
    assert ds_client_response.status_code == 200, ds_client_response.text[:500]
    return ds_client_response.json()["rows"]


async def get_rows(ds, name, **params):
    response = await ds.client.get(f"/telegram/{name}.json", params={**params, "_shape": "objects"})
    assert response.status_code == 200, response.text[:500]
    return response.json()["rows"]


async def test_every_query_has_title_description_and_params():  # async only because the module is marked asyncio
    assert len(QUERIES) >= 11
    for name, query in QUERIES.items():
        assert query.get("title"), name
        assert len(query.get("description", "")) > 40, name
        named = set(__import__("re").findall(r":(\w+)", query["sql"]))
        assert set(query.get("params", [])) == named, name


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_query_html_json_csv_with_defaults(ds, name):
    html = await ds.client.get(f"/telegram/{name}")
    assert html.status_code == 200
    assert QUERIES[name]["title"] in html.text
    for param in QUERIES[name].get("params", []):
        assert f'name="{param}"' in html.text  # a form field per parameter
    data = await ds.client.get(f"/telegram/{name}.json?_shape=objects")
    assert data.status_code == 200 and data.json()["ok"] is True
    csv_response = await ds.client.get(f"/telegram/{name}.csv")
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/plain") or "csv" in csv_response.headers["content-type"]
    header = next(csv.reader(io.StringIO(csv_response.text)))
    assert header == data.json()["columns"]
    assert len(list(csv.reader(io.StringIO(csv_response.text)))) == len(data.json()["rows"]) + 1


async def test_posts_per_month(ds):
    result = await get_rows(ds, "posts_per_month", channel="testemb")
    assert sum(r["posts"] for r in result) == 6
    assert {r["month"] for r in result} == {"2026-01", "2026-02", "2026-03"}
    assert sum(r["forwarded"] for r in result) == 2
    everything = await get_rows(ds, "posts_per_month")
    assert {r["channel"] for r in everything} == {"TestEmb", "SourceMFA"}


async def test_top_hashtags_in_a_period(ds):
    result = await get_rows(ds, "top_hashtags")
    assert result[0]["hashtag"] == "Норвегия" and result[0]["posts"] == 2
    march = await get_rows(ds, "top_hashtags", **{"from": "2026-03-01", "to": "2026-03-31"})
    assert [(r["hashtag"], r["posts"]) for r in march] == [("Diplomacy", 1), ("Норвегия", 1)]


async def test_top_domains(ds):
    result = await get_rows(ds, "top_domains")
    assert result[0]["domain"] == "mid.ru" and result[0]["posts"] == 2
    assert "regjeringen.no" in {r["domain"] for r in result}


async def test_forward_sources_share(ds):
    result = await get_rows(ds, "forward_sources", channel="TestEmb")
    source = next(r for r in result if r["source"] == "SourceMFA")
    assert source["forwards"] == 1 and source["all_posts"] == 6
    assert source["percent_of_posts"] == pytest.approx(16.7)


async def test_amplification_lag_against_archived_original(ds):
    (row,) = await get_rows(ds, "amplification_lag")
    assert (row["channel"], row["post_id"], row["source_channel"], row["original_id"]) == ("TestEmb", 3, "SourceMFA", 77)
    # original 2026-01-13 08:30, forward 2026-01-13 10:00
    assert row["lag_minutes"] == 90


async def test_most_viewed_in_a_period(ds):
    result = await get_rows(ds, "most_viewed", limit="3")
    assert [r["id"] for r in result] == [77, 6, 4]  # post 5 is deleted
    january = await get_rows(ds, "most_viewed", **{"from": "2026-01-01", "to": "2026-01-31", "channel": "TestEmb"})
    assert [r["id"] for r in january] == [6, 3]


async def test_views_growth_of_one_post(ds):
    result = await get_rows(ds, "views_growth", channel="TestEmb", post_id="2")
    assert [r["views"] for r in result] == [200, 250]
    assert [r["gained"] for r in result] == [None, 50]


async def test_edited_posts_with_versions(ds):
    result = await get_rows(ds, "edited_posts")
    assert [(r["post_id"], r["version"]) for r in result] == [(1, 1), (1, 2)]
    assert result[1]["text"].endswith("(обновлено)")


async def test_deleted_posts(ds):
    result = await get_rows(ds, "deleted_posts")
    assert [(r["channel"], r["id"]) for r in result] == [("TestEmb", 5)]
    assert result[0]["deleted_at"].startswith("2026-03-02")


async def test_subscribers_over_time(ds):
    result = await get_rows(ds, "subscribers_over_time", channel="TestEmb")
    assert [r["subscribers"] for r in result] == [1200, 1300]
    assert result[1]["change"] == 100


async def test_posts_that_mention_a_place(ds):
    oslo = await get_rows(ds, "posts_mentioning_place", place="Oslo")
    assert {r["post_id"] for r in oslo} >= {1}
    assert all(r["latitude"] and r["longitude"] for r in oslo)
    by_written_form = await get_rows(ds, "posts_mentioning_place", place="Осло")
    assert [r["post_id"] for r in by_written_form] == [1]
    norway = await get_rows(ds, "posts_mentioning_place", country="NO")
    assert {r["post_id"] for r in norway} >= {1}
    location = await get_rows(ds, "posts_mentioning_place", place="Embassy")
    assert [(r["post_id"], r["latitude"], r["longitude"]) for r in location] == [(6, 59.92, 10.71)]
