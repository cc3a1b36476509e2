"""Derive: what is computed from the stored posts, after a crawl, an import or a rebuild.

- language of each post and the stemmed search index (scripts/search.py);
- places the posts mention, with coordinates (scripts/places.py).

One way of knowing what changed: `derive_queue` (scripts/schema.py), which SQL triggers
fill with every post inserted, changed or deleted and every post whose media changed.
Each batch of queued posts is derived and taken off the queue in one transaction, so an
interrupted run resumes where it stopped. Each step skips queued posts whose inputs are
unchanged (their digests), so re-observing a post costs little.

Finding places (named-entity recognition over Russian text) is most of the work: with
`workers` > 1 it runs in that many processes (the standard library's), each batch spread
over them; everything is still written by this process, in order.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

import sqlite_utils

from .schema import QUEUE_TABLE

BATCH = 512  # posts per transaction
# Worker processes pay for themselves (each loads the models, about 2 s) from this many posts.
PARALLEL_FROM = 2000


def one_thread_each() -> None:
    """Worker set-up: numerical libraries single-threaded, since the processes already
    use every core (their own thread pools would only contend: on 2 cores, 20,000 posts
    took 19.5 s with them and 8.8 s without)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def place_finders(workers: int):
    return ProcessPoolExecutor(workers, initializer=one_thread_each)


def queued(db: sqlite_utils.Database) -> int:
    return db.execute(f"select count(*) from [{QUEUE_TABLE}]").fetchone()[0]


def derive(db: sqlite_utils.Database, batch_size: int = BATCH, optimize_after: int | None = None,
           workers: int | None = None) -> int:
    """Language, search index and places for the queued posts. Returns how many.
    `workers`: processes that find places (None: one per core when the queue is long)."""
    # Imported here: their models are heavy, and most commands never need them.
    from . import places, search

    conn = db.conn
    with db.atomic():
        search.requeue_moved_rows(conn)
    done = 0
    if workers is None:
        workers = (os.cpu_count() or 1) if queued(db) >= PARALLEL_FROM else 1
    with place_finders(workers) if workers > 1 else nullcontext() as pool:
        map_ = pool.map if pool is not None else map
        while True:
            rowids = [r[0] for r in conn.execute(
                f"select rowid from [{QUEUE_TABLE}] order by rowid limit ?", [batch_size])]
            if not rowids:
                break
            with db.atomic():
                search.index_batch(conn, rowids)
                places.update_places(db, rowids, map_)
                conn.executemany(f"delete from [{QUEUE_TABLE}] where rowid = ?", [(r,) for r in rowids])
            done += len(rowids)
    threshold = search.OPTIMIZE_AFTER if optimize_after is None else optimize_after
    if done and done >= threshold:
        search.optimize_index(db)
    return done
