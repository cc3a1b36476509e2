"""Fault matrix: every fault of the fake Telegram, at three places, against the real crawl command.

For each fault x place, in a fresh folder:

1. the fake Telegram serves two channels (`faultchan`, 300 posts, and `calmchan`, 60) with the
   fault injected: on the newest page of faultchan (`first`), on one of its older pages
   (`older`), or on an older page while the crawl is killed with SIGKILL at a random moment
   (`kill -9`);
2. `python -m telegram_datasette crawl` runs (the command a user and the workflow run);
3. the fault is cleared and the same command runs again (the next scheduled run).

A cell survives when the first run finished on its own (no hang) and, if it stored fewer posts
than exist, said so with a non-zero exit (never silently short); the databases pass
`pragma integrity_check` after each run; and after the clean run every post is stored.

Run from the checkout:  .venv/bin/python bench/faults.py   (--quick: a few faults, first place only)
The last line printed is ``faults survived: N/N, posts lost: N``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # devtools: the fake Telegram

from devtools.fake_telegram import FakeChannel, FakeTelegram  # noqa: E402

CHANNELS = {"faultchan": 300, "calmchan": 60}
EXPECTED = sum(CHANNELS.values())
PLACES = {
    "first": r"^/s/faultchan$",
    "older": r"^/s/faultchan\?before=1\d\d$",  # one page in the middle of the backfill
}
# name -> how to inject it (times=None: the fault lasts the whole first run)
FAULTS = {
    "429 twice": lambda fake, path: fake.rate_limit(times=2, retry_after=1, path=path),
    "503 twice": lambda fake, path: fake.server_error(times=2, path=path),
    "503 always": lambda fake, path: fake.server_error(times=None, path=path),
    "404 always": lambda fake, path: fake.status(404, times=None, path=path),
    "slow 2 s": lambda fake, path: fake.slow(2.0, times=1, path=path),
    "reset mid-body": lambda fake, path: fake.truncate(times=None, keep=0.4, lie_length=True, path=path),
    "truncated, honest length": lambda fake, path: fake.truncate(times=None, keep=0.6, lie_length=False, path=path),
    "no more link": lambda fake, path: fake.drop_more_link(times=None, path=path),
    "layout changed": lambda fake, path: fake.change_layout(times=None, path=path),
    "not telegram": lambda fake, path: fake.not_telegram(times=None, path=path),
    "drip 1 byte/s": lambda fake, path: fake.drip(seconds=1.0, times=None, path=path),
    "endless body": lambda fake, path: fake.endless(times=None, path=path),
    "50,000 <b> deep": lambda fake, path: fake.deep_nesting(depth=50_000, tag="b", times=None, path=path),
    "200,000 <div> deep": lambda fake, path: fake.deep_nesting(depth=200_000, tag="div", times=None, path=path),
}
QUICK = ["503 always", "truncated, honest length", "drip 1 byte/s", "endless body", "200,000 <div> deep"]
RUN_TIMEOUT = 300  # a run that takes longer has hung


def write_config(folder: Path, base_url: str) -> Path:
    path = folder / "channels.yml"
    path.write_text(
        f"channels: [{', '.join(CHANNELS)}]\nbase_url: {base_url}\nrequests_per_second: 0\n"
        "timeout_seconds: 3\nmax_retries: 2\nrequest_deadline_seconds: 5\nmax_page_bytes: 5000000\n"
    )
    return path


def crawl(folder: Path, kill_after: float | None = None) -> tuple[int | str, float]:
    """Run the crawl command; returns its exit status ("killed", "hung") and seconds."""
    command = [sys.executable, "-m", "telegram_datasette", "crawl", "--config", "channels.yml"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=open(folder / "crawl.log", "ab"))
    try:
        if kill_after is not None:
            try:
                process.wait(kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return "killed", time.monotonic() - started
        status = process.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return "hung", time.monotonic() - started
    return status, time.monotonic() - started


def stored(folder: Path) -> tuple[int, bool]:
    """Posts in telegram.db, and whether both files pass integrity_check."""
    sound, posts = True, 0
    for name in ("telegram.db", "archive.db"):
        path = folder / name
        if not path.exists():
            continue
        conn = sqlite3.connect(path)
        try:
            sound &= conn.execute("pragma integrity_check").fetchone()[0] == "ok"
            if name == "telegram.db":
                posts = conn.execute("select count(*) from posts").fetchone()[0]
        except sqlite3.DatabaseError:
            sound = False
        finally:
            conn.close()
    return posts, sound


def run_cell(fault: str, place: str, seed: int) -> dict:
    fake = FakeTelegram([FakeChannel.demo(name, n, seed=seed + i) for i, (name, n) in enumerate(CHANNELS.items())])
    with tempfile.TemporaryDirectory() as tmp, fake.serve() as url:
        folder = Path(tmp)
        write_config(folder, url)
        FAULTS[fault](fake, PLACES["older" if place == "kill -9" else place])
        kill_after = random.Random(seed).uniform(0.5, 4.0) if place == "kill -9" else None
        first_status, seconds = crawl(folder, kill_after)
        first_posts, first_sound = stored(folder)
        fake.clear_faults()
        clean_status, _ = crawl(folder)
        clean_posts, clean_sound = stored(folder)
    honest = first_status != 0 or first_posts == EXPECTED  # never silently short
    survived = first_status != "hung" and honest and first_sound and clean_sound and clean_posts == EXPECTED
    return {"fault": fault, "place": place, "first": first_status, "seconds": seconds, "after_fault": first_posts,
            "clean": clean_status, "after_clean": clean_posts, "lost": EXPECTED - clean_posts,
            "survived": survived}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few faults, first place only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    faults = QUICK if args.quick else list(FAULTS)
    places = ["first"] if args.quick else ["first", "older", "kill -9"]
    print(f"Fault matrix: {len(faults)} faults x {len(places)} places; {EXPECTED} posts in "
          f"{len(CHANNELS)} channels; each cell = a faulty run, then a clean run of the crawl command")
    header = f"{'fault':26} {'place':8} {'expected':>8} {'run 1':>7} {'exit':>6} {'secs':>6} {'run 2':>6} {'exit':>5}  verdict"
    print(header)
    print("-" * len(header))
    cells = []
    for i, fault in enumerate(faults):
        for place in places:
            cell = run_cell(fault, place, args.seed + i)
            cells.append(cell)
            print(f"{fault:26} {place:8} {EXPECTED:>8} {cell['after_fault']:>7} {cell['first']!s:>6} "
                  f"{cell['seconds']:>6.1f} {cell['after_clean']:>6} {cell['clean']!s:>5}  "
                  f"{'survived' if cell['survived'] else 'LOST'}", flush=True)
    survived = sum(c["survived"] for c in cells)
    print(f"faults survived: {survived}/{len(cells)}, posts lost: {sum(max(0, c['lost']) for c in cells)}")
    return 0 if survived == len(cells) else 1


if __name__ == "__main__":
    sys.exit(main())
