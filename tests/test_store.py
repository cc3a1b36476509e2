"""The store keeps history: versions, snapshots, deletions, restorations."""

import sqlite_utils

from telegram_datasette.model import Channel, Count, Link, Media, Page, Post, Reaction
from telegram_datasette.schema import open_db
from telegram_datasette.store import mark_deleted, save_page

T1, T2, T3 = "2026-01-01T00:00:00.000+00:00", "2026-01-02T00:00:00.000+00:00", "2026-01-03T00:00:00.000+00:00"


def make_post(id=1, text="Hello #oslo", views=100, **extra):
    return Post(
        channel="chan", id=id, url=f"https://t.me/chan/{id}", date="2025-12-31T10:00:00+00:00",
        text=text, html=text, views=views, views_text=str(views), views_precision=0,
        hashtags=["oslo"], links=[Link("https://example.org/a", "example.org", "a")],
        media=[Media(position=0, kind="photo", url="https://cdn.example/p.jpg")],
        reactions=[Reaction(position=0, emoji="👍", custom_emoji_id=None, count=views // 10, count_text=str(views // 10))],
        **extra,
    )


def make_page(*posts, subscribers=630):
    channel = Channel("chan", title="Chan", counters={"subscribers": Count(str(subscribers), subscribers, 0)})
    return Page(channel=channel, posts=list(posts))


def rows(db, table):
    return list(db[table].rows)


def test_first_save_creates_everything(tmp_path):
    db = open_db(tmp_path / "t.db")
    summary = save_page(db, make_page(make_post()), T1)
    assert summary["new"] == 1
    post = db["posts"].get("chan/1")
    assert post["text"] == "Hello #oslo" and post["kind"] == "photo"
    assert post["first_seen_at"] == post["last_seen_at"] == T1 and post["deleted_at"] is None
    assert [r["version"] for r in rows(db, "post_versions")] == [1]
    assert [(r["views"], r["fetched_at"]) for r in rows(db, "view_snapshots")] == [(100, T1)]
    assert [r["hashtag"] for r in rows(db, "hashtags")] == ["oslo"]
    assert [r["domain"] for r in rows(db, "links")] == ["example.org"]
    assert [r["count"] for r in rows(db, "reactions")] == [10]
    assert [r["subscribers"] for r in rows(db, "channel_stats")] == [630]
    assert db["channels"].get("chan")["subscribers"] == 630


def test_same_observation_twice_changes_nothing(tmp_path):
    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post()), T1)
    before = {t: rows(db, t) for t in db.table_names() if not t.startswith("posts_fts")}
    save_page(db, make_page(make_post()), T1)
    after = {t: rows(db, t) for t in db.table_names() if not t.startswith("posts_fts")}
    assert before == after


def test_edit_becomes_version_and_views_become_snapshots(tmp_path):
    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post()), T1)
    summary = save_page(db, make_page(make_post(text="Hello #oslo, edited", views=150, edited=True), subscribers=640), T2)
    assert summary["edited"] == 1 and summary["new"] == 0
    versions = rows(db, "post_versions")
    assert [(v["version"], v["text"]) for v in versions] == [(1, "Hello #oslo"), (2, "Hello #oslo, edited")]
    assert versions[0]["last_seen_at"] == T1 and versions[1]["first_seen_at"] == T2
    assert [s["views"] for s in rows(db, "view_snapshots")] == [100, 150]
    assert [s["count"] for s in rows(db, "reaction_snapshots")] == [10, 15]
    assert [s["subscribers"] for s in rows(db, "channel_stats")] == [630, 640]
    post = db["posts"].get("chan/1")
    assert post["views"] == 150 and post["edited"] == 1 and post["last_seen_at"] == T2
    assert [e["event"] for e in rows(db, "post_events")] == ["first_seen", "edited"]


def test_older_observation_does_not_overwrite_newer(tmp_path):
    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post(text="new text", views=200)), T2)
    save_page(db, make_page(make_post(text="old text", views=100)), T1)
    post = db["posts"].get("chan/1")
    assert post["text"] == "new text" and post["views"] == 200
    assert post["first_seen_at"] == T1 and post["last_seen_at"] == T2
    # The older text is kept as a version, the snapshot too.
    assert {v["text"] for v in rows(db, "post_versions")} == {"new text", "old text"}
    assert sorted(s["views"] for s in rows(db, "view_snapshots")) == [100, 200]


def test_deletion_and_return_are_recorded(tmp_path):
    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post()), T1)
    assert mark_deleted(db, "chan", [1], T2) == 1
    assert mark_deleted(db, "chan", [1], T2) == 0  # already marked
    assert db["posts"].get("chan/1")["deleted_at"] == T2
    summary = save_page(db, make_page(make_post()), T3)
    assert summary["restored"] == 1
    assert db["posts"].get("chan/1")["deleted_at"] is None
    assert [e["event"] for e in db["post_events"].rows_where(order_by="at")] == ["first_seen", "deleted", "restored"]


def test_children_follow_the_latest_observation(tmp_path):
    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post()), T1)
    changed = make_post(text="No tags now")
    changed.hashtags, changed.links = [], []
    save_page(db, make_page(changed), T2)
    assert rows(db, "hashtags") == [] and rows(db, "links") == []


def test_full_text_search_finds_posts(tmp_path):
    from telegram_datasette.derive import derive

    db = open_db(tmp_path / "t.db")
    save_page(db, make_page(make_post(text="Embassy concerts in Oslo")), T1)
    derive(db)  # posts_fts holds stems, made by the derive step
    assert [r["id"] for r in db["posts"].search("concert")] == [1]


def test_page_is_one_transaction(tmp_path):
    path = tmp_path / "t.db"
    db = open_db(path)
    bad = make_post(id=2)
    bad.media = [Media(position=0, kind="photo"), Media(position=0, kind="video")]  # duplicate key
    try:
        save_page(db, make_page(make_post(id=1), bad), T1)
    except Exception:
        pass
    else:
        raise AssertionError("duplicate media key should fail")
    assert sqlite_utils.Database(path)["posts"].count == 0
