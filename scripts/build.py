"""Build telegram.db from saved pages (import-pages) or from archive.db alone (rebuild)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from .archive import archive_page, iter_fetches, open_archive
from .pipeline import store_fetch
from .store import open_db, utc_now

log = logging.getLogger("scripts")

PAGE_SUFFIXES = {".html", ".htm"}


def find_pages(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the .html files inside folders, in a stable order."""
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in PAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found


def import_pages(paths: Iterable[Path], db_path: Path, archive_path: Path) -> Counter:
    """Archive and store saved t.me pages. The same file twice changes nothing."""
    db, adb = open_db(db_path), open_archive(archive_path)
    totals = Counter()
    for path in find_pages(paths):
        totals["files"] += 1
        try:
            body = path.read_bytes()
        except OSError as error:
            log.warning("%s: cannot read (%s)", path, error.strerror or error)
            totals["problems"] += 1
            continue
        url = path.resolve().as_uri()
        fetch = _already_archived(adb, url, body)
        if fetch is None:
            fetch = archive_page(adb, body, url=url, fetched_at=utc_now(), status=200, source="import")
        else:
            totals["unchanged"] += 1
        fetch["source_path"] = str(path)
        outcome = store_fetch(db, fetch, body)
        for problem in outcome.problems:
            log.warning("%s", problem)
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["new"] += outcome.summary.get("new", 0)
        totals["unknown"] += outcome.summary.get("unknown", 0)
        totals["problems"] += len(outcome.problems)
    return totals


def _already_archived(adb, url: str, body: bytes) -> dict | None:
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    rows = list(adb["fetches"].rows_where("url = ? and sha256 = ?", [url, digest], order_by="id", limit=1))
    return rows[0] if rows else None


def rebuild(archive_path: Path, db_path: Path) -> Counter:
    """Re-create telegram.db from archive.db alone, replaying fetches in order.

    Builds into a temporary file and swaps it in, so a failed rebuild leaves the
    previous telegram.db untouched.
    """
    from .crawl import replay_run_end  # deletion inference is the crawler's rule

    adb = open_archive(archive_path)
    tmp = db_path.with_name(db_path.name + ".rebuild")
    for leftover in _db_files(tmp):
        leftover.unlink()
    db = open_db(tmp)
    totals = Counter()
    run_pages: dict = {}
    current_run = None
    for fetch, body in iter_fetches(adb):
        run = fetch.get("run_id")
        if current_run is not None and run != current_run:
            replay_run_end(db, adb, current_run, run_pages.pop(current_run, []))
        current_run = run
        outcome = store_fetch(db, fetch, body)
        if run is not None and outcome.page is not None:
            run_pages.setdefault(run, []).append((fetch, outcome.page))
        totals["fetches"] += 1
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["problems"] += len(outcome.problems)
    if current_run is not None:
        replay_run_end(db, adb, current_run, run_pages.pop(current_run, []))
    db.close()
    for old in _db_files(db_path):
        old.unlink()
    os.replace(tmp, db_path)
    return totals


def _db_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
