"""Issue 14: following the forwards. Over the fake Telegram (a demo embassy forwarding a
ministry it is configured with, a culture channel it is not, whose originals were edited or
deleted after the forward, a trade desk without a public preview, and a hidden account),
and over the real captures in ../shared (what the crawler would request)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from conftest import REAL_PAGES
from devtools.fake_telegram import FakeTelegram, demo_channels
from telegram_datasette.config import load_config
from telegram_datasette.crawl import crawl, follow_forwards, page_url
from telegram_datasette.follow import link_target, plan_targets
from telegram_datasette.schema import open_archive, open_db

CONFIGURED = ["demo_embassy", "demo_mfa", "demo_late_start"]


def config(base_url, **changes):
    return {**load_config(None), "base_url": base_url, "requests_per_second": 0, **changes}


@pytest.fixture
def served():
    fake = FakeTelegram(demo_channels())
    with fake.serve() as url:
        yield fake, url


def run(tmp_path, url, channels=CONFIGURED, **changes):
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    settings = config(url, **changes)
    crawl(channels, db, adb, settings)
    sources, followed = follow_forwards(channels, db, adb, settings)
    return db, sources, followed


def minutes(later: str, earlier: str) -> int:
    return round((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 60)


def test_originals_are_archived_as_sources_with_lag_and_changes_known(tmp_path, served):
    fake, url = served
    db, sources, followed = run(tmp_path, url)
    assert sources == []  # `originals` is the default: no source channel crawled in full
    culture, trade = fake.channel("demo_culture_no"), fake.channel("trade_desk_demo")
    forwards = [p for p in fake.channel("demo_embassy").posts if p.forwarded_from_channel == "demo_culture_no"]
    assert forwards
    rows = {r["post"]: r for r in db.query("select * from forwards where channel = 'demo_embassy'")}
    for post in forwards:
        row = rows[f"demo_embassy/{post.id}"]
        original = culture.post(post.forwarded_from_id)
        if original is None:  # deleted after the forward: not on its page any more
            assert row["original_status"] == "not found" and row["lag_minutes"] is None
            continue
        assert row["original_status"] == "archived"
        assert row["lag_minutes"] == minutes(post.date, original.date) > 0 and row["lag_error"] == 0
        assert row["text_same"] == (0 if original.edited and original.text != post.text else 1)
    assert {r["original_status"] for r in rows.values() if r["source_channel"] == "trade_desk_demo"} == {"unavailable"}
    assert {r["original_status"] for r in rows.values() if r["source_channel"] is None} == {"private source"}
    assert any(r["text_same"] == 0 for r in rows.values()) and any(r["original_status"] == "not found" for r in rows.values())
    # the source is in the dataset as a source, its originals linked from their forwards
    roles = dict(db.execute("select username, role from channels").fetchall())
    assert roles["demo_culture_no"] == "source" and all(roles[c] == "configured" for c in CONFIGURED)
    assert "trade_desk_demo" not in roles and trade.public_preview is False
    linked = db.execute("select count(*) from posts f join posts o on o.post = f.forwarded_from_post "
                        "where f.channel = 'demo_embassy' and o.channel = 'demo_culture_no'").fetchone()[0]
    assert linked == sum(r["original_status"] == "archived" and r["source_channel"] == "demo_culture_no"
                         for r in rows.values())
    # each original once: one request per page, neighbours count as coverage
    assert followed.requests < followed.planned and followed.posts_gained > followed.archived
    assert followed.left == 0 and followed.failed == 0
    assert followed.private == sum(1 for p in fake.channel("demo_embassy").posts + fake.channel("demo_mfa").posts
                                   + fake.channel("demo_late_start").posts
                                   if p.forwarded_from_name and not p.forwarded_from_channel)
    asked = [r[0] for r in db.execute("select url from fetches where channel = 'demo_culture_no'")]
    assert len(asked) == len(set(asked))


def test_a_second_run_fetches_only_new_originals(tmp_path, served):
    fake, url = served
    db, _, first = run(tmp_path, url)
    assert first.requests > 0
    _, _, again = run(tmp_path, url)
    assert again.planned == 0 and again.requests == 0  # settled targets are never asked for again
    culture = fake.channel("demo_culture_no")
    new = fake.add_posts("demo_embassy", 1, kinds=["text"])[0]
    original = culture.posts[-3]
    new.forwarded_from_name, new.forwarded_from_channel = culture.channel.title, "demo_culture_no"
    new.forwarded_from_id, new.forwarded_from_url = original.id, f"https://t.me/demo_culture_no/{original.id}"
    archived = db.execute("select count(*) from posts where post = ?", [f"demo_culture_no/{original.id}"]).fetchone()[0]
    _, _, third = run(tmp_path, url)
    assert third.planned == (0 if archived else 1) and third.requests == (0 if archived else 1)
    assert db.execute("select original_status from forwards where post = ?", [f"demo_embassy/{new.id}"]).fetchone()[0] == "archived"


def test_the_request_budget_leaves_the_rest_for_the_next_run(tmp_path, served):
    _, url = served
    db, _, first = run(tmp_path, url, follow_requests_per_run=2)
    assert first.requests == 2 and first.left > 0
    assert f"{first.left} left for the next run" in first.line()
    _, _, second = run(tmp_path, url, follow_requests_per_run=1000)
    assert second.left == 0 and second.planned == first.left


def test_off_and_channels_modes(tmp_path, served):
    _, url = served
    db, sources, followed = run(tmp_path / "off", url, follow_forwards="off")
    assert followed.planned == 0 and sources == [] and db["follows"].count == 0
    db, sources, followed = run(tmp_path / "full", url, follow_forwards="originals",
                                follow_forwards_by_channel={"demo_embassy": "channels"})
    crawled = {r.channel: r for r in sources}
    assert set(crawled) == {"demo_culture_no", "trade_desk_demo"}  # one hop; demo_mfa is configured already
    assert crawled["demo_culture_no"].backfill_complete and crawled["trade_desk_demo"].unavailable
    fake_count = db.execute("select count(*) from posts where channel = 'demo_culture_no'").fetchone()[0]
    assert fake_count == len(demo_channels()["demo_culture_no"].posts)  # the whole channel, as the fake serves it


def test_links_to_posts_and_their_rules():
    assert link_target("https://t.me/SomeChannel/12") == ("SomeChannel", 12)
    assert link_target("https://t.me/s/SomeChannel/12") == ("SomeChannel", 12)
    for private in ("https://t.me/c/1234567/89", "https://t.me/joinchat/AAAA", "https://t.me/SomeChannel",
                    "https://example.org/SomeChannel/12", None):
        assert link_target(private) is None, private


def test_the_site_links_forwards_and_originals_each_way(tmp_path, served, chromium):
    from conftest import datasette_served, route_offline

    _, url = served
    db, _, _ = run(tmp_path, url)
    forward, original = db.execute(
        "select post, original from forwards where channel = 'demo_embassy' and original_status = 'archived' "
        "order by date limit 1").fetchone()
    db.close()
    with datasette_served(tmp_path / "telegram.db", tmp_path) as base:
        page = chromium.new_page(viewport={"width": 390, "height": 844})
        route_offline(page, base)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/telegram/posts/{forward.replace('/', '~2F')}", wait_until="load")
        page.locator("a.tg-original-archived").click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/telegram/posts/" + original.replace("/", "~2F"))
        back = page.locator(".tg-linked a", has_text="forward")
        assert back.count() == 1
        back.click()
        page.wait_for_load_state("load")
        assert page.locator(f'article.tg-card[data-post="{forward}"]').count() == 1
        page.goto(f"{base}/telegram/changed_originals", wait_until="load")
        assert page.locator("table.rows-and-columns tbody tr").count() >= 1
        for path in ("/telegram/forwards", "/telegram/follows", "/telegram/channel_network",
                     "/telegram/lag_by_source", "/telegram/source_share_by_month", "/telegram/own_posts",
                     "/telegram/amplification_lag"):
            assert page.goto(base + path, wait_until="load").status == 200, path
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        assert errors == []
        page.close()


def test_what_the_crawler_would_request_for_the_real_captures(tmp_path, real_pages):
    """The real captures' forwards point at about twenty other channels (some at the
    channel itself): the plan is exactly their originals, each once, none for a forward
    without a link, and nothing for an original the dataset already holds."""
    from telegram_datasette.build import import_pages

    import_pages([real_pages], tmp_path / "telegram.db", tmp_path / "archive.db")
    db = open_db(tmp_path / "telegram.db")
    channels = [r[0] for r in db.execute("select distinct channel from posts")]
    targets = plan_targets(db, channels)
    forwards = db.execute("select forwarded_from_channel, forwarded_from_id from posts "
                          "where forwarded_from_channel is not null and forwarded_from_id is not null").fetchall()
    have = {r[0].lower() for r in db.execute("select post from posts")}
    expected = {f"{c}/{i}".lower() for c, i in forwards if f"{c}/{i}".lower() not in have and link_target(f"https://t.me/{c}/{i}")}
    planned = {t.key.lower() for t in targets if t.reason == "forward"}
    assert planned == expected and len(expected) >= 10
    assert len({c.lower() for c, _ in forwards}) >= 10  # many sources
    keys = [t.key.lower() for t in targets]
    assert len(keys) == len(set(keys))  # each once
    private = db.execute("select count(*) from posts where forwarded_from_name is not null "
                         "and forwarded_from_channel is null").fetchone()[0]
    assert private >= 1 and all(t.channel for t in targets)
    urls = [page_url("https://t.me", t.channel, t.id + 1) for t in targets]
    assert all(u.startswith("https://t.me/s/") and "?before=" in u for u in urls) and len(set(urls)) == len(urls)


def test_shards_leave_forwards_to_one_follow_after_the_merge(tmp_path, served):
    """A shard does not follow forwards (two shards would fetch the same sources, and the
    merge takes each channel from one shard); `follow`, run once after the merge, does."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from telegram_datasette.crawl import run_crawl

    _, url = served
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    settings = config(url, media_images=False)
    lines = []
    assert run_crawl(CONFIGURED, db, adb, settings, echo=lines.append, shard=True) == 0
    assert "forwards: followed after the merge, not in a shard" in lines
    assert db["follows"].count == 0
    db.close()
    adb.close()
    (tmp_path / "channels.yml").write_text(f"channels: [{', '.join(CONFIGURED)}]\nmedia_images: false\n")
    done = subprocess.run([sys.executable, "-m", "telegram_datasette", "follow", "--base-url", url,
                           "--requests-per-second", "0", "--db", str(tmp_path / "telegram.db")],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "forwards: followed 45 of 45 linked posts" in done.stderr
    db = open_db(tmp_path / "telegram.db")
    assert db.execute("select count(*) from follows where status = 'archived'").fetchone()[0] > 0
    assert db.execute("select role from channels where username = 'demo_culture_no'").fetchone()[0] == "source"
