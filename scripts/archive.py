"""archive.db: every fetched or imported page, compressed, the dataset's source of truth.

`telegram.db` can always be rebuilt from it with no network (`telegram-datasette rebuild`; its tables are in scripts/schema.py).
Bodies are stored once per distinct sha256, since refresh crawls fetch many
unchanged pages again.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Iterator

import sqlite_utils


def archive_page(
    adb: sqlite_utils.Database,
    body: bytes,
    *,
    url: str,
    fetched_at: str,
    status: int,
    duration_ms: int | None = None,
    final_url: str | None = None,
    channel: str | None = None,
    source: str = "crawl",
) -> dict:
    """Store a body and its fetch; returns the fetch row (with its archive id)."""
    digest = hashlib.sha256(body).hexdigest()
    row = {
        "url": url,
        "final_url": final_url or url,
        "fetched_at": fetched_at,
        "status": status,
        "sha256": digest,
        "bytes": len(body),
        "duration_ms": duration_ms,
        "channel": channel,
        "source": source,
    }
    with adb.atomic():
        adb.execute(
            "insert or ignore into bodies (sha256, bytes, content) values (?, ?, ?)",
            [digest, len(body), zlib.compress(body, 6)],
        )
        row["id"] = adb["fetches"].insert(row).last_pk
    return row


def iter_fetches(adb: sqlite_utils.Database) -> Iterator[tuple[dict, bytes]]:
    """Every archived fetch in the order it happened, with its body."""
    sql = (
        "select fetches.*, bodies.content from fetches "
        "join bodies on bodies.sha256 = fetches.sha256 order by fetches.fetched_at, fetches.id"
    )
    cursor = adb.execute(sql)
    columns = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(columns, values))
        yield row, zlib.decompress(row.pop("content"))
