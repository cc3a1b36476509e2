"""The media store: download speed, size, and serving thumbnails from a large store.

    python bench/media.py [--posts 1000] [--images 100000]

1. A photo-heavy generated channel (photos, albums, a few text posts) is crawled from the
   fake Telegram, then the media stage downloads its files (no rate limit): files per
   second, bytes per 1,000 posts, and media.db's size against the sum of its files.
2. media.db is filled to --images stored images; then a real `datasette serve` (as
   `serve` runs it, media.db attached) serves a page of the posts table as cards and the
   thumbnails of one page (20 images, resized by datasette-media): time and the server's
   peak memory.
"""

from __future__ import annotations

import hashlib
import io
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def download_figures(tmp: Path, n_posts: int) -> None:
    from devtools.fake_telegram import FakeChannel, FakeTelegram
    from telegram_datasette.config import load_config
    from telegram_datasette.crawl import crawl
    from telegram_datasette.fetch import Fetcher
    from telegram_datasette.media import store_media
    from telegram_datasette.schema import open_archive, open_db, open_media

    channel = FakeChannel.demo("photos", 1, seed=1, every_kind=False)
    channel.add_posts(n_posts - 1, kinds=["photo", "photo", "album", "photo", "text"])
    fake = FakeTelegram([channel])
    config = {**load_config(None), "requests_per_second": 0, "media_requests_per_second": 0}
    with fake.serve() as url:
        config["base_url"] = url
        db, adb = open_db(tmp / "telegram.db"), open_archive(tmp / "archive.db")
        crawl(["photos"], db, adb, config, fetcher=Fetcher(requests_per_second=0))
        mdb = open_media(tmp / "media.db")
        started = time.perf_counter()
        result = store_media(db, mdb, config)
        seconds = time.perf_counter() - started
    posts = db.execute("select count(*) from posts").fetchone()[0]
    stored = result.counts.get("stored", 0)
    content = mdb.execute("select sum(bytes) from files").fetchone()[0]
    mdb.close()
    size = (tmp / "media.db").stat().st_size
    print(f"media download: {stored:,} files in {seconds:.1f} s: {stored / seconds:.0f} files/s "
          f"({result.stored_bytes / seconds / 1e6:.1f} MB/s), from a photo-heavy channel of {posts:,} posts")
    print(f"media per 1,000 posts: {stored * 1000 / posts:,.0f} files, {result.stored_bytes * 1000 / posts / 1e6:.1f} MB")
    print(f"media.db size: {size / 1e6:.1f} MB for {content / 1e6:.1f} MB of files ({size / content:.3f}x)")


def fill_store(tmp: Path, images: int) -> list[str]:
    """media.db with `images` distinct small JPEGs; returns their sha256s."""
    from PIL import Image, ImageDraw

    from telegram_datasette.schema import open_media

    mdb = open_media(tmp / "media.db")
    have = mdb.execute("select count(*) from files").fetchone()[0]
    rng = random.Random(1)
    base = Image.new("RGB", (640, 480), (40, 90, 140))
    rows, shas = [], []
    started = time.perf_counter()
    for i in range(have, images):
        picture = base.copy()  # its number written on it: every image differs
        ImageDraw.Draw(picture).text((20 + i % 500, 20 + i % 400), f"{i:06d}", fill=(255, 255, rng.randrange(256)))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=70)
        body = out.getvalue()
        sha = hashlib.sha256(body).hexdigest()
        rows.append((sha, len(body), "image/jpeg", 640, 480, "2026-01-01T00:00:00Z", body))
        if len(rows) == 2000 or i == images - 1:
            with mdb.atomic():
                mdb.conn.executemany("insert or ignore into files (sha256, bytes, mime, width, height, stored_at, "
                                     "content) values (?, ?, ?, ?, ?, ?, ?)", rows)
            rows = []
    shas = [r[0] for r in mdb.execute("select sha256 from files order by random() limit 200")]
    count = mdb.execute("select count(*) from files").fetchone()[0]
    mdb.close()
    print(f"media.db filled to {count:,} images ({(tmp / 'media.db').stat().st_size / 1e9:.2f} GB) "
          f"in {time.perf_counter() - started:.0f} s")
    return shas


def serving_figures(tmp: Path, shas: list[str]) -> None:
    from conftest import free_port, stop, wait_for_http
    from telegram_datasette.publish import serve_command

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(serve_command(tmp / "telegram.db", port=port), stdout=output, stderr=output)
    try:
        wait_for_http(base + "/-/versions.json", process, timeout=120, log=log)
        with httpx.Client(timeout=60) as client:
            client.get(base + "/telegram/posts?_size=20")  # warm up
            for _ in range(3):
                client.get(f"{base}/-/media/thumbnail/{shas[-1]}")
            pages, thumbs = [], []
            for round_ in range(5):
                started = time.perf_counter()
                assert client.get(base + "/telegram/posts?_size=20").status_code == 200
                pages.append(time.perf_counter() - started)
                started = time.perf_counter()
                for sha in shas[round_ * 20:(round_ + 1) * 20]:
                    response = client.get(f"{base}/-/media/thumbnail/{sha}")
                    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
                thumbs.append(time.perf_counter() - started)
        status = Path(f"/proc/{process.pid}/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    finally:
        stop(process)
    pages.sort(), thumbs.sort()
    print(f"serving at {count_files(tmp):,} stored images: a page of 20 post cards "
          f"{pages[2] * 1000:.0f} ms, its 20 thumbnails (640 px resized to 480 by datasette-media) "
          f"{thumbs[2] * 1000:.0f} ms ({thumbs[2] * 50:.0f} ms each), medians of 5; "
          f"server peak memory {int(peak) / 1024:.0f} MB")


def count_files(tmp: Path) -> int:
    import sqlite3

    return sqlite3.connect(tmp / "media.db").execute("select count(*) from files").fetchone()[0]


@click.command()
@click.option("--posts", default=1000, show_default=True)
@click.option("--images", default=100_000, show_default=True)
def main(posts, images):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        download_figures(tmp, posts)
        shas = fill_store(tmp, images)
        serving_figures(tmp, shas)
    print(f"(bench peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
