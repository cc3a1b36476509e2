"""Build telegram.db: the main job (crawl and derive), saved pages (import-pages), or
archive.db alone (rebuild)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable

import sqlite_utils

from .archive import archive_page, iter_fetches
from .derive import derive
from .pipeline import read_page, store_fetch
from .media import link_media_files
from .schema import media_beside, open_archive, open_db, open_media
from .store import utc_now

log = logging.getLogger("scripts")

PAGE_SUFFIXES = {".html", ".htm"}


class DemoDatabase(Exception):
    """Real data must never go into a demo database (or the reverse)."""


def is_demo(db_path: Path) -> bool:
    """True when db_path was built from the fake Telegram's demo channels."""
    if not db_path.exists():
        return False
    db = sqlite_utils.Database(db_path)
    try:
        return db["dataset_info"].exists() and any(
            row["value"] == "1" for row in db["dataset_info"].rows_where("key = 'demo'"))
    finally:
        db.close()


def has_posts(db_path: Path) -> bool:
    if not db_path.exists():
        return False
    db = sqlite_utils.Database(db_path)
    try:
        return db["posts"].exists() and db.execute("select exists(select 1 from posts)").fetchone()[0] == 1
    finally:
        db.close()


def open_real(db_path: Path, archive_path: Path) -> tuple[sqlite_utils.Database, sqlite_utils.Database]:
    """telegram.db and archive.db for real data: refuses a demo database."""
    if is_demo(db_path):
        raise DemoDatabase(
            f"{db_path} holds the generated demo data; real channels are never crawled into it. "
            f"Use another --db (or delete {db_path} and its archive)")
    return open_db(db_path), open_archive(archive_path)


def mark_demo(db: sqlite_utils.Database) -> None:
    db["dataset_info"].upsert({"key": "demo", "value": "1"}, pk="key")


def find_pages(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the .html files inside folders, in a stable order."""
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in PAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)  # checked when read: only regular files are
    return found


def import_pages(paths: Iterable[Path], db_path: Path, archive_path: Path) -> Counter:
    """Archive and store saved t.me pages. The same file twice changes nothing."""
    db, adb = open_real(db_path, archive_path)
    totals = Counter()
    for path in find_pages(paths):
        totals["files"] += 1
        if not path.is_file():  # a FIFO or a device would block or never end
            log.warning("%s: not a regular file, skipped", path)
            totals["problems"] += 1
            continue
        try:
            body = path.read_bytes()
        except OSError as error:
            log.warning("%s: cannot read (%s)", path, error.strerror or error)
            totals["problems"] += 1
            continue
        url = path.resolve().as_uri()
        fetch = already_archived(adb, url, body)
        if fetch is None:
            fetch = archive_page(adb, body, url=url, fetched_at=utc_now(), status=200, source="import")
        else:
            totals["unchanged"] += 1
        outcome = store_fetch(db, fetch, body)
        for problem in outcome.problems:
            log.warning("%s", problem)
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["new"] += outcome.summary.get("new", 0)
        totals["unknown"] += outcome.summary.get("unknown", 0)
        totals["problems"] += len(outcome.problems)
        totals["read"] += not outcome.summary.get("broken")
    derive(db)
    return totals


def already_archived(adb, url: str, body: bytes) -> dict | None:
    digest = hashlib.sha256(body).hexdigest()
    rows = list(adb["fetches"].rows_where("url = ? and sha256 = ?", [url, digest], order_by="id", limit=1))
    return rows[0] if rows else None


def _read(item: tuple[dict, bytes]):
    fetch, body = item
    if fetch["status"] != 200 or fetch.get("source") == "export":  # exports: replay_export
        return None
    return read_page(body, fetch.get("final_url") or fetch["url"])


def read_fetches(fetches: Iterable[tuple[dict, bytes]], workers: int):
    """(fetch, body, reading) in archive order; pages are parsed by `workers` processes."""
    if workers <= 1:
        for fetch, body in fetches:
            yield fetch, body, _read((fetch, body))
        return
    with ProcessPoolExecutor(workers) as pool:
        batch: list[tuple[dict, bytes]] = []
        for item in fetches:
            batch.append(item)
            if len(batch) == 64 * workers:  # bounded memory: a batch of pages at a time
                yield from ((f, b, r) for (f, b), r in zip(batch, pool.map(_read, batch, chunksize=8)))
                batch = []
        yield from ((f, b, r) for (f, b), r in zip(batch, pool.map(_read, batch, chunksize=8)))


def rebuild(archive_path: Path, db_path: Path, workers: int | None = None) -> Counter:
    """Re-create telegram.db from archive.db alone, replaying fetches in order.

    Builds into a temporary file and swaps it in, so a failed rebuild leaves the
    previous telegram.db untouched. Parsing runs in `workers` processes (default: one
    per core); storing and deriving stay in order in this one. `crawl_state` is
    recomputed from the crawled pages, so the next crawl goes on where the last one
    stopped instead of walking every channel again. `media_files` comes from media.db
    (beside `db_path`), which records every download.
    """
    from .crawl import before_of
    from .desktop_export import replay_export
    from .pipeline import covered_ids

    demo = is_demo(db_path)
    adb = open_archive(archive_path)
    tmp = db_path.with_name(db_path.name + ".rebuild")
    for leftover in db_files(tmp):
        leftover.unlink()
    db = open_db(tmp)
    if demo:
        mark_demo(db)
    totals = Counter()
    spans = []  # (channel, low id, high id, oldest post shown) vouched for by a crawled page
    workers = workers or os.cpu_count() or 1
    for fetch, body, reading in read_fetches(iter_fetches(adb), workers):
        if fetch.get("source") == "export":  # a Telegram Desktop export, archived in parts
            totals["fetches"] += 1
            totals["posts"] += replay_export(db, adb, fetch)["messages"]
            continue
        outcome = store_fetch(db, fetch, body, reading)
        totals["fetches"] += 1
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["problems"] += len(outcome.problems)
        page = reading.page if reading is not None and not reading.problem else None
        if fetch.get("source") != "crawl" or page is None or not page.complete:
            continue  # only a crawled page read in full vouches for its range
        url = fetch.get("final_url") or fetch["url"]
        span = covered_ids(url, page)
        if span is not None:
            ids = [post.id for post in page.posts]
            high = span[1] if span[1] != float("inf") else max(ids)
            spans.append((page.posts[0].channel, span[0], high, min(ids)))
        elif not page.posts and not page.is_embed and fetch.get("channel") and (before_of(url) or 0) > 1:
            # An empty older page: nothing exists before it, the backfill reached the end.
            spans.append((fetch["channel"], 1, before_of(url) - 1, None))
    with db.atomic():
        for state in crawl_states(spans):
            db["crawl_state"].upsert({**state, "updated_at": utc_now()}, pk="channel")
    derive(db, workers=workers)
    if media_beside(db_path).exists():  # the downloads media.db recorded: media_files again
        mdb = open_media(media_beside(db_path))
        totals["media_files"] = link_media_files(db, mdb)
        mdb.close()
    db.close()
    for old in db_files(db_path):
        old.unlink()
    os.replace(tmp, db_path)
    return totals


def crawl_states(spans: list[tuple[str, int, int, int | None]]) -> list[dict]:
    """crawl_state rows from the id ranges that crawled pages vouch for.

    Per channel the ranges are merged where they touch. A crawl_state holds one synced
    range, so it takes the one that leaves the next crawl least to walk: the ids above
    it (the walk from the newest page comes down to it) and, unless it reaches the
    first post, the ids below it.
    """
    by_channel: dict[str, list] = {}
    names: dict[str, str] = {}
    for channel, low, high, oldest in spans:
        by_channel.setdefault(channel.lower(), []).append((low, high, oldest if oldest is not None else float("inf")))
        if oldest is not None:
            names[channel.lower()] = channel  # spelled as the posts spell it
    rows = []
    for key, items in by_channel.items():
        ranges: list[list] = []  # [low, high, oldest post shown], merged
        for low, high, oldest in sorted(items):
            if ranges and low <= ranges[-1][1] + 1:
                ranges[-1][1] = max(ranges[-1][1], high)
                ranges[-1][2] = min(ranges[-1][2], oldest)
            else:
                ranges.append([low, high, oldest])
        top = max(r[1] for r in ranges)
        low, high, oldest = min(ranges, key=lambda r: (top - r[1]) + (r[0] if r[0] > 1 else 0))
        rows.append({
            "channel": names.get(key, key),
            "high_id": high,
            "low_id": max(low, oldest) if oldest != float("inf") else low,
            "backfill_complete": int(low <= 1),
        })
    return rows


def db_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def telegram_reachable(base_url: str, timeout: float = 5.0) -> str | None:
    """None when base_url answers at all; otherwise why it cannot be reached."""
    import httpx

    try:
        httpx.get(base_url, timeout=timeout, follow_redirects=False)
    except httpx.TransportError as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def build_demo(db_path: Path, archive_path: Path, echo=print) -> int:
    """The demo dataset, crawled from the project's fake Telegram (a development tool of
    the checkout, devtools/) into its own files, marked as demo data."""
    from devtools.fake_telegram import demo_server

    from .config import load_config
    from .crawl import run_crawl

    if has_posts(db_path) and not is_demo(db_path):
        raise DemoDatabase(f"{db_path} holds real data; the demo is never built into it")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db, adb = open_db(db_path), open_archive(archive_path)
    mark_demo(db)
    with demo_server() as (base_url, channels):
        config = {**load_config(None), "base_url": base_url, "requests_per_second": 0,
                  "media_requests_per_second": 0}
        return run_crawl(channels, db, adb, config, echo=echo)
