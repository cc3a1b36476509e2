"""Scale benchmark: many channels, crawled on one runner against four (scripts/merge.py).

    .venv/bin/python bench/scale.py [--channels 200] [--posts 100] [--shards 4]

The issue's full size is --channels 1000 --posts 500 (500,000 posts; on this 2-core machine
it takes well over an hour, so the default is smaller). The fake Telegram runs in its own
process, with no rate limit; processes stand in for runners. Media downloads and following
forwards are off (they are per post, the same with and without shards). Prints:

- wall time of one crawl of every channel (one runner) against N shard crawls at once (on
  this machine's cores, so they share them) and one shard alone (what each of N runners
  of its own takes);
- the merge of the N shards: time and peak memory;
- the derive step (language, search index, places) over every post, in posts per second,
  with one process against one per core;
- the sizes of the release's SQLite file, its gzipped CSVs and its Parquet files;
- the requests an incremental run makes per channel, and so how many channels one run
  keeps fresh at one request a second per runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click
import httpx

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "telegram_datasette"]
# A command in a child process, reporting its own wall time and peak memory (RSS).
MEASURED = textwrap.dedent("""\
    import json, resource, subprocess, sys, time
    started = time.perf_counter()
    status = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    print(json.dumps({"status": status, "seconds": time.perf_counter() - started,
                      "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
""")
DERIVE = textwrap.dedent("""\
    import sys, time
    from telegram_datasette.derive import derive
    from telegram_datasette.schema import open_db
    db = open_db(sys.argv[1])
    with db.atomic():  # forget what was derived: every post is queued with nothing to reuse
        db.execute("insert into posts_fts(posts_fts) values ('delete-all')")
        db.execute("delete from posts_fts_stems"); db.execute("delete from place_scans")
        db.execute("insert or ignore into derive_queue (rowid) select rowid from posts")
    started = time.perf_counter()
    done = derive(db, workers=int(sys.argv[2]))
    print(done / (time.perf_counter() - started))
""")


def measured(args: list[str], cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURED, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def start_fake(channels: int, posts: int):
    specs = [part for i in range(channels) for part in ("--channel", f"scale{i:04d}:{posts}")]
    proc = subprocess.Popen([sys.executable, "-m", "devtools", "fake-telegram", "--port", "0", *specs],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    page = first[first.index("http://"):].split()[0]
    return proc, page[: page.index("/s/")], [f"scale{i:04d}" for i in range(channels)]


def size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths) / 2**20


@click.command()
@click.option("--channels", "n_channels", default=200, show_default=True)
@click.option("--posts", default=100, show_default=True, help="Posts per channel.")
@click.option("--shards", default=4, show_default=True)
def main(n_channels, posts, shards):
    proc, url, names = start_fake(n_channels, posts)
    cores = os.cpu_count() or 1
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "channels.yml").write_text(
                f"channels: [{', '.join(names)}]\nbase_url: {url}\nrequests_per_second: 0\n"
                "media_images: false\nfollow_forwards: \"off\"\nrefresh_days: 7\n")
            total = n_channels * posts
            one = measured([*COMMAND, "crawl", "--config", "channels.yml", "--db", "one/telegram.db"], work)
            print(f"1 runner: {n_channels:,} channels x {posts} posts ({total:,}) in {one['seconds']:.1f} s "
                  f"(crawl and derive; {total / one['seconds']:.0f} posts/s, peak {one['peak_mb']:.0f} MB)")

            started = time.perf_counter()
            jobs = [subprocess.Popen([sys.executable, "-c", MEASURED, *COMMAND, "crawl", "--config", "channels.yml",
                                      "--shard", f"{i}/{shards}", "--db", f"shards/shard-{i}/telegram.db"],
                                     cwd=work, stdout=subprocess.PIPE, text=True) for i in range(shards)]
            results = [json.loads(job.communicate()[0]) for job in jobs]
            wall = time.perf_counter() - started
            assert all(r["status"] in (0, 1) for r in results), results
            print(f"{shards} runners (processes at once on {cores} cores): {wall:.1f} s wall, the slowest shard "
                  f"{max(r['seconds'] for r in results):.1f} s; {one['seconds'] / wall:.2f}x one runner")
            alone = measured([*COMMAND, "crawl", "--config", "channels.yml", "--shard", f"0/{shards}",
                              "--db", "alone/telegram.db"], work)
            print(f"1 shard alone (a runner of its own, as on Actions): {alone['seconds']:.1f} s, "
                  f"{one['seconds'] / alone['seconds']:.2f}x one runner for everything")

            (work / "before").mkdir()
            merge = measured([*COMMAND, "merge", "--shards", str(shards), "--from", "shards", "--before", "before",
                              "--db", "merged/telegram.db"], work)
            assert merge["status"] == 0, merge
            print(f"merge of {shards} shards: {merge['seconds']:.1f} s, peak {merge['peak_mb']:.0f} MB "
                  f"({total / merge['seconds']:.0f} posts/s)")

            rates = {}
            for workers in sorted({1, cores}):
                copy = work / f"derive{workers}.db"
                backup(work / "merged" / "telegram.db", copy)
                out = subprocess.run([sys.executable, "-c", DERIVE, str(copy), str(workers)], capture_output=True,
                                     text=True, check=True)
                rates[workers] = float(out.stdout.split()[-1])
            print("derive: " + ", ".join(f"{rate:.0f} posts/s with {w} process{'es' if w > 1 else ''}"
                                          for w, rate in rates.items())
                  + (f" ({rates[cores] / rates[1]:.2f}x)" if cores > 1 else ""))

            export = measured([*COMMAND, "export", "--db", "merged/telegram.db", "--out", "export"], work)
            assert export["status"] == 0, export
            out = work / "export"
            print(f"release: telegram.db {size_mb([out / 'telegram.db']):.1f} MB, CSV (gzip) "
                  f"{size_mb(out.glob('*.csv.gz')):.1f} MB, Parquet {size_mb(out.glob('*.parquet')):.1f} MB "
                  f"(export {export['seconds']:.1f} s)")

            before = len(httpx.get(f"{url}/_fake/log").json()["requests"])
            again = measured([*COMMAND, "crawl", "--config", "channels.yml", "--db", "one/telegram.db"], work)
            requests = len(httpx.get(f"{url}/_fake/log").json()["requests"]) - before
            per_channel = requests / n_channels
            budget = 75 * 60  # the crawl step's time limit in update.yml, at one request a second
            print(f"incremental run: {requests:,} requests ({per_channel:.1f} per channel, refresh_days 7) in "
                  f"{again['seconds']:.1f} s; at 1 request/s a runner keeps {budget / per_channel:,.0f} channels "
                  f"fresh per 75-minute run, {shards} runners {shards * budget / per_channel:,.0f}")
    finally:
        proc.terminate()
        proc.wait()


def backup(source: Path, target: Path) -> None:
    import sqlite3

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    src.backup(dst)
    src.close(), dst.close()


if __name__ == "__main__":
    main()
