"""The media store (scripts/media.py) over real HTTP against the fake Telegram and its CDN:
files stored once, every outcome recorded, nothing downloaded twice, kept across `rebuild`,
and shown on the site from the store (in Chromium)."""

import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from devtools.fake_telegram import FakeChannel, FakeTelegram, media_bytes
from telegram_datasette.build import rebuild
from telegram_datasette.config import ConfigError, load_config
from telegram_datasette.crawl import crawl
from telegram_datasette.fetch import Fetcher
from telegram_datasette.media import Candidate, NotMedia, check_file, store_media, wanted
from telegram_datasette.schema import open_archive, open_db, open_media

NOW = datetime.now(timezone.utc)


def settings(base_url, **overrides):
    return {**load_config(None), "base_url": base_url, "requests_per_second": 0,
            "media_requests_per_second": 0, "max_retries": 1, "timeout_seconds": 5,
            "refresh_days": 100_000, **overrides}


def fetcher_for(config):
    from telegram_datasette.media import make_fetcher

    fetcher = make_fetcher(config)
    fetcher.sleep = lambda seconds: None  # no backoff waits in tests
    return fetcher


def crawl_and_store(tmp_path, url, channels, **overrides):
    """One run as `crawl` does it: pages, then the media stage. Returns (db, mdb, result)."""
    config = settings(url, **overrides)
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    crawl(channels, db, adb, config, fetcher=Fetcher(requests_per_second=0, max_retries=1, sleep=lambda s: None))
    mdb = open_media(tmp_path / "media.db")
    result = store_media(db, mdb, config, fetcher=fetcher_for(config))
    return db, mdb, result


def statuses(db):
    return {r["item"]: r for r in db.query("select * from media_files")}


def file_name(url):
    return url.split("/file/")[1].split("?")[0]


@pytest.fixture
def channel():
    """Every kind of post (the newest ones), dated recently."""
    return FakeChannel.demo("mediachan", 60, seed=5, start=NOW - timedelta(days=20), end=NOW - timedelta(hours=1))


def test_every_kind_is_stored_once_and_a_second_run_downloads_nothing(tmp_path, channel):
    photos = [p for p in channel.posts if p.media and p.media[0].kind == "photo"]
    photos[1].media[0].url = photos[0].media[0].url.split("?")[0] + "?token=0123456789abcdef"  # the same file twice
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"], media_video_and_audio=True)
        first_requests = len(fake.media.requests)
        assert result.counts == {"stored": first_requests}, result.line()
        stored = [r for r in statuses(db).values() if r["status"] == "stored"]
        # every kind of file the posts and the channel show
        roles = {(r["role"], db.execute("select kind from media where post = ? and position = ?",
                                        [r["post"], r["position"]]).fetchone()[0] if r["position"] is not None else None)
                 for r in stored}
        assert {("avatar", None), ("link_preview", None), ("file", "photo"), ("file", "sticker"),
                ("thumbnail", "video"), ("thumbnail", "gif"), ("thumbnail", "round_video"), ("file", "video"),
                ("file", "voice")} <= roles, roles
        # each file once in media.db, with what it is
        files = {r["sha256"]: r for r in mdb.query("select sha256, bytes, mime, width, height from files")}
        assert len(files) == len({r["sha256"] for r in stored}) == len(stored) - 1 == result.new_files
        assert {r["mime"] for r in files.values()} >= {"image/jpeg", "image/png", "image/webp", "video/mp4", "audio/ogg"}
        for row in stored:
            assert files[row["sha256"]]["bytes"] == row["bytes"] and row["fetched_at"] and row["attempts"] == 1
            if row["mime"].startswith("image/"):
                assert row["width"] > 0 and row["height"] > 0
        # the original bytes, as the CDN sent them
        some = next(r for r in stored if r["role"] == "file" and r["mime"].startswith("image/"))
        name, ext = file_name(some["url"]).split(".")
        content = mdb.execute("select content from files where sha256 = ?", [some["sha256"]]).fetchone()[0]
        assert content == media_bytes(name, ext)[1]

        # A second run (the pages again, with fresh URLs) downloads nothing already stored.
        db, mdb, again = crawl_and_store(tmp_path, url, ["mediachan"], media_video_and_audio=True)
        assert len(fake.media.requests) == first_requests and again.counts == {}
        assert again.line() == "media: nothing to download"


def test_expired_too_big_over_budget_and_error_pages_are_recorded(tmp_path, channel):
    photos = [file_name(p.media[0].url.replace("https://cdn-fake.telesco.pe", "")) for p in channel.posts
              if p.media and p.media[0].kind == "photo"][-5:]
    fake = FakeTelegram([channel])
    fake.media.fault("huge", path=photos[0], size=3_000_000)  # announced
    fake.media.fault("huge", path=photos[1], size=3_000_000, announce=False)  # chunked, no length
    fake.media.fault("error_page", path=photos[2])  # an HTML page at an image URL
    fake.media.fault("error_page", path=photos[3], content_type="image/jpeg")  # ...that says it is an image
    fake.media.fault("slow", path=photos[4], seconds=3, times=2)
    with fake.serve() as url:
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"], media_max_file_bytes=1_000_000,
                                          request_deadline_seconds=1, timeout_seconds=1)
        rows = {file_name(r["url"]): r for r in statuses(db).values() if r["url"]}
        assert rows[photos[0]]["status"] == "too big" and rows[photos[0]]["bytes"] == 3_000_000
        assert rows[photos[1]]["status"] == "too big" and rows[photos[1]]["bytes"] > 1_000_000
        assert "media_max_file_bytes" in rows[photos[0]]["reason"]
        assert rows[photos[2]]["status"] == "failed" and "error page" in rows[photos[2]]["reason"]
        assert rows[photos[3]]["status"] == "failed" and "error page" in rows[photos[3]]["reason"]
        assert rows[photos[4]]["status"] == "failed" and "gave up" in rows[photos[4]]["reason"]
        assert all(r["sha256"] is None for r in (rows[p] for p in photos))
        tries = len(fake.media.requests)
        assert sum(photos[0] in r for r in fake.media.requests) == 1  # too big: not retried
        # media.db keeps every attempt, and no file for them
        assert mdb.execute("select count(*) from fetches where status != 'stored'").fetchone()[0] == 5

        # The next run tries the failed files again (not the too big ones): the slow one is stored.
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"], media_max_file_bytes=1_000_000)
        assert result.counts == {"stored": 1, "failed": 2}, result.line()
        assert len(fake.media.requests) == tries + 3
        assert statuses(db)[next(i for i, r in statuses(db).items() if r["url"] and photos[4] in r["url"])]["status"] == "stored"


def test_expired_urls_say_so_and_a_recrawl_with_fresh_urls_fills_them_in(tmp_path, channel):
    fake = FakeTelegram([channel])
    fake.media.ttl = 0.0  # every URL has expired by the time it is fetched
    with fake.serve() as url:
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"])
        assert set(result.counts) == {"expired"} and result.counts["expired"] > 10
        row = next(iter(statuses(db).values()))
        assert row["status"] == "expired" and "HTTP 403" in row["reason"] and "re-crawl" in row["reason"]
        tried = len(fake.media.requests)
        # the same URLs again: nothing to try
        mdb2 = open_media(tmp_path / "media.db")
        assert store_media(db, mdb2, settings(url), fetcher=fetcher_for(settings(url))).counts == {}
        assert len(fake.media.requests) == tried
        fake.media.ttl = None
        time.sleep(0.01)
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"])  # fresh URLs
    assert result.counts == {"stored": tried}
    assert {r["status"] for r in statuses(db).values()} == {"stored"}


def test_past_the_budget_the_rest_waits_for_the_next_run(tmp_path, channel):
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"], media_budget_bytes=60_000)
        waiting = result.counts["over budget"]
        assert result.counts["stored"] >= 1 and waiting > 5 and "waits for the next run" in result.line()
        assert result.stored_bytes < 60_000 + 200_000
        over = [r for r in statuses(db).values() if r["status"] == "over budget"]
        assert len(over) == waiting and "media_budget_bytes" in over[0]["reason"] and over[0]["url"] is None
        db, mdb, result = crawl_and_store(tmp_path, url, ["mediachan"])
    assert result.counts == {"stored": waiting}
    assert {r["status"] for r in statuses(db).values()} == {"stored"}


def test_rebuild_keeps_the_media_rows_linked_to_their_files(tmp_path, channel):
    fake = FakeTelegram([channel])
    fake.media.fault("error_page", path=r"\.ogg")
    with fake.serve() as url:
        db, mdb, _ = crawl_and_store(tmp_path, url, ["mediachan"], media_video_and_audio=True)
    before = statuses(db)
    assert {r["status"] for r in before.values()} == {"stored", "failed"}
    db.close()
    mdb.close()
    rebuild(tmp_path / "archive.db", tmp_path / "telegram.db", workers=1)
    after = statuses(open_db(tmp_path / "telegram.db"))
    assert after == before
    # every media row still finds its stored file in media.db
    conn = sqlite3.connect(tmp_path / "telegram.db")
    conn.execute("attach ? as m", [str(tmp_path / "media.db")])
    unlinked = conn.execute(
        "select count(*) from media x join media_files f on f.post = x.post and f.position = x.position "
        "where f.status = 'stored' and f.sha256 not in (select sha256 from m.files)").fetchone()[0]
    linked = conn.execute("select count(*) from media x join media_files f on f.post = x.post "
                          "and f.position = x.position where f.status = 'stored'").fetchone()[0]
    assert unlinked == 0 and linked > 10


def test_check_file_refuses_error_pages_and_undecodable_images():
    _, jpeg = media_bytes("0a1b2c", "jpg")
    assert check_file(jpeg, "image/jpeg", image=True)[1:] in {(320, 240), (640, 480), (800, 600), (1280, 720),
                                                               (512, 512), (800, 1000), (90, 90)}
    for body, kind in [(b"<!DOCTYPE html><html>oops</html>", "image/jpeg"), (jpeg, "text/html"),
                       (jpeg[: len(jpeg) // 3], "image/jpeg"), (b"", "image/jpeg"), (b"GIF89a....", "image/gif")]:
        with pytest.raises(NotMedia):
            check_file(body, kind, image=True)
    assert check_file(b"\x00\x00\x00\x18ftypmp42....", "video/mp4", image=False)[0] == "video/mp4"
    with pytest.raises(NotMedia):  # the site serves these files back: never as a page
        check_file(b"\x00\x00\x00\x18ftypmp42", "application/xhtml+xml", image=False)


def test_what_is_wanted_follows_the_settings_and_what_became_of_it():
    config = load_config(None)
    photo = Candidate("c/1#0", "c", "c/1", 0, "file", "photo", "https://cdn/x.jpg")
    video = Candidate("c/2#0", "c", "c/2", 0, "file", "video", "https://cdn/x.mp4")
    sticker = Candidate("c/3#0", "c", "c/3", 0, "file", "sticker", "https://cdn/x.tgs")
    assert wanted(photo, config) and not wanted(video, config) and not wanted(sticker, config)  # images only
    assert wanted(video, {**config, "media_video_and_audio": True})
    assert not wanted(Candidate(**{**photo.__dict__, "status": "stored"}), config)
    assert wanted(Candidate(**{**photo.__dict__, "status": "over budget"}), config)
    expired = Candidate(**{**photo.__dict__, "status": "expired", "tried_url": photo.url})
    assert not wanted(expired, config) and wanted(Candidate(**{**expired.__dict__, "url": "https://cdn/x.jpg?t=2"}), config)
    too_big = Candidate(**{**photo.__dict__, "status": "too big", "tried_url": photo.url, "tried_bytes": 30_000_000})
    assert not wanted(too_big, config) and wanted(too_big, {**config, "media_max_file_bytes": 40_000_000})
    failed = Candidate(**{**photo.__dict__, "status": "failed", "tried_url": photo.url, "attempts": 3})
    assert not wanted(failed, config) and wanted(Candidate(**{**failed.__dict__, "attempts": 1}), config)


def test_media_settings_are_checked(tmp_path):
    config = load_config(None)
    assert config["media_images"] is True and config["media_video_and_audio"] is False
    assert config["media_max_file_bytes"] > 0 and config["media_budget_bytes"] > 0
    path = tmp_path / "channels.yml"
    path.write_text("channels: [RusEmbNo]\nmedia_budget_bytes: lots\n")
    with pytest.raises(ConfigError, match="media_budget_bytes: expected a whole number >= 0"):
        load_config(path)
    path.write_text("channels: [RusEmbNo]\nmedia_images: 1\n")
    with pytest.raises(ConfigError, match="media_images: expected true or false"):
        load_config(path)


# ---------------------------------------------------------------- the site, in Chromium


@pytest.fixture(scope="module")
def stored_site(tmp_path_factory, chromium):
    """A crawled channel with its media stored, served as `serve` serves it (media.db
    attached); the fake CDN is gone by then, so only stored copies can show."""
    from conftest import free_port, stop, wait_for_http
    from telegram_datasette.publish import serve_command

    tmp = tmp_path_factory.mktemp("media-site")
    channel = FakeChannel.demo("sitechan", 40, seed=9)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, mdb, result = crawl_and_store(tmp, url, ["sitechan"])
        assert result.counts.get("stored", 0) > 10
    db.close()
    mdb.close()
    port = free_port()
    log = tmp / "datasette.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(serve_command(tmp / "telegram.db", port=port), stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/-/versions.json", process, log=log)
        yield base, url, tmp
    finally:
        stop(process)


def loaded_images(page) -> list[dict]:
    page.evaluate("""async () => {
        for (const img of document.images) { img.loading = 'eager'; }
        await Promise.all([...document.images].map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })));
    }""")
    return page.evaluate("[...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth}))")


def test_the_site_shows_the_stored_copies(stored_site, chromium):
    base, cdn, tmp = stored_site
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base + "/telegram/posts?_size=50", wait_until="load")
    images = loaded_images(page)
    stored = [i for i in images if i["src"].startswith(base + "/-/media/thumbnail/")]
    assert len(stored) > 10, images
    assert all(i["w"] > 0 for i in stored), [i for i in stored if not i["w"]]  # they decode
    assert all(i["w"] <= 480 for i in stored)  # thumbnails for lists
    assert not [r for r in requests if r.startswith(cdn)]  # nothing from the CDN
    # The original on click, from the post's page.
    conn = sqlite3.connect(tmp / "telegram.db")
    post = conn.execute("select post from media_files where status = 'stored' and role = 'file'").fetchone()[0]
    page.goto(base + "/telegram/posts/" + post.replace("/", "~2F"), wait_until="load")
    link = page.locator("a.tg-stored").first
    href = link.get_attribute("href")
    assert href.startswith("/-/media/file/")
    response = page.request.get(base + href)
    assert response.status == 200 and response.headers["content-type"].startswith("image/")
    sha = href.rsplit("/", 1)[1]
    media = sqlite3.connect(tmp / "media.db")
    assert response.body() == media.execute("select content from files where sha256 = ?", [sha]).fetchone()[0]
    page.close()


def test_the_media_table_and_the_channel_show_the_stored_copies(stored_site, chromium):
    base, cdn, tmp = stored_site
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    for path in ("/telegram/media?_size=40", "/telegram/channels/sitechan"):
        page.goto(base + path, wait_until="load")
        stored = [i for i in loaded_images(page) if i["src"].startswith(base + "/-/media/thumbnail/")]
        assert stored and all(i["w"] > 0 for i in stored), path
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert not [r for r in requests if r.startswith(cdn)]  # nothing from the CDN
    page.close()


def test_a_shard_downloads_only_the_files_of_its_own_channels(tmp_path):
    """Every shard starts from the whole previous release: its media stage must not fetch
    the other shards' pending files (scripts/crawl.run_crawl with shard=True)."""
    from telegram_datasette.media import media_candidates

    fake = FakeTelegram([FakeChannel.demo("shard_a", 20, seed=4), FakeChannel.demo("shard_b", 20, seed=5)])
    with fake.serve() as url:
        db, mdb, _ = crawl_and_store(tmp_path, url, ["shard_a", "shard_b"], media_images=False)
        everything = media_candidates(db)
        mine = media_candidates(db, {"shard_a"})
        assert {c.channel for c in everything} == {"shard_a", "shard_b"}
        assert mine and {c.channel for c in mine} == {"shard_a"}
        assert len(mine) == sum(c.channel == "shard_a" for c in everything)
        # the shard's run: its channel's files, none of the other's
        from telegram_datasette.crawl import run_crawl
        from telegram_datasette.schema import open_archive

        run_crawl(["shard_a"], db, open_archive(tmp_path / "archive.db"), settings(url, follow_forwards="off"),
                  echo=lambda line: None, shard=True)
    stored = {r[0] for r in db.execute("select distinct channel from media_files where status = 'stored'")}
    assert stored == {"shard_a"}
