"""metadata.yml documents the data: every table and public-schema column described,
caveats and license stated, internal tables hidden, and Datasette serves it that way."""

import pytest

from conftest import publish_metadata
from telegram_datasette.schema import TABLES as SCHEMA

# The public schema of DESIGN.md (the contract).
PUBLIC_SCHEMA = {
    "channels": "username channel_id title description subscribers subscribers_text photos videos files links verified first_fetched_at last_fetched_at",
    "channel_stats": "username fetched_at subscribers photos videos files links",
    "posts": "channel id url date text html views views_text edited author kind forwarded_from_name forwarded_from_channel forwarded_from_id forwarded_from_url reply_to_id link_preview_url link_preview_title language first_seen_at last_seen_at deleted_at",
    "post_versions": "channel post_id version text text_sha256 first_seen_at last_seen_at",
    "view_snapshots": "channel post_id fetched_at views",
    "media": "channel post_id position kind url thumbnail_url duration_seconds title latitude longitude",
    "links": "channel post_id url domain text",
    "hashtags": "channel post_id hashtag",
    "mentions": "channel post_id username",
    "reactions": "channel post_id emoji count count_text paid",
    "places": "channel post_id name matched_text country_code latitude longitude",
    "fetches": "id url fetched_at status sha256 bytes duration_ms",
}
INTERNAL = {"place_scans", "crawl_state", "dataset_info", "derive_queue", "_sqlite_migrations"}

METADATA = publish_metadata()
TABLES = METADATA["databases"]["telegram"]["tables"]


def test_dataset_description_states_source_schedule_and_caveats():
    text = METADATA["description_html"]
    for needle in ("t.me/s", "schedule", "rounded", "expiring", "no edit", "re-crawling"):
        assert needle in text, needle
    assert "CC BY" in METADATA["license"] and "authors" in METADATA["license"]
    for key in ("license_url", "source", "source_url", "about", "about_url", "title"):
        assert METADATA.get(key), key


@pytest.mark.parametrize("table", sorted(PUBLIC_SCHEMA))
def test_every_public_schema_column_is_described(table):
    described = TABLES[table].get("columns", {})
    assert TABLES[table].get("description") or TABLES[table].get("description_html")
    for column in PUBLIC_SCHEMA[table].split():
        assert len(described.get(column, "")) >= 8, f"{table}.{column} has no description"


def test_every_stored_column_is_described():
    """Not only the contract: every column the store creates, and the places table."""
    missing = []
    for table, (columns, _pk) in SCHEMA.items():
        if table in ("problems",) or table in INTERNAL:
            continue
        for column in columns:
            if not TABLES.get(table, {}).get("columns", {}).get(column):
                missing.append(f"{table}.{column}")
    assert missing == []


def test_units_are_given_for_measures():
    posts = TABLES["posts"]["columns"]
    assert "count" in posts["views"] and "±" in posts["views_precision"]
    assert "degrees" in TABLES["places"]["columns"]["latitude"]
    assert "seconds" in TABLES["media"]["columns"]["duration_seconds"]


def test_internal_tables_hidden_and_public_ones_visible():
    for table in INTERNAL:
        assert TABLES[table].get("hidden") is True, table
    for table in PUBLIC_SCHEMA:
        assert not TABLES[table].get("hidden"), table


def test_map_configured_on_places():
    config = METADATA["plugins"]["datasette-cluster-map"]
    assert (config["latitude_column"], config["longitude_column"]) == ("latitude", "longitude")


@pytest.mark.asyncio
async def test_datasette_serves_the_descriptions(ds):
    response = await ds.client.get("/telegram/posts")
    assert response.status_code == 200
    assert "One row per post (channel, id)" in response.text
    columns = (await ds.client.get("/telegram/posts.json?_extra=column_details")).status_code
    assert columns in (200, 400)
    meta = (await ds.client.get("/-/metadata.json")).json()
    assert meta["databases"]["telegram"]["tables"]["posts"]["columns"]["views_text"]
    index = await ds.client.get("/telegram")
    assert "place_scans" not in index.text.split("hidden tables")[0]
    # sort and facets
    posts = await ds.client.get("/telegram/posts.json?_shape=objects&_extra=facet_results")
    assert posts.status_code == 200


@pytest.mark.asyncio
async def test_read_only_with_limits_but_open_sql(ds):
    settings = (await ds.client.get("/-/settings.json")).json()
    assert settings["sql_time_limit_ms"] == 3000 and settings["max_returned_rows"] == 1000
    assert settings["suggest_facets"] is False
    databases = (await ds.client.get("/-/databases.json")).json()
    (telegram,) = [d for d in databases if d["name"] == "telegram"]
    assert telegram["is_mutable"] is False
    sql = await ds.client.get("/telegram.json", params={"sql": "select count(*) as n from posts", "_shape": "array"})
    assert sql.json() == [{"n": 7}]
    write = await ds.client.get("/telegram.json", params={"sql": "delete from posts"})
    assert write.status_code == 400
    slow = await ds.client.get("/telegram.json", params={
        "sql": "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"})
    assert slow.status_code == 400 and "interrupted" in slow.text.lower()
