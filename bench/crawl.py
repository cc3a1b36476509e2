"""Crawl benchmark: a full backfill of a generated channel from the fake Telegram.

    .venv/bin/python bench/crawl.py [--posts 100000] [--new 50]

The fake Telegram runs in its own process (so its memory is not counted), on
loopback, with no rate limit. Reports posts per second end to end (fetch, parse,
store), the derive step (language, search index, places) separately, the peak
memory of the crawling process, and the requests an incremental run makes for k
new posts against the pages those posts fill.
"""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import httpx

from telegram_datasette.config import load_config
from telegram_datasette.crawl import crawl
from telegram_datasette.derive import derive as derive_step
from telegram_datasette.schema import open_archive, open_db

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # devtools/ (the fake Telegram) is a development tool of the checkout

from devtools.fake_telegram import PAGE_IDS  # noqa: E402

CHANNEL = "bench_channel"


def start_fake(posts: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools", "fake-telegram", "--port", "0", "--channel", f"{CHANNEL}:{posts}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline()
    page = first[first.index("http://"):].split()[0]
    return proc, page[: page.index("/s/")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(base_url: str, workdir: Path, derive: bool = True):
    db, adb = open_db(workdir / "telegram.db"), open_archive(workdir / "archive.db")
    config = {**load_config(None), "base_url": base_url, "requests_per_second": 0}
    started = time.perf_counter()
    [result] = crawl([CHANNEL], db, adb, config)
    crawled = time.perf_counter() - started
    started = time.perf_counter()
    if derive:
        derive_step(db)
    derived = time.perf_counter() - started
    return result, crawled, derived


@click.command()
@click.option("--posts", default=100_000, show_default=True)
@click.option("--new", "new_posts", default=50, show_default=True, help="k new posts for the incremental run")
@click.option("--derive/--no-derive", default=True, show_default=True,
              help="Also time the derive step (language, search index, places) after the backfill.")
def main(posts, new_posts, derive):
    proc, base_url = start_fake(posts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            result, crawled, derived = run(base_url, workdir, derive)
            assert result.error is None, result.error
            db_mb = (workdir / "telegram.db").stat().st_size / 2**20
            archive_mb = (workdir / "archive.db").stat().st_size / 2**20
            print(f"backfill: {result.posts:,} posts, {result.pages:,} pages, {result.requests:,} requests in {crawled:.1f} s")
            print(f"backfill: {result.pages / crawled:.0f} pages/s, peak memory {peak_rss_mb():.0f} MB (crawling process)")
            if derive:
                print(f"derive (language, search index, places): {derived:.1f} s, {result.posts / derived:.0f} posts/s")
            print(f"telegram.db {db_mb:.0f} MB, archive.db {archive_mb:.0f} MB")

            httpx.post(f"{base_url}/_fake/advance", json={
                "channel": CHANNEL, "new_posts": new_posts, "edits": 0, "deletions": 0, "views_factor": 1.0})
            httpx.post(f"{base_url}/_fake/clear", json={})
            incremental, seconds, _ = run(base_url, workdir, derive)
            requests = len(httpx.get(f"{base_url}/_fake/log").json()["requests"])
            # The new posts fill ceil(k / ids per page) pages (albums take several ids, so
            # at most that many); the walk ends on the page that reaches the synced range.
            expected = math.ceil(new_posts / PAGE_IDS) + 1
            print(f"incremental: {incremental.new} new posts, {requests} requests "
                  f"(pages those posts fill + the page meeting the synced range: <= {expected}; "
                  f"refresh window: posts of the last 7 days, none in this generated channel) in {seconds:.1f} s")
            print(f"crawl: {result.posts / crawled:.0f} posts/s end to end")
    finally:
        proc.terminate()
        proc.wait()
    follow_forwards_figures()


def follow_forwards_figures():
    """Following forwards on the demo set (an embassy forwarding a ministry and a culture
    channel; scripts/follow.py): requests per forward followed, posts gained per request."""
    from devtools.fake_telegram import FakeTelegram, demo_channels
    from telegram_datasette.crawl import follow_forwards

    fake = FakeTelegram(demo_channels())
    channels = [c.username for c in fake.channels.values() if c.listed and c.public_preview]
    with fake.serve() as base_url, tempfile.TemporaryDirectory() as tmp:
        db, adb = open_db(Path(tmp) / "telegram.db"), open_archive(Path(tmp) / "archive.db")
        config = {**load_config(None), "base_url": base_url, "requests_per_second": 0}
        crawl(channels, db, adb, config)
        started = time.perf_counter()
        _, followed = follow_forwards(channels, db, adb, config)
        seconds = time.perf_counter() - started
    done = followed.planned - followed.left
    print(f"follow forwards: {done} linked posts followed with {followed.requests} requests "
          f"({followed.requests / max(done, 1):.2f} requests per post followed), "
          f"{followed.posts_gained} posts gained ({followed.posts_gained / max(followed.requests, 1):.1f} per request), "
          f"{followed.archived} archived, {followed.not_found} not found, {followed.unavailable} unavailable, "
          f"{followed.private} private (no request) in {seconds:.1f} s")


if __name__ == "__main__":
    main()
