"""Derive: what is computed from the stored posts, after a crawl, an import or a rebuild.

- language of each post and the stemmed search index (scripts/search.py);
- places the posts mention, with coordinates (scripts/places.py).

One way of knowing what changed: `derive_queue` (scripts/schema.py), which SQL triggers
fill with every post inserted, changed or deleted and every post whose media changed.
Each batch of queued posts is derived and taken off the queue in one transaction, so an
interrupted run resumes where it stopped. Each step skips queued posts whose inputs are
unchanged (their digests), so re-observing a post costs little.
"""

from __future__ import annotations

import sqlite_utils

from .schema import QUEUE_TABLE

BATCH = 512  # posts per transaction


def queued(db: sqlite_utils.Database) -> int:
    return db.execute(f"select count(*) from [{QUEUE_TABLE}]").fetchone()[0]


def derive(db: sqlite_utils.Database, batch_size: int = BATCH, optimize_after: int | None = None) -> int:
    """Language, search index and places for the queued posts. Returns how many."""
    # Imported here: their models are heavy, and most commands never need them.
    from . import places, search

    conn = db.conn
    with db.atomic():
        search.requeue_moved_rows(conn)
    done = 0
    while True:
        rowids = [r[0] for r in conn.execute(
            f"select rowid from [{QUEUE_TABLE}] order by rowid limit ?", [batch_size])]
        if not rowids:
            break
        with db.atomic():
            search.index_batch(conn, rowids)
            places.update_places(db, rowids)
            conn.executemany(f"delete from [{QUEUE_TABLE}] where rowid = ?", [(r,) for r in rowids])
        done += len(rowids)
    threshold = search.OPTIMIZE_AFTER if optimize_after is None else optimize_after
    if done and done >= threshold:
        search.optimize_index(db)
    return done
