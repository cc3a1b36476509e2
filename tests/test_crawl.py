"""The crawler over real HTTP against the project's fake Telegram (nothing mocked)."""

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from telegram_datasette.cli import cli
from telegram_datasette.build import rebuild
from telegram_datasette.config import load_config
from telegram_datasette.derive import derive
from telegram_datasette.crawl import crawl
from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.fetch import USER_AGENT, Fetcher, RateLimiter, retry_after_seconds
from telegram_datasette.schema import open_archive, open_db

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(timezone.utc)


def recent_channel(name="embassy", n=120, *, days=30, **options):
    """A channel whose posts span the last `days` days, so some fall in the refresh window."""
    return FakeChannel.demo(
        name, n, seed=7, start=NOW - timedelta(days=days), end=NOW - timedelta(hours=1), **options
    )


class Sleeps:
    """Records the waits the fetcher asks for instead of sleeping them."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


def make_fetcher(**options):
    options.setdefault("requests_per_second", 0)
    options.setdefault("timeout", 5)
    options.setdefault("max_retries", 3)
    options.setdefault("sleep", Sleeps())
    return Fetcher(**options)


def run_crawl(tmp_path, base_url, channels, fetcher=None, **config):
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    settings = {**load_config(None), "base_url": base_url, "requests_per_second": 0, **config}
    results = crawl(channels, db, adb, settings, fetcher=fetcher or make_fetcher())
    derive(db)  # as the crawl command does
    return db, results


def ids(db, channel, where="1=1"):
    return {r[0] for r in db.execute(f"select id from posts where channel = ? and {where}", [channel])}


def shown_ids(fake_channel):
    return {p.id for p in fake_channel.posts}


def test_first_crawl_backfills_every_post_once(tmp_path):
    channel = FakeChannel.demo("embassy", 150, seed=3)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, [result] = run_crawl(tmp_path, url, ["embassy"])
    assert result.error is None and result.backfill_complete
    assert ids(db, "embassy") == shown_ids(channel)
    assert len(fake.requests) == len(set(fake.requests)), "a URL was fetched twice"
    assert result.requests == len(fake.requests) == result.pages
    assert all(ua == USER_AGENT for ua in fake.user_agents)
    # Albums span several ids; every album keeps its item ids.
    albums = db.execute("select count(*) from posts where kind = 'album' and album_ids is not null").fetchone()[0]
    assert albums > 0
    kinds = {r[0] for r in db.execute("select distinct kind from media")}
    assert {"photo", "video", "poll", "location", "voice", "document", "sticker"} <= kinds
    assert db["channel_stats"].count == 1
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_channel_that_does_not_start_at_id_1(tmp_path):
    channel = FakeChannel.demo("late", 45, seed=1, first_id=5001)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, [result] = run_crawl(tmp_path, url, ["late"])
    assert result.backfill_complete and ids(db, "late") == shown_ids(channel)
    assert min(ids(db, "late")) >= 5001
    assert len(fake.requests) == len(set(fake.requests))


def test_second_crawl_sees_new_edited_deleted_and_growing(tmp_path):
    channel = recent_channel(n=200, days=40)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        db, _ = run_crawl(tmp_path, url, ["embassy"])
        first_requests = len(fake.requests)
        recent = sorted(p.id for p in channel.posts if p.date >= (NOW - timedelta(days=6)).isoformat())
        edited_id, deleted_id = recent[-3], recent[-5]
        fake.edit_post("embassy", edited_id, "A corrected notice: the consular office opens at ten.")
        fake.delete_post("embassy", deleted_id)
        fake.grow_views("embassy", 1.5)
        new = fake.add_posts("embassy", 30, when=NOW - timedelta(minutes=30 * 60))
        fake.set_counter("embassy", "subscribers", 20_000)
        del fake.requests[:]
        db, [result] = run_crawl(tmp_path, url, ["embassy"], refresh_days=7)
    assert result.error is None
    assert ids(db, "embassy", "deleted_at is null") == shown_ids(channel)
    assert {p.id for p in new} <= ids(db, "embassy")
    assert result.new == len(new)
    assert result.edited >= 1 and result.deleted == 1
    assert db["posts"].get(f"embassy/{deleted_id}")["deleted_at"] is not None
    versions = [r["text"] for r in db["post_versions"].rows_where("post_id = ?", [edited_id], order_by="version")]
    assert len(versions) == 2 and versions[1].startswith("A corrected notice")
    snapshots = [r["views"] for r in db["view_snapshots"].rows_where("post_id = ?", [recent[-1]], order_by="fetched_at")]
    assert len(snapshots) == 2 and snapshots[1] > snapshots[0]
    assert [r["subscribers"] for r in db["channel_stats"].rows_where(order_by="fetched_at")][-1] == 20_000
    # Incremental: far fewer requests than the backfill, no URL twice.
    assert len(fake.requests) < first_requests
    assert len(fake.requests) == len(set(fake.requests))


def test_incremental_run_fetches_only_new_pages_plus_refresh_window(tmp_path):
    channel = FakeChannel.demo("quiet", 400, seed=5)  # all posts older than the window
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        run_crawl(tmp_path, url, ["quiet"])
        del fake.requests[:]
        run_crawl(tmp_path, url, ["quiet"])
        assert len(fake.requests) == 1  # the newest page: nothing new, nothing recent
        fake.add_posts("quiet", 45)
        del fake.requests[:]
        db, [result] = run_crawl(tmp_path, url, ["quiet"])
    assert result.new == 45
    # 45 new posts fill about three pages of ~20 ids; the page reaching the synced range ends the walk.
    assert 3 <= len(fake.requests) <= 4
    assert ids(db, "quiet") == shown_ids(channel)


def test_deleted_post_that_comes_back_is_restored(tmp_path):
    channel = recent_channel(n=60, days=5)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        run_crawl(tmp_path, url, ["embassy"])
        victim = channel.posts[-10]
        fake.delete_post("embassy", victim.id)
        db, [r1] = run_crawl(tmp_path, url, ["embassy"])
        assert r1.deleted == 1
        channel.posts.append(victim)
        channel.posts.sort(key=lambda p: p.id)
        channel.reindex()
        db, [r2] = run_crawl(tmp_path, url, ["embassy"])
    assert r2.restored == 1
    assert db["posts"].get(f"embassy/{victim.id}")["deleted_at"] is None
    events = [e["event"] for e in db["post_events"].rows_where("post_id = ?", [victim.id], order_by="at")]
    assert events == ["first_seen", "deleted", "restored"]


def test_page_without_more_link_is_followed_by_rel_prev(tmp_path):
    channel = FakeChannel.demo("embassy", 100, seed=2)
    fake = FakeTelegram([channel])
    fake.drop_more_link(times=None)
    with fake.serve() as url:
        db, [result] = run_crawl(tmp_path, url, ["embassy"])
    assert result.backfill_complete and ids(db, "embassy") == shown_ids(channel)
    assert len(fake.requests) == len(set(fake.requests))


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "slow", "truncate_wire", "truncate_html"])
def test_transient_faults_are_retried(tmp_path, fault):
    channel = FakeChannel.demo("embassy", 60, seed=4)
    fake = FakeTelegram([channel])
    sleeps = Sleeps()
    fetcher = make_fetcher(sleep=sleeps, timeout=0.5)
    if fault == "rate_limit":
        fake.rate_limit(times=2, retry_after=7, path=r"before=")
    elif fault == "server_error":
        fake.server_error(times=2, status=502)
    elif fault == "slow":
        fake.slow(2.0, times=1, path=r"before=")
    elif fault == "truncate_wire":
        fake.truncate(times=1, lie_length=True)
    else:
        fake.truncate(times=1, lie_length=False, keep=0.6)
    with fake.serve() as url:
        db, [result] = run_crawl(tmp_path, url, ["embassy"], fetcher=fetcher)
    assert result.error is None, result.error
    assert ids(db, "embassy") == shown_ids(channel)
    if fault == "rate_limit":
        assert sleeps.waits[:2] == [7.0, 7.0]  # Retry-After honoured
        assert result.retries == 2
    elif fault == "truncate_html":
        assert result.requests == result.pages + 1  # the truncated page fetched again
    else:
        assert result.retries >= 1


def test_retry_budget_spent_gives_a_clear_message(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("embassy", 30, seed=1), FakeChannel.demo("other", 30, seed=2)])
    fake.server_error(times=None, status=503, path=r"/s/embassy")
    with fake.serve() as url:
        db, results = run_crawl(tmp_path, url, ["embassy", "other"], fetcher=make_fetcher(max_retries=2))
    failed, other = results
    assert failed.failed and "gave up" in failed.error and "after 3 attempts: HTTP 503" in failed.error
    assert other.error is None and ids(db, "other")


def test_backoff_grows_exponentially_with_jitter():
    from telegram_datasette.fetch import backoff_seconds

    for attempt in range(1, 6):
        waits = [backoff_seconds(attempt, 1.0, 60.0) for _ in range(200)]
        assert all(0 <= w <= 2 ** (attempt - 1) for w in waits)
        assert len(set(waits)) > 100  # jitter
    assert retry_after_seconds("12", 1.0) == 12.0
    assert retry_after_seconds(None, 3.0) == 3.0
    assert retry_after_seconds("garbage", 3.0) == 3.0


def test_rate_limiter_spaces_requests_per_host():
    clock = [100.0]
    waits = []

    def sleep(seconds):
        waits.append(round(seconds, 3))
        clock[0] += seconds

    limiter = RateLimiter(2.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        limiter.wait("t.me")
    limiter.wait("example.org")  # another host is not held back
    assert waits == [0.5, 0.5]


def test_unavailable_channels_are_one_line_and_others_go_on(tmp_path):
    fake = FakeTelegram([
        FakeChannel.demo("closed", 10, seed=1, public_preview=False),
        FakeChannel.demo("embassy", 30, seed=1),
    ])
    with fake.serve() as url:
        db, results = run_crawl(tmp_path, url, ["closed", "nosuchchannel", "embassy"])
    closed, missing, good = results
    assert closed.unavailable and "no public preview" in closed.error
    assert missing.unavailable and "no public preview" in missing.error
    assert not closed.failed and good.error is None and ids(db, "embassy")


def test_layout_change_stops_the_channel_writes_nothing_and_exits_nonzero(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("embassy", 30, seed=1), FakeChannel.demo("other", 30, seed=2)])
    fake.change_layout(times=None, path=r"/s/embassy")
    with fake.serve() as url:
        result = CliRunner().invoke(cli, [
            "crawl", "--base-url", url, "--channel", "embassy", "--channel", "other",
            "--requests-per-second", "0",
            "--db", str(tmp_path / "telegram.db"), "--archive", str(tmp_path / "archive.db"),
        ])
    assert result.exit_code == 1
    assert "changed its layout" in result.output
    db = sqlite3.connect(tmp_path / "telegram.db")
    assert db.execute("select count(*) from posts where channel = 'embassy'").fetchone()[0] == 0
    assert db.execute("select count(*) from channels where username = 'embassy'").fetchone()[0] == 0
    assert db.execute("select count(*) from posts where channel = 'other'").fetchone()[0] > 0
    # The page is kept for later, in the archive.
    archived = sqlite3.connect(tmp_path / "archive.db").execute(
        "select count(*) from fetches where channel = 'embassy'").fetchone()[0]
    assert archived == 1


def test_non_telegram_page_stops_the_channel(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("embassy", 30, seed=1)])
    fake.not_telegram(times=None)
    with fake.serve() as url:
        db, [result] = run_crawl(tmp_path, url, ["embassy"])
    assert result.failed and "not a Telegram page" in result.error
    assert db["posts"].count == 0


def test_rebuild_from_archive_equals_incremental_crawls(tmp_path):
    channel = recent_channel(n=150, days=20)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        run_crawl(tmp_path, url, ["embassy"])
        fake.advance("embassy", new_posts=25, edits=2, deletions=2)
        fake.edit_post("embassy", channel.posts[-2].id, "Changed once more, near the top.")
        fake.delete_post("embassy", channel.posts[-4].id)
        run_crawl(tmp_path, url, ["embassy"])
    before = logical_dump(tmp_path / "telegram.db")
    rebuild(tmp_path / "archive.db", tmp_path / "rebuilt.db")
    after = logical_dump(tmp_path / "rebuilt.db")
    assert before == after
    assert len(before["post_versions"]) > len(before["posts"])
    assert any("'deleted'" in row for row in before["post_events"])


def logical_dump(path):
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
    skip = ("posts_fts", "sqlite_", "_sqlite_migrations", "crawl_state")
    return {t: sorted(map(repr, conn.execute(f"select * from [{t}]"))) for t in tables if not t.startswith(skip)}


def start_fake_server(tmp_path, spec):
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools", "fake-telegram", "--port", "0", "--channel", spec],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    line = proc.stdout.readline()
    page = line[line.index("http://"):].split()[0]
    url = page[: page.index("/s/")]
    assert httpx.get(page, timeout=10).status_code == 200
    return proc, url


def wait_for_posts(path, count, child, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            conn = sqlite3.connect(path, timeout=0.1)
            if conn.execute("select count(*) from posts").fetchone()[0] >= count:
                return True
        except sqlite3.OperationalError:
            pass  # not created yet, or busy
        finally:
            conn.close() if "conn" in locals() else None
        time.sleep(0.01)
    return False


def test_kill_9_mid_crawl_then_resume_matches_uninterrupted(tmp_path):
    proc, url = start_fake_server(tmp_path, "bigchan:600")
    try:
        crawl_args = [sys.executable, "-m", "telegram_datasette", "crawl", "--base-url", url, "--channel", "bigchan",
                      "--requests-per-second", "0"]
        killed = tmp_path / "killed"
        killed.mkdir()
        for stored in (100, 300):
            child = subprocess.Popen(
                crawl_args + ["--db", str(killed / "telegram.db"), "--archive", str(killed / "archive.db")],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            # Kill it mid-crawl, once it has stored some pages of this run.
            assert wait_for_posts(killed / "telegram.db", stored, child), "the crawl ended before the kill"
            child.send_signal(signal.SIGKILL)
            child.wait()
            conn = sqlite3.connect(killed / "telegram.db")
            assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
            assert conn.execute("select count(*) from posts").fetchone()[0] < 600
            conn.close()
        subprocess.run(crawl_args + ["--db", str(killed / "telegram.db"), "--archive", str(killed / "archive.db")],
                       cwd=ROOT, check=True, capture_output=True)
        clean = tmp_path / "clean"
        clean.mkdir()
        subprocess.run(crawl_args + ["--db", str(clean / "telegram.db"), "--archive", str(clean / "archive.db")],
                       cwd=ROOT, check=True, capture_output=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    query = "select channel, id, text, date, kind, deleted_at is null from posts order by id"
    resumed = sqlite3.connect(killed / "telegram.db").execute(query).fetchall()
    uninterrupted = sqlite3.connect(clean / "telegram.db").execute(query).fetchall()
    assert len(uninterrupted) > 500
    assert resumed == uninterrupted
    versions = "select channel, post_id, version, text_sha256 from post_versions order by post_id"
    assert (sqlite3.connect(killed / "telegram.db").execute(versions).fetchall()
            == sqlite3.connect(clean / "telegram.db").execute(versions).fetchall())


def test_loop_guard_refuses_repeats_and_forward_jumps(tmp_path):
    from telegram_datasette.crawl import ChannelCrawler

    db, adb = open_db(tmp_path / "t.db"), open_archive(tmp_path / "a.db")
    crawler = ChannelCrawler("chan", db, adb, make_fetcher(), {**load_config(None), "base_url": "http://x"})
    crawler.seen_urls = {"http://x/s/chan?before=50"}
    assert crawler.next_or_stop("http://x/s/chan?before=80", "http://x/s/chan?before=60") == "http://x/s/chan?before=60"
    assert crawler.next_or_stop("http://x/s/chan?before=80", "http://x/s/chan?before=50") is None  # seen
    assert crawler.next_or_stop("http://x/s/chan?before=40", "http://x/s/chan?before=45") is None  # forwards
    assert len(crawler.result.problems) == 2 and "avoid a loop" in crawler.result.problems[0]
