"""Rebuild benchmark: telegram.db re-created from a 200,000-post archive.db, one process
against all cores, side by side.

    .venv/bin/python bench/rebuild.py [--posts 200000] [--quick]

The archive is made once and cached (bench/.cache/rebuild-<posts>/archive.db, reused
when present): a backfill of a generated channel from the project's fake Telegram
(`python -m devtools fake-telegram`, in its own process, no rate limit), crawled with
`telegram_datasette.crawl.crawl` as bench/crawl.py does. `--quick`: 5,000 posts.

Each measurement runs in a fresh process of its own (this script, called back with
--phase), so that its peak memory (getrusage ru_maxrss of the process and of its
parsing workers) and its model loading are its own; one process, then
os.cpu_count() processes:

* archive read: `archive.iter_fetches` alone (the query and zlib), in the main process;
* parse: `build.read_fetches(iter_fetches(adb), workers)`, pages parsed (and checked)
  by `workers` processes, the archive read in the main one;
* parse + store: the loop of `build.rebuild` without its derive step, written out here
  (`open_db` on a new file, `read_fetches`, `pipeline.store_fetch(db, fetch, body,
  reading)`); "in store_fetch" is the time the main process spent storing;
* derive: `derive.derive(db, workers)` (language, search index, places) on the database
  each parse + store run wrote; with several workers, places are found in that many
  processes (language detection already uses every core in one process);
* rebuild: the real `build.rebuild(archive, db, workers)` end to end; "of which derive"
  is its derive step, timed in passing.

The last line printed is `rebuild N posts: N.N s with N processes vs N.N s with 1 (N.Nx)`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
CHANNEL = "bench_channel"
POSTS = 200_000
QUICK_POSTS = 5_000


# --------------------------------------------------------------------------- the archive


def start_fake(posts: int):
    """The fake Telegram in its own process (as bench/crawl.py starts it); its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools", "fake-telegram", "--port", "0", "--channel", f"{CHANNEL}:{posts}"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline()
    if "http://" not in first:
        proc.terminate()
        raise SystemExit(f"bench/rebuild.py: the fake Telegram did not start (said {first!r})")
    page = first[first.index("http://"):].split()[0]
    return proc, page[: page.index("/s/")]


def ensure_archive(posts: int) -> tuple[Path, dict]:
    """archive.db of a `posts`-post channel's backfill: cached, made once."""
    folder = CACHE / f"rebuild-{posts}"
    archive, info_path = folder / "archive.db", folder / "archive.json"
    if archive.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        print(f"archive: cached {archive} ({info['posts']:,} posts crawled in {info['crawl_s']:.0f} s when made)")
        return archive, info

    from telegram_datasette.config import load_config
    from telegram_datasette.crawl import crawl
    from telegram_datasette.schema import open_archive, open_db

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")  # never commit generated databases
    folder.mkdir(parents=True, exist_ok=True)
    building = folder / "archive.db.building"
    for leftover in folder.glob("archive.db.building*"):
        leftover.unlink()
    print(f"archive: crawling a generated {posts:,}-post channel from the fake Telegram into {archive} "
          "(once; cached)", flush=True)
    proc, base_url = start_fake(posts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db, adb = open_db(Path(tmp) / "telegram.db"), open_archive(building)
            config = {**load_config(None), "base_url": base_url, "requests_per_second": 0}
            started = time.perf_counter()
            [result] = crawl([CHANNEL], db, adb, config)
            crawl_s = time.perf_counter() - started
            db.close()
    finally:
        proc.terminate()
        proc.wait()
    if result.error or not result.backfill_complete:
        raise SystemExit(f"bench/rebuild.py: the crawl did not finish: {result.error or 'backfill incomplete'}")
    adb.execute("pragma wal_checkpoint(truncate)")
    adb.close()
    os.replace(building, archive)
    info = {"posts": result.posts, "pages": result.pages, "requests": result.requests, "crawl_s": crawl_s}
    info_path.write_text(json.dumps(info))
    print(f"archive: {result.posts:,} posts, {result.pages:,} pages crawled in {crawl_s:.0f} s "
          f"({result.posts / crawl_s:,.0f} posts/s)", flush=True)
    return archive, info


# --------------------------------------------------------------------------- one measurement (child process)


def usage() -> dict:
    """Peak memory (ru_maxrss: Linux gives KiB) and CPU time of this process and of its
    finished children (the parsing workers: their largest peak, their summed CPU)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self_mb": own.ru_maxrss / 1024, "children_mb": children.ru_maxrss / 1024,
            "self_cpu_s": own.ru_utime + own.ru_stime, "children_cpu_s": children.ru_utime + children.ru_stime}


def run_phase(phase: str, archive: Path, db_path: Path, workers: int) -> dict:
    """Time one phase in this process; what is printed as JSON to the caller."""
    from telegram_datasette import build
    from telegram_datasette.archive import iter_fetches
    from telegram_datasette.derive import derive
    from telegram_datasette.pipeline import store_fetch
    from telegram_datasette.schema import open_archive, open_db

    out: dict = {"phase": phase, "workers": workers}
    if phase == "read":
        adb = open_archive(archive)
        started = time.perf_counter()
        fetches = sum(1 for _ in iter_fetches(adb))
        out.update(seconds=time.perf_counter() - started, fetches=fetches)
    elif phase == "parse":
        adb = open_archive(archive)
        fetches = posts = 0
        started = time.perf_counter()
        for _fetch, _body, reading in build.read_fetches(iter_fetches(adb), workers):
            fetches += 1
            posts += len(reading.page.posts) if reading is not None and reading.page is not None else 0
        out.update(seconds=time.perf_counter() - started, fetches=fetches, posts=posts)
    elif phase == "store":
        # build.rebuild's loop without its derive step.
        adb = open_archive(archive)
        db = open_db(db_path)
        fetches = posts = problems = 0
        storing = 0.0
        started = time.perf_counter()
        for fetch, body, reading in build.read_fetches(iter_fetches(adb), workers):
            begin = time.perf_counter()
            outcome = store_fetch(db, fetch, body, reading)
            storing += time.perf_counter() - begin
            fetches += 1
            posts += outcome.summary.get("posts", 0)
            problems += len(outcome.problems)
        out.update(seconds=time.perf_counter() - started, store_s=storing, fetches=fetches, posts=posts,
                   problems=problems)
        db.close()
    elif phase == "derive":
        db = open_db(db_path)
        started = time.perf_counter()
        done = derive(db, workers=workers)
        out.update(seconds=time.perf_counter() - started, posts=done)
        db.close()
    elif phase == "rebuild":
        timed = {}

        def timed_derive(db, *args, **kwargs):
            begin = time.perf_counter()
            try:
                return derive(db, *args, **kwargs)
            finally:
                timed["derive_s"] = time.perf_counter() - begin

        started = time.perf_counter()
        with mock.patch.object(build, "derive", timed_derive):
            totals = build.rebuild(archive, db_path, workers=workers)
        out.update(seconds=time.perf_counter() - started, fetches=totals["fetches"], posts=totals["posts"],
                   problems=totals["problems"], **timed)
        db = open_db(db_path)
        out["stored_posts"] = db.execute("select count(*) from posts").fetchone()[0]
        db.close()
    else:
        raise SystemExit(f"unknown phase {phase}")
    out.update(usage())
    return out


def measure(phase: str, archive: Path, db_path: Path, workers: int) -> dict:
    """run_phase in a fresh process (its own peak memory), its JSON back."""
    print(f"  {phase}, {workers} process{'es' if workers > 1 else ''}...", end=" ", flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--archive", str(archive), "--db", str(db_path),
         "--workers", str(workers)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/rebuild.py: the {phase} run with {workers} workers failed "
                         f"(exit {done.returncode}); its output:\n{done.stdout[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    workers_cpu = f", workers {result['children_cpu_s']:.1f} s" if result["children_cpu_s"] >= 0.05 else ""
    print(f"{result['seconds']:.1f} s (CPU time: this process {result['self_cpu_s']:.1f} s{workers_cpu}; "
          f"load average {os.getloadavg()[0]:.1f})", flush=True)
    return result


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=POSTS, help=f"posts in the archive (default {POSTS:,})")
    parser.add_argument("--quick", action="store_true", help=f"a check of the benchmark: {QUICK_POSTS:,} posts")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # one measurement, called back by measure()
        print(json.dumps(run_phase(args.phase, args.archive, args.db, args.workers)))
        return

    posts = QUICK_POSTS if args.quick else args.posts
    cores = os.cpu_count() or 1
    print(f"Rebuild benchmark  (Python {platform.python_version()}, {platform.machine()}, {cores} cores"
          f"{', --quick' if args.quick else ''})")
    archive, _info = ensure_archive(posts)
    load_before = os.getloadavg()[0]
    archive_mb = sum(p.stat().st_size for p in archive.parent.glob("archive.db*")) / 2**20

    counts = (1, cores)
    results: dict[tuple[str, int], dict] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    try:
        print("measuring (each in a fresh process):", flush=True)
        results[("read", 1)] = measure("read", archive, work / "unused.db", 1)
        for phase in ("parse", "store"):
            for n in counts:
                results[(phase, n)] = measure(phase, archive, work / f"store-{n}.db", n)
        for n in counts:  # on each store's own database: deriving empties its queue
            results[("derive", n)] = measure("derive", archive, work / f"store-{n}.db", n)
        for n in counts:
            results[("rebuild", n)] = measure("rebuild", archive, work / f"rebuild-{n}.db", n)
        db_mb = sum(p.stat().st_size for p in work.glob(f"rebuild-{cores}.db*")) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)

    stored = results[("rebuild", cores)]["stored_posts"]
    fetches = results[("rebuild", cores)]["fetches"]
    if results[("rebuild", 1)]["stored_posts"] != stored:
        print(f"! the two rebuilds stored different numbers of posts: {results[('rebuild', 1)]['stored_posts']:,} "
              f"with 1 process, {stored:,} with {cores}")
    problems = {r.get("problems", 0) for r in results.values()} - {0}
    if problems:
        print(f"! problems recorded while storing: {sorted(problems)}")
    print()
    print(f"archive.db: {fetches:,} fetches, {archive_mb:.0f} MB; rebuilt telegram.db: {stored:,} posts, "
          f"{db_mb:.0f} MB")

    def seconds(phase, n, key="seconds"):
        r = results.get((phase, n))
        return None if r is None or r.get(key) is None else r[key]

    def memory(phase, n):
        r = results.get((phase, n))
        if r is None:
            return "-"
        return f"{r['self_mb']:.0f}" + (f" + {r['children_mb']:.0f}" if n > 1 and r["children_mb"] else "")

    rows = [  # label, 1-process key, N-process key, seconds field
        ("archive read (iter_fetches: query, zlib)", ("read", 1), None, "seconds"),
        ("parse (read_fetches)", ("parse", 1), ("parse", cores), "seconds"),
        ("parse + store (rebuild's loop, no derive)", ("store", 1), ("store", cores), "seconds"),
        ("  of which in store_fetch (main process)", ("store", 1), ("store", cores), "store_s"),
        ("derive (language, search index; places in N processes)", ("derive", 1), ("derive", cores), "seconds"),
        ("rebuild end to end (build.rebuild)", ("rebuild", 1), ("rebuild", cores), "seconds"),
        ("  of which derive", ("rebuild", 1), ("rebuild", cores), "derive_s"),
    ]
    header = ("phase", "1 process", f"{cores} processes", "ratio", "posts/s, 1", f"posts/s, {cores}",
              "peak MB, 1", f"peak MB, {cores}")
    table = [header]
    for label, one, many, key in rows:
        a = seconds(*one, key) if one else None
        b = seconds(*many, key) if many else None
        table.append((
            label,
            f"{a:.1f} s" if a is not None else "-",
            f"{b:.1f} s" if b is not None else "-",
            f"{a / b:.2f}x" if a and b else "-",
            f"{stored / a:,.0f}" if a else "-",
            f"{stored / b:,.0f}" if b else "-",
            memory(*one) if one and key == "seconds" else "",
            memory(*many) if many and key == "seconds" else "",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"load average (1 min) {load_before:.1f} before the measurements, {os.getloadavg()[0]:.1f} after, "
          f"on {cores} cores: anything else running slows every figure (the CPU times above say by how much).")
    print(f"(ratio: 1-process time / {cores}-process time. posts/s: the {stored:,} rebuilt posts over the phase's "
          "wall time. peak MB: ru_maxrss of the main process, + of the largest worker (getrusage "
          "RUSAGE_CHILDREN); each measurement runs in a fresh process. Parsing and finding places are spread "
          "over processes; storing, and writing what is derived, stay in the main one, in archive order.)")
    one, many = seconds("rebuild", 1), seconds("rebuild", cores)
    print(f"rebuild {stored:,} posts: {many:.1f} s with {cores} processes vs {one:.1f} s with 1 ({one / many:.1f}x)")


if __name__ == "__main__":
    main()
