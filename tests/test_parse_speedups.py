"""The parser's shortcuts give what the plain selectolax calls they replace give."""

from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from telegram_datasette.model import NotTelegramPage
from telegram_datasette.parse import (
    document_parts,
    first_time,
    first_with_class,
    parse_count,
    parse_page,
    read_input,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "telegram-pages" / "real"
PAGES = sorted(REAL.glob("*.html")) if REAL.is_dir() else [
    pytest.param(None, marks=pytest.mark.skip(reason=f"real t.me captures not available at {REAL}"))]


def ids(nodes):
    return [n.mem_id for n in nodes]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name if p else "no-captures")
def test_document_parts_match_separate_queries(path):
    tree = LexborHTMLParser(path.read_bytes())
    messages, info, history, more = document_parts(tree)
    assert ids(messages) == ids(tree.css(".tgme_widget_message"))
    expected_info = tree.css_first(".tgme_channel_info")
    assert (info and info.mem_id) == (expected_info and expected_info.mem_id)
    expected_history = tree.css_first(".tgme_channel_history, .tme_no_messages_found")
    assert (history and history.mem_id) == (expected_history and expected_history.mem_id)
    assert ids(more) == ids(tree.css("a.tme_messages_more"))


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name if p else "no-captures")
def test_subtree_walks_match_css_first(path):
    tree = LexborHTMLParser(path.read_bytes())
    for wrap in tree.css(".tgme_widget_message_photo_wrap"):
        expected = wrap.css_first(".tgme_widget_message_photo")
        found = first_with_class(wrap, "tgme_widget_message_photo")
        assert (found and found.mem_id) == (expected and expected.mem_id)
    for link in tree.css(".tgme_widget_message_date"):
        expected = link.css_first("time[datetime]")
        found = first_time(link)
        assert (found and found.mem_id) == (expected and expected.mem_id)


def test_first_with_class_includes_the_node_itself_and_matches_whole_tokens():
    tree = LexborHTMLParser('<div class="a x"><p class="ab"></p><p class="b a"></p></div>')
    outer = tree.css_first("div")
    assert first_with_class(outer, "a").mem_id == outer.mem_id
    assert first_with_class(outer, "b").attributes["class"] == "b a"
    assert first_with_class(outer, "ab").attributes["class"] == "ab"
    assert first_with_class(outer, "c") is None


def test_first_time_needs_a_datetime():
    tree = LexborHTMLParser('<a><time>x</time><time datetime="2024-01-01T00:00:00+00:00">y</time></a>')
    assert first_time(tree.css_first("a")).text() == "y"
    assert first_time(LexborHTMLParser("<a><time>x</time></a>").css_first("a")) is None


@pytest.mark.parametrize("text", ["0", "7", "630", "1234567", " 42 ", "٣", "²", "1,234", "1.5K"])
def test_parse_count_fast_path_agrees_with_the_general_rule(text):
    from telegram_datasette.parse import _count_value

    count = parse_count(text)
    raw = text.strip()
    assert (count.text, count.value, count.precision) == (raw, *_count_value(raw))


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name if p else "no-captures")
def test_str_and_bytes_input_give_the_same_page(path):
    data = path.read_bytes()
    url = f"https://t.me/s/{path.name.split('__')[0]}"
    assert parse_page(data, url) == parse_page(data.decode("utf-8"), url)


def test_read_input_hands_lexbor_utf8_bytes():
    text, data = read_input("<p>привет 👋</p>")
    assert data == text.encode("utf-8")
    text2, data2 = read_input(data)
    assert (text2, data2) == (text, data)
    # a lone surrogate is dropped, as selectolax drops it from str input
    assert read_input("<p>a\ud800b</p>")[1] == b"<p>ab</p>"


@pytest.mark.parametrize("data", ["\u3000\u00a0 ", b" \t\r\n", bytearray(b"  ")])
def test_read_input_refuses_blank_input_without_copying_it(data):
    with pytest.raises(NotTelegramPage, match="empty input"):
        read_input(data)
