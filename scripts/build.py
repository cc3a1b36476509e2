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
        outcome = store_fetch(db, fetch, body)
        for problem in outcome.problems:
            log.warning("%s", problem)
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["new"] += outcome.summary.get("new", 0)
        totals["unknown"] += outcome.summary.get("unknown", 0)
        totals["problems"] += len(outcome.problems)
    finish(db)
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
    adb = open_archive(archive_path)
    tmp = db_path.with_name(db_path.name + ".rebuild")
    for leftover in _db_files(tmp):
        leftover.unlink()
    db = open_db(tmp)
    totals = Counter()
    for fetch, body in iter_fetches(adb):
        outcome = store_fetch(db, fetch, body)
        totals["fetches"] += 1
        totals["posts"] += outcome.summary.get("posts", 0)
        totals["problems"] += len(outcome.problems)
    finish(db)
    db.close()
    for old in _db_files(db_path):
        old.unlink()
    os.replace(tmp, db_path)
    return totals


def _db_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def telegram_reachable(base_url: str, timeout: float = 5.0) -> str | None:
    """None when base_url answers at all; otherwise why it cannot be reached."""
    import httpx

    try:
        httpx.get(base_url, timeout=timeout, follow_redirects=False)
    except httpx.TransportError as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def build_dataset(config_path: Path, db_path: Path, archive_path: Path, metadata_out: Path, demo: bool | None = None) -> int:
    """The main job: crawl (t.me, or the fake Telegram's demo channel when t.me cannot
    be reached), then write the metadata Datasette serves. Returns an exit code."""
    from .crawl import crawl, load_config
    from .progress import CrawlProgress, summary_table

    config = load_config(config_path)
    channels = config["channels"]
    problem = None if demo else telegram_reachable(config["base_url"])
    if problem and holds_real_data(db_path):
        print(f"{config['base_url']} cannot be reached ({problem}); serving the existing {db_path.name} as it is")
        write_metadata(metadata_out, demo=False)
        return 0
    if demo or problem:
        if problem:
            print(f"{config['base_url']} cannot be reached ({problem}); building the demo dataset from the fake Telegram instead")
        return _build_demo(db_path, archive_path, metadata_out)
    db, adb = open_db(db_path), open_archive(archive_path)
    with CrawlProgress() as progress:
        results = crawl(channels, db, adb, config, report=progress.report)
    progress.console.print(summary_table(results))
    finish(db)
    write_metadata(metadata_out, demo=False)
    return 1 if any(r.failed for r in results) else 0


def holds_real_data(db_path: Path) -> bool:
    """True when db_path has posts that are not the demo's (never mix the two)."""
    if not db_path.exists():
        return False
    import sqlite_utils

    db = sqlite_utils.Database(db_path)
    demo = db["dataset_info"].exists() and any(
        row["value"] == "1" for row in db["dataset_info"].rows_where("key = 'demo'")
    )
    return not demo and db["posts"].exists() and db["posts"].count > 0


def _build_demo(db_path: Path, archive_path: Path, metadata_out: Path) -> int:
    from .crawl import crawl, load_config
    from .fake_telegram import demo_server
    from .progress import CrawlProgress, summary_table

    db, adb = open_db(db_path), open_archive(archive_path)
    with demo_server() as (base_url, channels):
        config = {**load_config(None), "base_url": base_url, "requests_per_second": 0}
        with CrawlProgress() as progress:
            results = crawl(channels, db, adb, config, report=progress.report)
        progress.console.print(summary_table(results))
    finish(db)
    db["dataset_info"].upsert({"key": "demo", "value": "1"}, pk="key")
    write_metadata(metadata_out, demo=True)
    return 0


def finish(db) -> None:
    """Derived data computed after a crawl or import: only for posts that changed.

    Each step is a module of its own (search: language and stemmed full-text index;
    places: place mentions and coordinates).
    """
    # Imported here: their models are heavy, and most commands never need them.
    from .places import extract_places
    from .search import index_posts

    index_posts(db)
    extract_places(db)


def write_metadata(out: Path, demo: bool) -> None:
    """metadata.yml as Datasette reads it, marked as demo data when it is."""
    import json

    import yaml

    root = Path(__file__).resolve().parent.parent
    metadata = yaml.safe_load((root / "metadata.yml").read_text())
    if demo:
        metadata["title"] = "DEMO DATA: " + metadata.get("title", "Telegram channels")
        metadata["description_html"] = (
            "<p><strong>This is generated demo data from the project's fake Telegram, "
            "not a real channel</strong> (t.me could not be reached when it was built).</p>"
            + metadata.get("description_html", "")
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metadata, indent=2, ensure_ascii=False))
