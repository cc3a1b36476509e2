"""archive.db: every fetched or imported page, compressed, the dataset's source of truth.

`telegram.db` can always be rebuilt from it with no network (`telegram-datasette rebuild`; its tables are in scripts/schema.py).
Bodies are stored once per distinct sha256, since refresh crawls fetch many
unchanged pages again.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path
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
        content = row.pop("content")
        # A body kept in parts (an export) is read from `read_parts` by its importer.
        yield row, zlib.decompress(content) if content is not None else b""


PART_BYTES = 8 * 1024 * 1024  # of a file archived in parts, before compression


def archive_file(
    adb: sqlite_utils.Database,
    path: Path,
    *,
    sha256: str,
    url: str,
    fetched_at: str,
    channel: str | None = None,
    source: str = "export",
) -> dict:
    """Store a file of any size in parts (bounded memory) and its fetch; returns the
    fetch row. A file already stored (same sha256) is not stored again."""
    size = path.stat().st_size
    with adb.atomic():
        stored = adb.execute("select 1 from bodies where sha256 = ?", [sha256]).fetchone()
        if not stored:
            adb.execute("insert into bodies (sha256, bytes, content) values (?, ?, null)", [sha256, size])
            with open(path, "rb") as handle:
                for part, chunk in enumerate(iter(lambda: handle.read(PART_BYTES), b"")):
                    adb.execute("insert or replace into body_parts (sha256, part, content) values (?, ?, ?)",
                                [sha256, part, zlib.compress(chunk, 6)])
        row = {
            "url": url, "final_url": url, "fetched_at": fetched_at, "status": 200, "sha256": sha256,
            "bytes": size, "duration_ms": None, "channel": channel, "source": source,
        }
        row["id"] = adb["fetches"].insert(row).last_pk
    return row


class PartsReader(io.RawIOBase):
    """A file archived in parts, read back as a stream (one part in memory at a time)."""

    def __init__(self, adb: sqlite_utils.Database, sha256: str):
        self.adb, self.sha256 = adb, sha256
        self.part, self.buffer, self.offset = 0, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        if self.offset == len(self.buffer):
            row = self.adb.execute("select content from body_parts where sha256 = ? and part = ?",
                                   [self.sha256, self.part]).fetchone()
            if row is None:
                return 0
            self.part, self.buffer, self.offset = self.part + 1, zlib.decompress(row[0]), 0
        size = min(len(target), len(self.buffer) - self.offset)
        target[:size] = memoryview(self.buffer)[self.offset:self.offset + size]
        self.offset += size
        return size


def read_parts(adb: sqlite_utils.Database, sha256: str) -> io.BufferedReader:
    return io.BufferedReader(PartsReader(adb, sha256), buffer_size=1024 * 1024)
