"""Unit tests for the parser's small pure functions and its refusals."""

import re

import pytest
from selectolax.lexbor import LexborHTMLParser

from telegram_datasette.model import Count, NotTelegramPage
from telegram_datasette.parse import (
    decode_data_view,
    link_domain,
    normalise_date,
    parse_count,
    parse_duration,
    parse_page,
    rich_text,
    sanitise_html,
    tme_target,
)


@pytest.mark.parametrize(
    "text, value, precision",
    [
        ("1.51M", 1_510_000, 5_000),
        ("149K", 149_000, 500),
        ("630", 630, 0),
        ("3.06K", 3_060, 5),
        ("11.3M", 11_300_000, 50_000),
        ("436.6K", 436_600, 50),
        ("15K", 15_000, 500),
        ("2B", 2_000_000_000, 500_000_000),
        ("1,234", 1_234, 0),
        ("1 234", 1_234, 0),
        ("1\u00a0234", 1_234, 0),
        ("12 345 678", 12_345_678, 0),
        ("1,5K", 1_500, 50),
        (" 7 ", 7, 0),
    ],
)
def test_parse_count(text, value, precision):
    count = parse_count(text)
    assert (count.value, count.precision) == (value, precision)
    assert count.text == text.strip()


@pytest.mark.parametrize("text", ["", None, "views", "1.2.3K", "K", "12Q", "-5", "1,23"])
def test_parse_count_garbage_gives_none(text):
    assert parse_count(text) == Count(text=(text or "").strip(), value=None, precision=None)


def test_decode_data_view_without_padding():
    # {"c":-1006503122,"p":519,"t":1786277379,"h":"81476615824bdce8b6"} from durov/519
    data = decode_data_view(
        "eyJjIjotMTAwNjUwMzEyMiwicCI6NTE5LCJ0IjoxNzg2Mjc3Mzc5LCJoIjoiODE0NzY2MTU4MjRiZGNlOGI2In0"
    )
    assert data == {"c": -1006503122, "p": 519, "t": 1786277379, "h": "81476615824bdce8b6"}


def test_decode_data_view_album():
    # {"c":-1591537674,"p":"84g",...} from the tchantest album
    data = decode_data_view(
        "eyJjIjotMTU5MTUzNzY3NCwicCI6Ijg0ZyIsInQiOjE2NzcyNDEzNDMsImgiOiJkN2I0ZGFkYWUyYjRmY2ZlZjgifQ"
    )
    assert data["p"] == "84g" and data["c"] == -1591537674


@pytest.mark.parametrize("value", [None, "", "x", "!!!!", "bm90IGpzb24", "WzEsMl0"])
def test_decode_data_view_garbage_is_empty(value):
    # "bm90IGpzb24" is base64 of "not json"; "WzEsMl0" of "[1,2]" (not an object)
    assert decode_data_view(value) == {}


@pytest.mark.parametrize(
    "text, seconds",
    [("0:09", 9), ("0:53", 53), ("4:09", 249), ("27:40", 1660), ("1:02:03", 3723), (" 0:05 ", 5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [None, "", "GIF", "9", "1:xx", "::"])
def test_parse_duration_garbage(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-05-20T15:38:10+00:00", "2026-05-20T15:38:10+00:00"),
        ("2026-05-20T17:38:10+02:00", "2026-05-20T15:38:10+00:00"),
        ("2026-05-20T15:38:10Z", "2026-05-20T15:38:10+00:00"),
        ("2026-05-20T15:38:10", "2026-05-20T15:38:10+00:00"),
        ("yesterday", None),
        (None, None),
    ],
)
def test_normalise_date(value, expected):
    assert normalise_date(value) == expected


@pytest.mark.parametrize(
    "url, domain",
    [
        ("https://www.Reuters.com/legal/x", "reuters.com"),
        ("http://bit.ly/3Tq1C4G", "bit.ly"),
        ("https://t.me/durov/482", "t.me"),
        ("https://example.org:8080/a", "example.org"),
        ("tg://resolve?domain=durov", None),
        ("mailto:a@b.c", None),
    ],
)
def test_link_domain(url, domain):
    assert link_domain(url) == domain


@pytest.mark.parametrize(
    "href, target",
    [
        ("https://t.me/rybar/81507", ("rybar", 81507)),
        ("https://t.me/some_user", ("some_user", None)),
        ("https://t.me/tchantest/85?single", ("tchantest", 85)),
        ("https://t.me/s/durov", ("durov", None)),
        ("https://example.com/a/1", (None, None)),
        (None, (None, None)),
    ],
)
def test_tme_target(href, target):
    assert tme_target(href) == target


def text_of(fragment: str):
    node = LexborHTMLParser(f"<div id=t>{fragment}</div>").css_first("#t")
    return rich_text(node, base_url="https://t.me/s/chan")


def test_text_line_breaks_and_entities():
    rich = text_of("Hello&#33;<br/>second &amp; line<br><br>third&nbsp;x")
    assert rich.plain() == "Hello!\nsecond & line\n\nthird\u00a0x"
    assert rich.safe_html() == "Hello!<br>second &amp; line<br><br>third&nbsp;x"


def test_text_custom_emoji_keeps_the_glyph():
    rich = text_of(
        '<tg-emoji emoji-id="5345799227572257356"><i class="emoji" '
        "style=\"background-image:url('//telegram.org/img/emoji/40/F09FA496.png')\"><b>🤖</b></i>"
        "</tg-emoji> Bot <i class=\"emoji\"><b>🇳🇴</b></i>"
    )
    assert rich.plain() == "🤖 Bot 🇳🇴"
    assert rich.safe_html() == "🤖 Bot 🇳🇴"


def test_text_reindented_source_whitespace_collapses():
    # Re-indented copies put newlines and indentation inside text nodes.
    rich = text_of("\n    <b>Title</b>\n    <br/>\n    <br/>Body text\n    continues.\n  ")
    assert rich.plain() == "Title\n\nBody text continues."


def test_text_links_and_hashtags_are_collected():
    rich = text_of('See <a href="https://a.example/x">this</a> <a href="?q=%23news">#news</a>')
    assert rich.links == [("https://a.example/x", "this"), ("https://t.me/s/chan?q=%23news", "#news")]


def test_text_formatting_is_kept_and_spoiler_marked():
    rich = text_of('<b>b</b><strong>s</strong><i>i</i><u>u</u><s>x</s><code>c</code>'
                   '<pre>p\n q</pre><blockquote>q</blockquote><span class="tg-spoiler">hid</span>')
    assert rich.safe_html() == (
        "<b>b</b><strong>s</strong><i>i</i><u>u</u><s>x</s><code>c</code>"
        '<pre>p\n q</pre><blockquote>q</blockquote><span class="tg-spoiler">hid</span>'
    )
    assert rich.plain() == "bsiuxcp\n qqhid"


@pytest.mark.parametrize(
    "dirty, clean",
    [
        ("<script>alert(1)</script>hi", "hi"),
        ('<b onclick="steal()">bold</b>', "<b>bold</b>"),
        ('<img src=x onerror="alert(1)">after', "after"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
        ('<a href="https://ok.example/" onclick="x()" target="_blank">ok</a>',
         '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>'),
        ('<a href="tg://resolve?domain=durov">tg</a>',
         '<a href="tg://resolve?domain=durov" rel="noopener noreferrer nofollow">tg</a>'),
        ('<svg onload="alert(1)"><script>alert(2)</script><text>svg text</text></svg>ok', "ok"),
        ('<span class="tg-spoiler evil" style="color:red">s</span>', '<span class="tg-spoiler">s</span>'),
        ('<iframe src="https://evil.example"></iframe><style>body{}</style>x', "x"),
        ('<div><p>para</p></div>', "para"),
    ],
)
def test_sanitise_html(dirty, clean):
    assert sanitise_html(dirty) == clean


def test_sanitiser_applies_to_post_html():
    page = parse_page(
        '<div class="tgme_widget_message js-widget_message" data-post="chan/1"><div class="tgme_widget_message_bubble">'
        '<div class="tgme_widget_message_text js-message_text">a<script>alert(1)</script>'
        '<a href="javascript:alert(1)" onclick="x()">b</a><img src=x onerror="alert(1)">'
        '<svg onload="alert(1)"><text>s</text></svg></div>'
        '<div class="tgme_widget_message_footer"><span class="tgme_widget_message_meta">'
        '<a class="tgme_widget_message_date" href="https://t.me/chan/1"><time datetime="2026-01-01T00:00:00+00:00">'
        "</time></a></span></div></div></div>"
    )
    post = page.posts[0]
    assert post.text == "ab"
    assert post.html == '<a rel="noopener noreferrer nofollow">b</a>'.join(["a", ""])
    assert "script" not in post.html and "onclick" not in post.html and "svg" not in post.html


@pytest.mark.parametrize(
    "data, message",
    [
        ("", "empty input"),
        (b"", "empty input"),
        ("   \n\t ", "empty input"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary input"),
        (b"\xff\xfe\xfa\xfb garbage \xc3\x28", "binary input"),
        ("<html>\x00\x00</html>", "binary input"),
        ("<html><head><title>Fjordvik kommune</title></head><body><p>Hei</p></body></html>",
         "not a Telegram page (title: 'Fjordvik kommune')"),
        ("just some words, no markup at all", "not a Telegram page"),
        ('<html><body class="tgme_page_body"><div class="tgme_page"><div class="tgme_page_title">'
         "<span>Chan</span></div></div></body></html>", "t.me profile page"),
        ('<div class="tgme_widget_message_video_player"><video src="x"></video></div>',
         "no message block or channel header"),
    ],
)
def test_not_telegram_page(data, message):
    with pytest.raises(NotTelegramPage, match=re.escape(message)):
        parse_page(data)


def test_not_telegram_page_is_a_value_error():
    assert issubclass(NotTelegramPage, ValueError)


def test_no_posts_found_page_is_a_telegram_page():
    page = parse_page(
        '<main class="tgme_main" data-url="/some_channel"><section class="tgme_channel_history js-message_history">'
        '<div class="tgme_widget_message_centered"><div class="tme_no_messages_found">No posts found</div></div>'
        "</section></main>"
    )
    assert page.posts == [] and page.channel.username == "some_channel" and page.complete


@pytest.mark.parametrize(
    "fragment",
    [
        'a &lt;script&gt; b &amp; c\u00a0d',
        '<a href="javascript:alert(1)">x</a> <a href="https://ok.example/?a=1&amp;b=&quot;2&quot;">y</a>',
        '<a href="tg://resolve?domain=x">t</a><a href="/s/chan">rel</a><a href="data:text/html,hi">d</a>',
        '<b><i>nested <u>deep</u></i></b><pre>code &amp; more</pre><blockquote>q</blockquote>',
        '<a href="https://a.example/">outer <a href="https://b.example/">inner</a></a>',
        '<i class="emoji"><b>🔥</b></i><tg-spoiler>s</tg-spoiler><span class="x">plain</span>',
    ],
)
def test_built_html_equals_nh3_output(fragment):
    rich = text_of(fragment)
    assert sanitise_html(rich.safe_html()) == rich.safe_html()
    assert "javascript" not in rich.safe_html() and "data:" not in rich.safe_html()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"c":-1234,"p":"7g"}', b'{ "c": -1234 }', b'{"c":1}  ', b'{"c":1}{"c":2}', b'{"a":{"b":1}}',
        b'{"c":"12"}', b'{"c":1.5}', b'{"c":01}', b'{"k":"\\u00e9"}', b'{}', b'[{"c":1}]', b'{"c":1,}',
    ],
)
def test_decode_data_view_agrees_with_json(payload):
    """The quick read of the usual compact object gives what base64 + json.loads give."""
    import base64
    import json

    value = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    try:
        expected = json.loads(payload)
    except ValueError:
        expected = {}
    assert decode_data_view(value) == (expected if isinstance(expected, dict) else {})


@pytest.mark.parametrize(
    "value",
    ["2024-02-29T23:59:59+00:00", "2023-02-29T10:00:00+00:00", "2026-01-02 03:04:05+00:00",
     "2026-01-02T24:00:00+00:00", "0001-01-01T00:00:00+00:00", "2026-1-02T03:04:05+00:00"],
)
def test_normalise_date_shortcut_agrees_with_datetime(value):
    from datetime import datetime, timezone

    try:
        expected = datetime.fromisoformat(value).astimezone(timezone.utc).isoformat(timespec="seconds")
    except ValueError:
        expected = None
    assert normalise_date(value) == expected
