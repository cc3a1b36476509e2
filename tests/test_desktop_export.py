"""Telegram Desktop exports (`import-export`): the real exports of ../shared read message by
message, a merge with a channel crawled from the fake Telegram over real HTTP, bad input,
re-imports and rebuilds, and the site showing imported posts like crawled ones."""

import json
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SHARED, make_datasette
from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.cli import cli
from telegram_datasette.config import load_config
from telegram_datasette.crawl import crawl
from telegram_datasette.derive import derive
from telegram_datasette.desktop_export import ExportError, import_export, message_post
from telegram_datasette.model import Channel, Link, Media, Page, Post
from telegram_datasette.parse import sanitise_html
from telegram_datasette.schema import open_archive, open_db
from telegram_datasette.store import save_page

EXPORTS = SHARED / "telegram-exports" / "real"
REAL = ["guzelskie_perezalivy__result_full_3719msgs.json", "upon_the_path_of_salaf__result_213msgs.json",
        "guzelskie_perezalivy__result_6msgs.json"]
NOW = datetime.now(timezone.utc)
KINDS = {"video_file": "video", "animation": "gif", "video_message": "round_video", "voice_message": "voice",
         "audio_file": "audio", "sticker": "sticker"}


def real_export(name: str) -> Path:
    path = EXPORTS / name
    if not path.is_file():
        pytest.skip(f"real Telegram Desktop exports not available at {EXPORTS}")
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def logical_dump(path):
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table' order by name")]
    return {t: sorted(map(repr, conn.execute(f"select * from [{t}]"))) for t in tables
            if not t.startswith(("posts_fts", "sqlite_", "_sqlite_migrations"))}


def expected_kind(message: dict) -> str:
    """The kind of a message, counted straight from the export's JSON."""
    if message["type"] == "service":
        return "service"
    if "photo" in message:
        return "photo"
    if "file" in message or "media_type" in message:
        return KINDS.get(message.get("media_type"), "document")
    return "text"


def utc(seconds) -> str:
    return datetime.fromtimestamp(int(seconds), timezone.utc).isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Each real export imported through the command line, in its own database."""
    dbs = {}
    for name in REAL:
        path = real_export(name)
        db = tmp_path_factory.mktemp(name.split("__")[0]) / "telegram.db"
        result = run("import-export", path, "--db", db)
        assert result.exit_code == 0, result.output
        dbs[name] = db
    return dbs


@pytest.mark.parametrize("name", REAL)
def test_every_message_of_a_real_export_is_a_post(imported, name):
    export = json.loads(real_export(name).read_text(encoding="utf-8"))
    conn = sqlite3.connect(imported[name])
    conn.row_factory = sqlite3.Row
    posts = {r["id"]: r for r in conn.execute("select * from posts")}
    reactions = Counter()
    for r in conn.execute("select post_id, emoji, count from reactions"):
        reactions[(r["post_id"], r["emoji"])] = r["count"]
    assert len(posts) == len(export["messages"])
    channel = str(export["id"])  # the dataset does not know the channel's username
    for m in export["messages"]:
        post = posts[m["id"]]
        assert post["channel"] == channel and post["channel_id"] == export["id"]
        assert post["date"] == utc(m["date_unixtime"]), m["id"]
        flat = "".join(e["text"] for e in m["text_entities"]).strip()
        assert post["text"] == (flat or None), m["id"]
        kind = expected_kind(m)
        assert post["kind"] == kind, m["id"]
        assert post["reply_to_id"] == m.get("reply_to_message_id")
        assert post["forwarded_from_name"] == m.get("forwarded_from")
        assert post["edited_at"] == (utc(m["edited_unixtime"]) if "edited_unixtime" in m else None)
        assert post["edited"] == int("edited_unixtime" in m)
        assert post["author"] == m.get("author")
        assert post["views"] is None  # exports have none
        for r in m.get("reactions", []):
            assert reactions[(m["id"], r["emoji"])] == r["count"]
        if kind == "service":
            assert post["service_action"] == m["action"] and post["service_text"]
        if post["html"] is not None:
            assert sanitise_html(post["html"]) == post["html"]  # what nh3 leaves, unchanged
    assert sum(c for c in reactions.values()) == sum(r["count"] for m in export["messages"] for r in m.get("reactions", []))
    by_kind = dict(conn.execute("select kind, count(*) from posts group by kind").fetchall())
    assert by_kind == dict(Counter(expected_kind(m) for m in export["messages"]))
    files = conn.execute("select count(*) from media where file_status = 'not included'").fetchone()[0]
    assert files == sum(1 for m in export["messages"] if ("photo" in m or "file" in m) and m["type"] == "message")
    fetch = conn.execute("select * from fetches").fetchone()
    assert fetch["source"] == "export" and fetch["posts"] == len(export["messages"]) and fetch["problems"] is None
    assert fetch["sha256"].startswith({REAL[0]: "bfe4494e26074d35", REAL[1]: "0e2d051954ba1880",
                                       REAL[2]: "555c62e44b8b3fd2"}[name])


def test_entities_become_the_parsers_html(imported):
    conn = sqlite3.connect(imported[REAL[1]])
    html = "\n".join(r[0] for r in conn.execute("select html from posts where html is not null"))
    for tag in ("<blockquote>", "<b>", "<i>", "<u>", "<code>", '<a href="https://t.me/uponthepathofsalaf"'):
        assert tag in html, tag
    assert conn.execute("select count(*) from mentions where username = 'uponthepathofsalaf'").fetchone()[0] == 1
    assert conn.execute("select count(*) from media where kind = 'sticker' and title is not null").fetchone()[0] == 37
    conn = sqlite3.connect(imported[REAL[0]])
    spoiler = conn.execute("select html from posts where html like '%tg-spoiler%' limit 1").fetchone()[0]
    assert '<span class="tg-spoiler">' in spoiler
    # custom emoji by their glyph; hashtags as the web links them, and in `hashtags`
    post = conn.execute("select text, html from posts where id = 3854").fetchone()
    assert "📹 ТВИЧ" in post[0] and 'href="https://www.twitch.tv/guz3lka"' in post[1]
    assert conn.execute("select count(*) from hashtags").fetchone()[0] > 1000
    assert conn.execute("select count(*) from links where domain = 'boosty.to'").fetchone()[0] > 100


def test_the_same_file_twice_changes_nothing_and_rebuild_replays_it(tmp_path):
    path = real_export(REAL[1])
    db, archive = tmp_path / "telegram.db", tmp_path / "archive.db"
    assert run("import-export", path, "--db", db).exit_code == 0
    dump = logical_dump(db)
    again = run("import-export", path, "--db", db)
    assert again.exit_code == 0 and "already imported" in again.output
    assert logical_dump(db) == dump
    copy = tmp_path / "elsewhere" / "result.json"  # the same bytes by another path: the same file
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert "already imported" in run("import-export", copy.parent, "--db", db).output
    assert logical_dump(db) == dump
    assert sqlite3.connect(archive).execute("select count(*) from fetches").fetchone()[0] == 1
    rebuilt = run("rebuild", "--db", db, "--workers", 1)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert logical_dump(db) == dump


# --- bad input -------------------------------------------------------------------------


def message(id, text, when=1767261600, **extra):
    return {"id": id, "type": "message", "date": "2026-01-01T10:00:00", "date_unixtime": str(when),
            "text": text, "text_entities": [{"type": "plain", "text": text}], **extra}


def one_chat(type="public_channel", id=7001, messages=None, name="Harbour notices"):
    return {"name": name, "type": type, "id": id,
            "messages": messages if messages is not None else [message(1, "The ferry leaves at nine.")]}


def write(tmp_path, name, value) -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return path


def nothing_written(tmp_path) -> bool:
    db = tmp_path / "telegram.db"
    if not db.exists():
        return True
    conn = sqlite3.connect(db)
    archive = sqlite3.connect(tmp_path / "archive.db")
    return (conn.execute("select count(*) from posts").fetchone()[0] == 0
            and archive.execute("select count(*) from fetches").fetchone()[0] == 0)


@pytest.mark.parametrize("content, says", [
    ("this is not JSON at all", "not JSON"),
    ("", "is empty"),
    ('{"name": "x", "type": "public_channel", "id": 5, "messages": [{"id": 1, "date_unixtime": "1767261600", ',
     "cut short"),
    ({"hello": "world"}, "not a Telegram Desktop export"),
    ([1, 2, 3], "not an object"),
    ({"name": "x", "type": "public_channel", "id": 5, "messages": [1]}, "not a JSON object"),
    ({"name": "x", "type": "public_channel", "id": 5, "messages": [{"text": "no id"}]}, "no id"),
])
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, content, says):
    path = write(tmp_path, "result.json", content)
    result = run("import-export", path, "--db", tmp_path / "telegram.db")
    assert result.exit_code == 1
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert nothing_written(tmp_path)


def test_a_real_export_cut_short_writes_nothing(tmp_path):
    data = real_export(REAL[0]).read_bytes()
    path = tmp_path / "result.json"
    path.write_bytes(data[: len(data) * 2 // 3])
    result = run("import-export", path, "--db", tmp_path / "telegram.db")
    assert result.exit_code == 1 and "cut short" in result.output
    assert nothing_written(tmp_path)


def test_private_and_personal_chats_are_skipped_with_a_note(tmp_path):
    personal = write(tmp_path, "personal.json", one_chat(type="personal_chat", name="A friend"))
    result = run("import-export", personal, "--db", tmp_path / "telegram.db")
    assert result.exit_code == 1
    assert "skipped personal_chat 'A friend'" in result.output and "no public channel" in result.output
    assert nothing_written(tmp_path)
    account = {"about": "an account export", "chats": {"about": "", "list": [
        one_chat(type="personal_chat", id=11, name="A friend"),
        one_chat(type="private_channel", id=12, name="Closed club"),
        one_chat(id=13, name="Harbour notices", messages=[message(1, "Ferry at nine."), message(2, "Ferry at ten.")]),
    ]}, "left_chats": {"about": "", "list": [
        one_chat(id=14, name="Old market news", messages=[message(5, "Market moved to the square.")]),
    ]}}
    path = write(tmp_path, "account.json", account)
    result = run("import-export", path, "--db", tmp_path / "telegram.db")
    assert result.exit_code == 0, result.output
    assert "skipped private_channel 'Closed club'" in result.output and "2 chats skipped" in result.output
    conn = sqlite3.connect(tmp_path / "telegram.db")
    assert conn.execute("select channel, id, text from posts order by channel, id").fetchall() == [
        ("13", 1, "Ferry at nine."), ("13", 2, "Ferry at ten."), ("14", 5, "Market moved to the square.")]


def test_media_polls_locations_and_included_files(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "plan.pdf").write_bytes(b"%PDF-1.4 a floor plan")
    export = one_chat(messages=[
        message(1, "Floor plan attached", file="files/plan.pdf", file_name="plan.pdf", file_size=21,
                mime_type="application/pdf"),
        message(2, "", file="files/gone.mp4", file_name="gone.mp4", media_type="video_file", duration_seconds=12),
        message(3, "", poll={"question": "Which day suits?", "closed": False, "total_voters": 4, "answers": [
            {"text": "Monday", "voters": 3, "chosen": False}, {"text": "Friday", "voters": 1, "chosen": False}]}),
        message(4, "", location_information={"latitude": 59.91, "longitude": 10.75}, place_name="Town hall",
                address="Main square 1"),
        message(5, "", contact_information={"first_name": "Front", "last_name": "Desk", "phone_number": "+100"}),
        message(6, "Thanks", reactions=[{"type": "paid", "count": 3},
                                        {"type": "custom_emoji", "count": 2, "document_id": "(File not included.)"}]),
    ])
    path = write(tmp_path, "result.json", export)
    assert run("import-export", path, "--db", tmp_path / "telegram.db", "--channel", "@HarbourNotices").exit_code == 0
    conn = sqlite3.connect(tmp_path / "telegram.db")
    media = conn.execute("select post_id, kind, title, file_name, file_size, file_path, file_status, latitude, phone "
                         "from media order by post_id").fetchall()
    assert media == [
        (1, "document", "plan.pdf", "plan.pdf", 21, "files/plan.pdf", "included", None, None),
        (2, "video", None, "gone.mp4", None, "files/gone.mp4", "missing", None, None),
        (3, "poll", None, None, None, None, None, None, None),
        (4, "location", "Town hall — Main square 1", None, None, None, None, 59.91, None),
        (5, "contact", "Front Desk", None, None, None, None, None, "+100"),
    ]
    assert conn.execute("select text, percent, voters from poll_options order by position").fetchall() == [
        ("Monday", 75, 3), ("Friday", 25, 1)]
    assert conn.execute("select reaction, count, paid from reactions order by position").fetchall() == [
        ("paid", 3, 1), ("position:1", 2, 0)]
    assert conn.execute("select url from posts where id = 1").fetchone()[0] == "https://t.me/HarbourNotices/1"


# --- merging with crawled data ----------------------------------------------------------


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def export_of(fake: FakeChannel, posts, edited: dict[int, int], reactions: dict[int, int]) -> dict:
    """An export of the fake channel as Telegram Desktop writes one (our own texts)."""
    messages = []
    for post in posts:
        m = message(post.id, post.text or "", when=epoch(post.date), **{"from": fake.channel.title})
        if post.id in edited:
            m["edited_unixtime"] = str(edited[post.id])
        if post.id in reactions:
            m["reactions"] = [{"type": "emoji", "count": reactions[post.id], "emoji": "👍"}]
        if post.content_kind == "photo":
            m.update(photo="(File not included. Change data exporting settings to download.)", photo_file_size=4321)
        messages.append(m)
    return one_chat(id=fake.channel.channel_id, name=fake.channel.title, messages=messages)


def crawl_fake(tmp_path, fake_server, name):
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    settings = {**load_config(None), "base_url": fake_server, "requests_per_second": 0}
    [result] = crawl([name], db, adb, settings)
    derive(db)
    assert result.error is None
    return db


@pytest.fixture
def merge_case():
    """A fake channel; an older export of it (written here) holding a post since deleted on
    the web, one since edited, a photo and exact reactions."""
    channel = FakeChannel.demo("harbour", 40, seed=11, start=NOW - timedelta(days=20), end=NOW - timedelta(days=2))
    single = [p for p in channel.posts if p.kind == "message" and not p.album_ids]
    texts = [p for p in single if p.content_kind == "text" and p.text]
    photo = next(p for p in single if p.content_kind == "photo")
    deleted, edited = texts[3], texts[5]
    edit_time = epoch(edited.date) + 3600
    export = export_of(channel, single, {edited.id: edit_time}, {edited.id: 1234, photo.id: 77})
    old_text = edited.text
    channel.delete_post(deleted.id)
    channel.edit_post(edited.id, "A later wording: the harbour office moves to the pier.")
    return channel, export, deleted.id, edited.id, old_text, edit_time, photo.id


def check_merge(db, channel, deleted, edited, old_text, edit_time, photo):
    name = channel.username
    posts = {r["id"]: r for r in db["posts"].rows_where("channel = ?", [name])}
    assert db.execute("select count(*) from channels").fetchone()[0] == 1  # one channel, matched by its id
    assert set(posts) >= {p.id for p in channel.posts}
    assert deleted in posts and posts[deleted]["text"]  # kept from the export
    versions = [r["text"] for r in db["post_versions"].rows_where("channel = ? and post_id = ?", [name, edited],
                                                                   order_by="first_seen_at")]
    assert versions == [old_text, "A later wording: the harbour office moves to the pier."]
    assert posts[edited]["text"] == versions[-1]  # the web's newer text is current
    assert posts[edited]["edited_at"] == utc(edit_time)  # the edit time only the export knew
    assert posts[edited]["views"] and posts[edited]["views_text"] == channel.post(edited).views_text  # only the web knew
    media = db.execute("select url, file_size, file_status from media where channel = ? and post_id = ?",
                       [name, photo]).fetchone()
    assert media[0] and media[1:] == (4321, "not included")  # each field from the source that knows it
    exact = db.execute("select count from reaction_snapshots where channel = ? and post_id = ? and count = 1234",
                       [name, edited]).fetchone()
    assert exact is not None  # the export's exact count, at the export's time
    assert db.execute("select count(*) from fetches where source = 'export'").fetchone()[0] == 1
    return posts


def test_an_older_export_then_a_crawl_merge_into_one_dataset(tmp_path, merge_case):
    channel, export, deleted, edited, old_text, edit_time, photo = merge_case
    path = write(tmp_path, "result.json", export)
    exported_at = (NOW - timedelta(days=1)).isoformat()
    result = run("import-export", path, "--db", tmp_path / "telegram.db", "--channel", "harbour",
                 "--exported-at", exported_at)
    assert result.exit_code == 0, result.output
    with FakeTelegram([channel]).serve() as url:
        db = crawl_fake(tmp_path, url, "harbour")
    posts = check_merge(db, channel, deleted, edited, old_text, edit_time, photo)
    assert posts[deleted]["deleted_at"] is not None  # the crawl saw it gone
    assert posts[edited]["first_seen_at"] < posts[edited]["last_seen_at"]


def test_a_crawl_then_an_older_export_merge_by_numeric_id(tmp_path, merge_case):
    channel, export, deleted, edited, old_text, edit_time, photo = merge_case
    with FakeTelegram([channel]).serve() as url:
        db = crawl_fake(tmp_path, url, "harbour")
    views = dict(db.execute("select id, views from posts").fetchall())
    path = write(tmp_path, "result.json", export)
    result = run("import-export", path, "--db", tmp_path / "telegram.db",
                 "--exported-at", (NOW - timedelta(days=1)).isoformat())  # no --channel: found by id
    assert result.exit_code == 0, result.output
    db = open_db(tmp_path / "telegram.db")
    posts = check_merge(db, channel, deleted, edited, old_text, edit_time, photo)
    assert {i: views[i] for i in views} == {i: posts[i]["views"] for i in views}  # nothing wiped


def test_a_newer_export_keeps_what_only_the_web_showed(tmp_path):
    db = open_db(tmp_path / "telegram.db")
    web = Post(channel="harbour", id=5, url="https://t.me/harbour/5", date="2026-01-01T10:00:00+00:00",
               text="Ferry times", html="Ferry times", views=900, views_text="900", views_precision=0,
               channel_id=7001, forwarded_from_name="Port authority", forwarded_from_channel="portauth",
               forwarded_from_id=44, forwarded_from_url="https://t.me/portauth/44",
               link_preview_url="https://example.org/ferry", link_preview_title="Ferry",
               links=[Link("https://example.org/ferry", "example.org", "ferry")],
               media=[Media(0, "photo", url="https://cdn.example/ferry.jpg", width=800, height=600)])
    save_page(db, Page(Channel("harbour", title="Harbour notices", channel_id=7001), [web]),
              "2026-01-02T00:00:00.000+00:00")
    m = message(5, "Ferry times", when=epoch(web.date), forwarded_from="Port authority",
                forwarded_from_id="channel8002", photo="(File not included.)", photo_file_size=5000)
    post = message_post(m, "harbour", 7001)
    save_page(db, Page(None, [post]), "2026-01-05T00:00:00.000+00:00")
    row = db["posts"].get("harbour/5")
    assert (row["views"], row["forwarded_from_channel"], row["forwarded_from_id"], row["link_preview_url"]) == (
        900, "portauth", 44, "https://example.org/ferry")
    assert row["last_seen_at"] == "2026-01-05T00:00:00.000+00:00"
    assert list(db.query("select url, width, file_size, file_status from media")) == [
        {"url": "https://cdn.example/ferry.jpg", "width": 800, "file_size": 5000, "file_status": "not included"}]
    assert db.execute("select count(*) from view_snapshots").fetchone()[0] == 1  # no views invented


def test_a_username_that_contradicts_the_dataset_is_refused(tmp_path):
    db = open_db(tmp_path / "telegram.db")
    save_page(db, Page(Channel("harbour", channel_id=7001), []), "2026-01-02T00:00:00.000+00:00")
    path = write(tmp_path, "result.json", one_chat(id=7001))
    with pytest.raises(ExportError, match="is harbour in the dataset"):
        import_export(path, db, open_archive(tmp_path / "archive.db"), channel="someoneelse")


# --- the site ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_site_shows_imported_posts_like_crawled_ones(imported):
    from datasette.utils import tilde_encode

    db_path = imported[REAL[1]]
    conn = sqlite3.connect(db_path)
    conn.execute("pragma wal_checkpoint(truncate)")  # the site opens the file immutable
    key, text = conn.execute("select post, text from posts where text like '%Sheikh%' limit 1").fetchone()
    conn.close()
    ds = make_datasette(db_path)
    page = await ds.client.get(f"/telegram/posts/{tilde_encode(key)}")
    assert page.status_code == 200
    assert "Sheikh Muqbil" in page.text
    listing = await ds.client.get("/telegram/posts.json?_shape=array&_size=5&kind=service")
    assert listing.status_code == 200 and {r["kind"] for r in listing.json()} == {"service"}
