"""The derive step (language, search index, places): one queue, the same rows however
many processes find the places."""

import sqlite3

from devtools.demo import generate_channel
from telegram_datasette.derive import derive, queued
from telegram_datasette.model import Page
from telegram_datasette.schema import open_db
from telegram_datasette.store import save_page


def build(path, posts, channel):
    db = open_db(path)
    for i in range(0, len(posts), 20):
        save_page(db, Page(channel=channel, posts=posts[i:i + 20]), "2026-01-01T00:00:00.000+00:00")
    return db


def derived(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {
            "places": sorted(conn.execute("select * from places")),
            "scans": sorted(conn.execute("select * from place_scans")),
            "languages": sorted(conn.execute("select channel, id, language from posts")),
            "stems": sorted(conn.execute("select rowid, language, digest, stems from posts_fts_stems")),
        }
    finally:
        conn.close()


def test_places_found_in_worker_processes_are_the_same_rows(tmp_path):
    channel, posts = generate_channel("derivechan", 700, seed=11)
    one, two = build(tmp_path / "one.db", posts, channel), build(tmp_path / "two.db", posts, channel)
    assert queued(one) == queued(two) == 700
    assert derive(one, batch_size=128, workers=1) == derive(two, batch_size=128, workers=2) == 700
    assert queued(one) == queued(two) == 0
    first, second = derived(tmp_path / "one.db"), derived(tmp_path / "two.db")
    assert first["places"] and first == second


def test_nothing_queued_means_nothing_done_and_no_processes(tmp_path):
    channel, posts = generate_channel("quietchan", 30, seed=12)
    db = build(tmp_path / "t.db", posts, channel)
    assert derive(db) == 30
    assert derive(db, workers=2) == 0
