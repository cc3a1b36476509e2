"""Hostile and broken pages: deep nesting, huge, binary or half-broken input.

None of them may raise out of read_page, cost a crawl its other channels or a rebuild
its other pages, or lose the other posts of the page. The hostile pages are made here,
from the project's own renderer (devtools/render.py) and its own words.
"""

from __future__ import annotations

import random
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from devtools.render import render_channel_page
from telegram_datasette import parse as parse_module
from telegram_datasette import pipeline
from telegram_datasette.archive import archive_page
from telegram_datasette.build import rebuild
from telegram_datasette.model import Channel, NotTelegramPage, Post
from telegram_datasette.parse import (
    DEPTH_LIMIT,
    MAX_PAGE_BYTES,
    ParseTimeout,
    limit_depth,
    parse_budget,
    parse_page,
)
from telegram_datasette.pipeline import Reading, read_page, store_fetch
from telegram_datasette.schema import open_archive, open_db

REAL = Path(__file__).resolve().parents[2] / "shared" / "telegram-pages" / "real"
REAL_PAGES = sorted(REAL.glob("*.html")) if REAL.is_dir() else []
CHANNEL = "brygga_ferjer"
URL = f"https://t.me/s/{CHANNEL}"
MARK = "HOSTILEMARKUPGOESHERE"
DEEP_TEXT = "under the fjord"


def channel_page(text_of_post_2: str = "Ferry two is late again.") -> str:
    """A t.me/s page of three posts; post 2's text is replaced by the given markup."""
    channel = Channel(username=CHANNEL, title="Brygga ferjer")
    posts = [
        Post(channel=CHANNEL, id=i, url=f"https://t.me/{CHANNEL}/{i}", date=f"2026-03-0{i}T08:15:00+00:00",
             text=MARK if i == 2 else f"Ferry timetable number {i} is out.")
        for i in (1, 2, 3)
    ]
    return render_channel_page(channel, posts).replace(MARK, text_of_post_2)


def nested(tag: str, depth: int, text: str = DEEP_TEXT) -> str:
    return f"<{tag}>" * depth + text + f"</{tag}>" * depth


def tree_depth(data: bytes | str) -> int:
    """Elements on the longest path from <html> (1) down, as lexbor builds it."""
    deepest, stack = 0, [(LexborHTMLParser(data).root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        child = node.child
        while child is not None:
            if not child.tag.startswith("-"):
                stack.append((child, depth + 1))
            child = child.next
    return deepest


@pytest.fixture(scope="module")
def plain_page():
    return parse_page(channel_page().encode(), URL)


# ---------------------------------------------------------------- deep nesting


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "tag, depth",
    [
        ("b", 50_000),  # lexbor is quick; a recursive walk ran out of stack at ~500
        ("div", 200_000),  # lexbor alone took minutes (its time grows with depth squared)
        ("i", 400),  # a small page: noticed by the text walk, then read again within the limit
        ("span", 3_000),
    ],
)
def test_a_deeply_nested_post_is_kept_marked_and_the_others_are_untouched(tag, depth, plain_page):
    page = parse_page(channel_page(nested(tag, depth)).encode(), URL)

    assert [p.id for p in page.posts] == [1, 2, 3]
    assert page.posts[0] == plain_page.posts[0] and page.posts[2] == plain_page.posts[2]
    deep = page.posts[1]
    assert deep.kind == "unknown" and deep.raw_html
    assert deep.text == DEEP_TEXT
    assert deep.date == plain_page.posts[1].date
    assert len(page.problems) == 1
    assert re.fullmatch(r"post 2: markup nested deeper than 256 levels \(byte \d+\); the tags past that depth "
                        r"were dropped, their text kept; kept as kind=unknown", page.problems[0])
    # What is kept of the markup stays within the limit.
    assert deep.html.count(f"<{tag}>") < DEPTH_LIMIT
    assert tree_depth(deep.raw_html) < DEPTH_LIMIT


@pytest.mark.timeout(120)
def test_read_page_takes_the_deep_pages_as_any_other(plain_page):
    for tag, depth in (("b", 50_000), ("div", 200_000)):
        reading = read_page(channel_page(nested(tag, depth)).encode(), URL)
        assert reading.problem is None
        assert [p.kind for p in reading.page.posts] == ["message", "unknown", "message"]


def test_formatting_kept_within_the_limit_is_kept():
    """Only the tags past the limit go: the first levels of <b> stay as they were."""
    post = parse_page(channel_page(nested("b", 300)).encode(), URL).posts[1]
    kept = post.html.count("<b>")
    assert DEPTH_LIMIT - 20 < kept < DEPTH_LIMIT
    assert post.html == "<b>" * kept + DEEP_TEXT + "</b>" * kept


def test_nesting_within_the_limit_is_read_without_recursion(plain_page):
    """200 levels of <i> in a post is allowed, and the walk needs no Python stack for it."""
    html = channel_page(nested("i", 200)).encode()
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)  # a recursive walk needs two frames a level
    try:
        page = parse_page(html, URL)
    finally:
        sys.setrecursionlimit(old)
    post = page.posts[1]
    assert post.kind == "message" and post.html == "<i>" * 200 + DEEP_TEXT + "</i>" * 200
    assert page.problems == plain_page.problems


@pytest.mark.skipif(not REAL_PAGES, reason="real captures not available")
@pytest.mark.parametrize("path", REAL_PAGES, ids=lambda p: p.name)
def test_real_pages_go_through_the_depth_limit_unchanged(path, monkeypatch):
    data = path.read_bytes()
    out, runs, closed = limit_depth(data)
    assert out is data and runs == [] and closed == []
    normal = parse_page(data, f"https://t.me/s/{path.name.split('__')[0]}")
    monkeypatch.setattr(parse_module, "TAG_GATE", 0)  # the path of large documents
    assert parse_page(data, f"https://t.me/s/{path.name.split('__')[0]}") == normal


# Nesting as markup writes it, including what hides or repeats tags: comments, quoted
# attributes, self-closing syntax (which HTML ignores but on voids), implied elements.
# Markup crafted so that HTML's error recovery nests deeper than its tags say (misnested
# formatting elements, tables, foreign content) is out of scope: counting it would take a
# second HTML tree builder, and t.me never writes it (see parse.limit_depth).
TRICKS = [
    "<div>", "<b>", "<x-custom>", "<div/>", "<b/>", "<i title='</i>'>", "<div><!-- </div> -->",
    "<b><div></b>", "<a href=x><div>", "<ul><li>", "<dl><dd><div>", "<h1><div>", "<noscript><div>",
    "<p><span>", "<div><br/><img src=x>", "<tg-emoji><b>", "<div><applet><div></div>",
]


@pytest.mark.parametrize("trick", TRICKS)
def test_lexbor_never_builds_past_the_limit(trick):
    data = ("<!DOCTYPE html><html><body>" + trick * 1500 + "end").encode()
    out, _, _ = limit_depth(data, 48)
    assert tree_depth(out) <= 48


# ---------------------------------------------------------------- input that is not a page


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x01\x02\x03" * 1000,
        random.Random(7).randbytes(200_000),
        random.Random(8).randbytes(50_000) + b"tgme_widget_message" + random.Random(9).randbytes(50_000),
        b"<" * 300_000,
        b"<div>" * 300_000,
        b"tgme_ " + b"<b>" * 500_000,
        b'<div class="tgme_widget_message" data-post="x/1">' + b"<table><td>" * 100_000,
        b"<html><body>" + "<p>сломанная страница</p>".encode()[:-3],
        channel_page(nested("div", 100_000)).encode()[:300_000],  # cut inside the deep markup
    ],
    ids=["empty", "binary", "random", "random-with-marker", "angles", "divs", "bold", "tables", "cut", "cut-deep"],
)
def test_read_page_never_raises(body):
    reading = read_page(body, URL)
    assert isinstance(reading, Reading)
    assert reading.page is not None or reading.problem


def test_a_page_over_the_size_limit_is_refused_with_a_clear_problem():
    body = channel_page().encode() + b"<!-- " + b"x" * MAX_PAGE_BYTES + b" -->"
    reading = read_page(body, URL)
    assert reading.page is None
    assert reading.problem.startswith("parser failed on this page: PageTooLarge: ")
    assert f"{MAX_PAGE_BYTES:,}" in reading.problem


def test_any_parser_failure_is_a_problem_not_an_exception(monkeypatch):
    def broken(body, url=None):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pipeline, "parse_page", broken)
    reading = read_page(channel_page().encode(), URL)
    assert reading == Reading(None, "parser failed on this page: RecursionError: maximum recursion depth exceeded")


def test_nesting_the_limit_cannot_undo_is_a_problem(monkeypatch):
    monkeypatch.setattr(parse_module, "limit_depth", lambda data, limit=DEPTH_LIMIT: (data, [], []))
    reading = read_page(channel_page(nested("i", 400)).encode(), URL)
    assert reading.page is None
    assert reading.problem.startswith("parser failed on this page: TooDeep: ")


# ---------------------------------------------------------------- time budget


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_parse_budget_stops_a_slow_parse_and_gives_back_the_outer_timer():
    fired = []
    outer = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    outer_timer = signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with pytest.raises(ParseTimeout, match="longer than 0.2 s"):
            with parse_budget(0.2):
                busy(5)
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < delay <= 30  # the outer timer runs on
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, *outer_timer)  # pytest-timeout's, or none
        signal.signal(signal.SIGALRM, outer)


def test_parse_budget_leaves_threads_alone():
    errors = []

    def work():
        try:
            with parse_budget(0.05):
                busy(0.2)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []


def test_a_parse_over_budget_is_quarantined(monkeypatch):
    def slow(body, url=None):
        busy(10)

    monkeypatch.setattr(pipeline, "parse_page", slow)
    monkeypatch.setattr(pipeline, "PARSE_BUDGET_SECONDS", 0.2)
    started = time.monotonic()
    reading = read_page(channel_page().encode(), URL)
    assert time.monotonic() - started < 5
    assert reading == Reading(None, "parser failed on this page: ParseTimeout: parsing took longer than 0.2 s")


# ---------------------------------------------------------------- bytes that are not UTF-8


def test_a_bad_byte_keeps_the_posts(plain_page):
    body = channel_page("Ferry two is late again.").encode()
    at = body.index(b"is late again")
    page = parse_page(body[:at] + b"\xff" + body[at:], URL)
    assert [p.id for p in page.posts] == [1, 2, 3]
    assert page.posts[1].text == "Ferry two \ufffdis late again."
    assert page.posts[0] == plain_page.posts[0]
    assert page.problems == [f"1 byte sequence not valid UTF-8 at byte {at} (in post 2) read as U+FFFD; "
                             "the posts are kept"]


@pytest.mark.skipif(not (REAL / "durov__s-page.html").exists(), reason="real captures not available")
def test_bad_bytes_in_a_copy_of_a_real_capture_keep_every_post():
    data = (REAL / "durov__s-page.html").read_bytes()
    url = "https://t.me/s/durov"
    original = parse_page(data, url)
    changed = {}
    with_text = [p for p in original.posts if p.text and re.search(r"[A-Za-z]{6,}", p.text)]
    for post in (with_text[1], with_text[-2]):
        word = re.search(r"[A-Za-z]{6,}", post.text).group(0)
        block = data.index(f'data-post="durov/{post.id}"'.encode())
        at = data.index(word.encode(), data.index(b"js-message_text", block))
        data = data[:at + 1] + b"\xc3\x28" + data[at + 1:]  # a lead byte without its follower
        changed[post.id] = post.text.replace(word, word[0] + "\ufffd(" + word[1:], 1)
    reading = read_page(data, url)
    assert reading.problem is None
    page = reading.page
    assert [p.id for p in page.posts] == [p.id for p in original.posts]
    for before, after in zip(original.posts, page.posts):
        if before.id in changed:
            assert after.text == changed[before.id]
        else:
            assert after == before
    assert len(page.problems) == len(original.problems) + 1
    problem = page.problems[0]
    assert problem.startswith("2 byte sequences not valid UTF-8 at bytes ")
    assert all(str(i) in problem for i in changed)


def test_bytes_that_are_not_utf8_and_not_telegram_are_still_binary():
    with pytest.raises(NotTelegramPage, match="binary input: not UTF-8 text"):
        parse_page(b"\xff\xfe\xfa garbage \xc3\x28 more")


# ---------------------------------------------------------------- storing and rebuilding


def fetch_of(adb, body: bytes, fetched_at: str, url: str = URL) -> dict:
    return archive_page(adb, body, url=url, fetched_at=fetched_at, status=200, channel=CHANNEL)


def test_store_fetch_records_a_failed_parse_and_stores_nothing_of_the_page(tmp_path, monkeypatch):
    db, adb = open_db(tmp_path / "telegram.db"), open_archive(tmp_path / "archive.db")
    body = channel_page().encode()
    fetch = fetch_of(adb, body, "2026-03-05T09:00:00+00:00")

    def broken(body, url=None):
        raise RecursionError("maximum recursion depth exceeded while calling a Python object")

    monkeypatch.setattr(pipeline, "parse_page", broken)
    outcome = store_fetch(db, fetch, body)
    assert outcome.page is None and outcome.summary == {"posts": 0, "broken": 1}
    message = f"{URL}: parser failed on this page: RecursionError: maximum recursion depth exceeded while calling a Python object"
    assert outcome.problems == [message]
    assert [row["message"] for row in db["problems"].rows] == [message]
    assert db["fetches"].get(fetch["id"])["problems"] == message
    assert db["posts"].count == 0


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers", [1, 2])
def test_rebuild_goes_past_hostile_and_poisoned_pages(tmp_path, monkeypatch, workers):
    adb = open_archive(tmp_path / "archive.db")
    pages = [
        ("2026-03-05T09:00:00+00:00", f"{URL}?before=100", channel_page()),
        ("2026-03-05T09:01:00+00:00", f"{URL}?before=101", channel_page(nested("b", 50_000))),
        ("2026-03-05T09:02:00+00:00", f"{URL}?before=102", channel_page(nested("div", 200_000))),
        ("2026-03-05T09:03:00+00:00", f"{URL}?before=103", "x" * (MAX_PAGE_BYTES + 1)),
        ("2026-03-05T09:04:00+00:00", f"{URL}?before=104", "POISON " + channel_page()),
        ("2026-03-05T09:05:00+00:00", f"{URL}?before=105", channel_page("The last ferry leaves at nine.")),
        ("2026-03-05T09:06:00+00:00", f"{URL}?before=106", channel_page(nested("i", 400))),
    ]
    for fetched_at, url, html in pages:
        fetch_of(adb, html.encode(), fetched_at, url)
    adb.close()
    real_parse = pipeline.parse_page

    def poisoned(body, url=None):  # a parser bug that only this page sets off
        if body.startswith(b"POISON"):
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(body, url=url)

    monkeypatch.setattr(pipeline, "parse_page", poisoned)  # worker processes are forked: they see it too
    db_path = tmp_path / "telegram.db"
    totals = rebuild(tmp_path / "archive.db", db_path, workers=workers)

    assert totals["fetches"] == len(pages)
    db = open_db(db_path)
    stored = {row["url"].rsplit("=", 1)[1]: row["posts"] for row in db["fetches"].rows}
    assert stored == {"100": 3, "101": 3, "102": 3, "103": 0, "104": 0, "105": 3, "106": 3}
    assert {(row["id"], row["kind"]) for row in db.query("select id, kind from posts")} == {
        (1, "text"), (2, "unknown"), (3, "text")}  # the last page holds the deep post again
    messages = [row["message"] for row in db["problems"].rows]
    assert any("PageTooLarge" in m and "before=103" in m for m in messages)
    assert any("parser failed on this page: RecursionError" in m and "before=104" in m for m in messages)
    assert sum("post 2: markup nested deeper than 256 levels" in m for m in messages) == 3
