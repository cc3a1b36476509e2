"""Nothing once seen is lost, at the edges: truncated pages, hostile servers, a 404 on an
older page, and a rebuild from the archive. Over real HTTP against the fake Telegram."""

import re
import sqlite3
import time
import tracemalloc

import pytest
import yaml
from click.testing import CliRunner

from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.build import rebuild
from telegram_datasette.cli import cli
from telegram_datasette.config import load_config
from telegram_datasette.crawl import crawl
from telegram_datasette.fetch import Fetcher, FetchFailed
from telegram_datasette.schema import open_archive, open_db

INCOMPLETE = re.compile(
    r"INCOMPLETE embassy: (\d+) page ranges? could not be read in full; (they are|it is) retried on the next run")
# Only a guard against hanging: the hostile cases must end in seconds, not minutes.
HANG = 30


def no_sleep(seconds):
    pass


def make_fetcher(**options):
    options = {"requests_per_second": 0, "timeout": 5, "max_retries": 2, "sleep": no_sleep, **options}
    return Fetcher(**options)


def api_crawl(folder, base_url, channels, fetcher=None, **config):
    db, adb = open_db(folder / "telegram.db"), open_archive(folder / "archive.db")
    settings = {**load_config(None), "base_url": base_url, "requests_per_second": 0, **config}
    try:
        return crawl(channels, db, adb, settings, fetcher=fetcher or make_fetcher())
    finally:
        db.close()
        adb.close()


def cli_crawl(folder, base_url, *channels, config=None):
    args = ["crawl", "--base-url", base_url, "--requests-per-second", "0",
            "--db", str(folder / "telegram.db"), "--archive", str(folder / "archive.db")]
    for channel in channels:
        args += ["--channel", channel]
    # Our own channels.yml, not whichever the current directory holds.
    args += ["--config", str(config or write_config(folder))]
    return CliRunner().invoke(cli, args)


def write_config(folder, **settings):
    path = folder / "channels.yml"
    path.write_text(yaml.safe_dump({"channels": ["embassy"], **settings}))
    return path


def stored_ids(folder, channel):
    conn = sqlite3.connect(folder / "telegram.db")
    try:
        return {r[0] for r in conn.execute("select id from posts where channel = ?", [channel])}
    finally:
        conn.close()


def state(folder, channel):
    conn = sqlite3.connect(folder / "telegram.db")
    try:
        row = conn.execute("select high_id, low_id, backfill_complete from crawl_state where channel = ?",
                           [channel]).fetchone()
        return dict(zip(("high_id", "low_id", "backfill_complete"), row)) if row else None
    finally:
        conn.close()


def copy_database(source, target):
    """A consistent copy of a database still open elsewhere (its WAL included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def shown_ids(fake_channel):
    return {p.id for p in fake_channel.posts}


# ---------------------------------------------------------------- 1. truncated pages


def test_truncated_older_pages_are_not_synced_and_a_clean_crawl_fetches_them(tmp_path):
    channel = FakeChannel.demo("embassy", 300, seed=3)
    fake = FakeTelegram([channel])
    # Cut every older page in half, with a Content-Length that matches: a complete
    # response whose HTML stops early. It outlasts the crawler's re-fetches.
    fake.truncate(times=None, keep=0.5, lie_length=False, path=r"before=")
    with fake.serve() as url:
        first = cli_crawl(tmp_path, url, "embassy")
        assert first.exit_code == 1, first.output
        match = INCOMPLETE.search(first.output)
        assert match and int(match.group(1)) >= 1, first.output
        newest_page = {p.id for p in channel.page()[0]}
        after_first = state(tmp_path, "embassy")
        # The synced range is the newest page only: it never extends over a cut page.
        assert after_first == {"high_id": max(newest_page), "low_id": min(newest_page), "backfill_complete": 0}
        assert len(stored_ids(tmp_path, "embassy")) < 300
        fake.clear_faults()
        second = cli_crawl(tmp_path, url, "embassy")
    assert second.exit_code == 0, second.output
    assert "INCOMPLETE" not in second.output
    assert stored_ids(tmp_path, "embassy") == shown_ids(channel) and len(shown_ids(channel)) == 300
    assert state(tmp_path, "embassy") == {"high_id": max(newest_page), "low_id": 1, "backfill_complete": 1}


def test_truncated_pages_make_the_channel_incomplete_not_failed(tmp_path):
    channel = FakeChannel.demo("embassy", 120, seed=4)
    fake = FakeTelegram([channel])
    fake.truncate(times=None, keep=0.5, lie_length=False, path=r"before=")
    with fake.serve() as url:
        [result] = api_crawl(tmp_path, url, ["embassy"])
    assert result.error is None and result.incomplete >= 1
    assert not result.backfill_complete  # the summary table shows it as not complete
    assert any("could not be read in full" in p for p in result.problems)


def test_cut_newest_page_on_the_first_crawl_leaves_no_synced_range(tmp_path):
    channel = FakeChannel.demo("embassy", 100, seed=2)
    fake = FakeTelegram([channel])
    fake.truncate(times=3, keep=0.5, lie_length=False, path=r"/s/embassy$")  # every attempt
    with fake.serve() as url:
        [first] = api_crawl(tmp_path, url, ["embassy"])
        assert first.incomplete == 1 and not first.backfill_complete
        assert state(tmp_path, "embassy")["high_id"] is None  # the next run starts afresh
        [second] = api_crawl(tmp_path, url, ["embassy"])
    assert second.incomplete == 0 and second.backfill_complete
    assert stored_ids(tmp_path, "embassy") == shown_ids(channel)


def test_cut_pages_among_new_posts_keep_the_synced_range_below_them(tmp_path):
    channel = FakeChannel.demo("embassy", 200, seed=5)  # all posts older than the refresh window
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        api_crawl(tmp_path, url, ["embassy"])
        synced = state(tmp_path, "embassy")
        added = fake.add_posts("embassy", 45)
        fake.truncate(times=None, keep=0.5, lie_length=False, path=r"before=")
        [cut] = api_crawl(tmp_path, url, ["embassy"])
        assert cut.incomplete >= 1 and not cut.backfill_complete
        assert state(tmp_path, "embassy") == synced  # not raised over the cut pages
        fake.clear_faults()
        [clean] = api_crawl(tmp_path, url, ["embassy"])
    assert clean.incomplete == 0 and clean.backfill_complete
    assert state(tmp_path, "embassy")["high_id"] == max(p.id for p in added)
    assert stored_ids(tmp_path, "embassy") == shown_ids(channel)


# ---------------------------------------------------------------- 2. hostile servers


def test_drip_feed_gives_up_at_the_deadline_and_other_channels_go_on(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("slow", 30, seed=1), FakeChannel.demo("other", 30, seed=2)])
    fake.drip(seconds=0.1, times=None, path=r"/s/slow")  # a byte every 0.1 s, for ever
    config = write_config(tmp_path, request_deadline_seconds=0.5, max_retries=1, timeout_seconds=5)
    started = time.monotonic()
    with fake.serve() as url:
        result = cli_crawl(tmp_path, url, "slow", "other", config=config)
    assert time.monotonic() - started < HANG
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("FAILED"))
    assert line.startswith("FAILED slow: gave up on http://")
    assert "/s/slow after 2 attempts: the response took longer than the deadline of 0.5 s " \
           "(request_deadline_seconds)" in line
    assert fake.requests.count("/s/slow") == 2
    assert len(stored_ids(tmp_path, "other")) > 0 and not stored_ids(tmp_path, "slow")


def test_endless_body_stops_at_the_size_cap_in_bounded_memory(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("endless", 30, seed=1), FakeChannel.demo("other", 30, seed=2)])
    fake.endless(times=None, path=r"/s/endless")
    config = write_config(tmp_path, max_page_bytes=1_000_000, max_retries=1)
    started = time.monotonic()
    tracemalloc.start()
    try:
        with fake.serve() as url:
            result = cli_crawl(tmp_path, url, "endless", "other", config=config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < HANG
    assert peak < 50_000_000  # a few times the 1 MB cap, not the endless body
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("FAILED"))
    assert line.startswith("FAILED endless: gave up on http://")
    assert "/s/endless after 2 attempts: the body passed the cap of 1000000 bytes (max_page_bytes)" in line
    assert len(stored_ids(tmp_path, "other")) > 0 and not stored_ids(tmp_path, "endless")


def test_fetcher_refuses_a_body_announced_over_the_cap(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("embassy", 30, seed=1)])
    fetcher = make_fetcher(max_bytes=1000, max_retries=0)
    with fake.serve() as url:
        with pytest.raises(FetchFailed) as info:
            fetcher.get(f"{url}/s/embassy")
    message = str(info.value)
    assert "\n" not in message and "after 1 attempts: the body is announced as" in message
    assert "more than the cap of 1000 (max_page_bytes)" in message


def test_deadline_and_cap_leave_normal_pages_alone(tmp_path):
    channel = FakeChannel.demo("embassy", 60, seed=1)
    fake = FakeTelegram([channel])
    with fake.serve() as url:
        [result] = api_crawl(tmp_path, url, ["embassy"], fetcher=make_fetcher(request_deadline=10, max_bytes=500_000))
    assert result.error is None and result.backfill_complete
    assert stored_ids(tmp_path, "embassy") == shown_ids(channel)


# ---------------------------------------------------------------- 3. a 404 on an older page


def test_404_on_an_older_page_is_a_failure_not_a_missing_channel(tmp_path):
    channel = FakeChannel.demo("embassy", 150, seed=1)
    fake = FakeTelegram([channel, FakeChannel.demo("other", 30, seed=2)])
    fake.status(404, times=None, path=r"/s/embassy\?before=\d\d$")  # a page in the middle
    with fake.serve() as url:
        result = cli_crawl(tmp_path, url, "embassy", "other")
        assert result.exit_code == 1, result.output
        line = next(line for line in result.output.splitlines() if line.startswith("FAILED"))
        assert re.search(r"embassy: http://\S+/s/embassy\?before=\d\d answered HTTP 404", line), line
        assert "MISSING" not in result.output and "no such channel" not in result.output
        assert state(tmp_path, "embassy")["backfill_complete"] == 0
        assert stored_ids(tmp_path, "other")
        fake.clear_faults()
        again = cli_crawl(tmp_path, url, "embassy")
    assert again.exit_code == 0, again.output
    assert stored_ids(tmp_path, "embassy") == shown_ids(channel)
    assert state(tmp_path, "embassy")["backfill_complete"] == 1


def test_404_on_the_newest_page_is_a_missing_channel(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("embassy", 30, seed=1)])
    fake.status(404, times=None, path=r"/s/embassy$")
    with fake.serve() as url:
        [result] = api_crawl(tmp_path, url, ["embassy"])
    assert result.unavailable and "no such channel" in result.error


# ---------------------------------------------------------------- 4. rebuild keeps the crawl position


def test_rebuild_keeps_where_the_crawl_was(tmp_path):
    embassy = FakeChannel.demo("embassy", 150, seed=3)
    late = FakeChannel.demo("late", 45, seed=1, first_id=5001)  # its end is an empty older page
    fake = FakeTelegram([embassy, late])
    original, rebuilt = tmp_path / "original", tmp_path / "rebuilt"
    original.mkdir()
    rebuilt.mkdir()
    with fake.serve() as url:
        api_crawl(original, url, ["embassy", "late"])
        copy_database(original / "archive.db", rebuilt / "archive.db")
        rebuild(rebuilt / "archive.db", rebuilt / "telegram.db", workers=1)
        for channel in ("embassy", "late"):
            assert state(rebuilt, channel) == state(original, channel)
            assert state(rebuilt, channel)["backfill_complete"] == 1
        fake.add_posts("embassy", 5)
        requests = {}
        for folder in (original, rebuilt):
            del fake.requests[:]
            results = api_crawl(folder, url, ["embassy", "late"])
            assert all(r.error is None and r.backfill_complete for r in results)
            requests[folder.name] = len(fake.requests)
    assert requests["rebuilt"] == requests["original"] <= 4  # newest pages, not the whole walk again
    assert stored_ids(rebuilt, "embassy") == stored_ids(original, "embassy") == shown_ids(embassy)


def test_rebuild_never_vouches_for_a_cut_page(tmp_path):
    channel = FakeChannel.demo("embassy", 200, seed=6)
    fake = FakeTelegram([channel])
    fake.truncate(times=None, keep=0.5, lie_length=False, path=r"before=\d\d$")  # cut ids below 100
    with fake.serve() as url:
        [first] = api_crawl(tmp_path, url, ["embassy"])
        assert first.incomplete >= 1
        rebuilt = tmp_path / "rebuilt"
        rebuilt.mkdir()
        copy_database(tmp_path / "archive.db", rebuilt / "archive.db")
        rebuild(rebuilt / "archive.db", rebuilt / "telegram.db", workers=1)
        recomputed = state(rebuilt, "embassy")
        assert recomputed["backfill_complete"] == 0 and recomputed["low_id"] >= 90  # above the cut pages
        assert recomputed == state(tmp_path, "embassy")
        fake.clear_faults()
        [clean] = api_crawl(rebuilt, url, ["embassy"])
    assert clean.backfill_complete and clean.incomplete == 0
    assert stored_ids(rebuilt, "embassy") == shown_ids(channel)


@pytest.mark.parametrize("tag, depth", [("b", 50_000), ("div", 200_000)])
def test_a_crawl_beside_a_deeply_nested_page_reaches_every_channel_and_keeps_the_post(tmp_path, tag, depth):
    poisoned, other = FakeChannel.demo("poisoned", 60, seed=3), FakeChannel.demo("calm", 30, seed=4)
    fake = FakeTelegram([poisoned, other])
    fake.deep_nesting(depth=depth, tag=tag, times=None, path=r"^/s/poisoned\?before=")
    started = time.monotonic()
    with fake.serve() as url:
        result = cli_crawl(tmp_path, url, "poisoned", "calm")
    assert time.monotonic() - started < HANG
    assert result.exit_code == 0, result.output
    assert stored_ids(tmp_path, "poisoned") == shown_ids(poisoned)
    assert stored_ids(tmp_path, "calm") == shown_ids(other)
    conn = sqlite3.connect(tmp_path / "telegram.db")
    unknown = conn.execute("select id from posts where channel = 'poisoned' and kind = 'unknown'").fetchall()
    problems = [r[0] for r in conn.execute("select message from problems where message like '%nested deeper%'")]
    conn.close()
    assert unknown and problems and "256 levels" in problems[0]
