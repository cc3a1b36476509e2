"""The compiled fast path (scripts/_fastparse.pyx) gives exactly what parse.py gives.

Every page is parsed twice, with and without the fast path, and the whole Page (channel,
posts, media, reactions, links, problems) must be equal. The fast path leaves rare
posts to parse.py; the last test makes sure it still handles the common ones.
"""

import shutil
import sysconfig
from pathlib import Path

import pytest

import scripts.parse as parse
from scripts.model import NotTelegramPage

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "telegram-pages" / "real"
OWN = sorted((HERE / "fixtures" / "pages").glob("*.html"))
REAL = sorted(SHARED.glob("*.html")) + sorted((SHARED / "fragments").glob("*.html")) if SHARED.is_dir() else []

needs_fast_path = pytest.mark.skipif(
    parse.FAST_PATH is None, reason="scripts/_fastparse is not built (run `make` or `make fast-parser`)"
)


def both(path, monkeypatch):
    data = path.read_bytes()
    url = url_of(path)

    def run():
        try:
            return parse.parse_page(data, url)
        except NotTelegramPage as error:
            return f"NotTelegramPage: {error}"

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(parse, "FAST_PATH", None)
        reference = run()
    return fast, reference


def url_of(path):
    channel = path.name.split("__", 1)[0]
    return f"https://t.me/{channel}/1?embed=1" if "embed" in path.name else f"https://t.me/s/{channel}"


def test_fast_path_is_built_where_it_can_be():
    """With a C compiler and Python's headers (as `make` and CI have), it must be in use."""
    headers = Path(sysconfig.get_paths()["include"], "Python.h").is_file()
    if not (shutil.which("cc") or shutil.which("gcc")) or not headers:
        pytest.skip("no C compiler or Python headers here: the pure-Python parser is used")
    assert parse.FAST_PATH is not None, "scripts/_fastparse is not built or failed its self-check"


@needs_fast_path
@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_own_fixtures_parse_the_same(path, monkeypatch):
    fast, reference = both(path, monkeypatch)
    assert fast == reference


@needs_fast_path
@pytest.mark.skipif(not REAL, reason=f"real captures not found at {SHARED}")
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_captures_parse_the_same(path, monkeypatch):
    fast, reference = both(path, monkeypatch)
    assert fast == reference


@needs_fast_path
def test_fast_path_takes_the_common_posts():
    """Text, photo, video, document, forward, reply and link-preview posts do not fall back."""
    from selectolax.lexbor import LexborHTMLParser

    kinds = {}
    for path in OWN:
        tree = LexborHTMLParser(path.read_bytes())
        for message in tree.css(".tgme_widget_message"):
            post = parse.FAST_PATH.parse_post(message)
            reference = parse.parse_post(message, [])
            if reference is None:
                continue
            handled = post is not None
            if handled:
                assert post == reference
            kinds.setdefault(reference.content_kind, set()).add(handled)
    assert {"text", "album", "video", "gif", "document", "audio"} <= set(kinds)
    for kind in ("text", "photo", "video", "gif", "document", "audio", "album"):
        assert kinds.get(kind, {True}) == {True}, f"{kind} posts fall back to parse.py: {kinds}"


def test_pure_python_switch(monkeypatch):
    monkeypatch.setenv("TME_PURE_PYTHON", "1")
    assert parse._load_fast_path() is None


# Spellings the fast path reads in C and must read exactly as parse.py does (or hand over).
STYLES = [
    "width:800px;background-image:url('https://cdn.example/a.jpg')",
    "width: 5px ; padding-top : 50%; background-image : url( \"//cdn.example/b.jpg\" )",
    ";width:3px;padding-top:50%",
    "height:2px;width:7px;padding-top:150%",
    "max-width:9px; width:11.5px",
    "WIDTH:800px",
    "width:800px;background-image:url()",
    "background-image:url(  )",
    "background-image:url(' x')",
    "background-image: url(/relative.jpg)",
    "width:\u00a0800px;background-image:\u00a0url('https://cdn.example/c.jpg')",
    "",
]
INNER = ["", "padding-top:62.5%", "width:50%;padding-top:100%", "padding-top:  33.3333%", "width:25%"]
HREFS = [
    "https://t.me/sample/7", "https://t.me/sample/7?single", "https://t.me/s/7", "https://t.me/s/sample/7",
    "https://t.me/sample/x7", "http://t.me/sample/7", "//www.t.me/sample/7", "https://t.me/sa-mple/7", "",
]
DATES = [
    "2026-01-02T03:04:05+00:00", "2024-02-29T23:59:59+00:00", "2023-02-29T10:00:00+00:00",
    "2026-13-02T03:04:05+00:00", "2026-01-02T24:00:00+00:00", "2026-01-02T03:04:05+03:00",
    "2026-01-02 03:04:05+00:00", "2026-01-02T03:04:05Z", "0000-01-02T03:04:05+00:00", "garbage",
]
VIEWS = ["eyJjIjotMTIzNCwicCI6IjdnIn0", "eyJjIjoiLTEyMzQiLCJwIjo1fQ", "eyAiYyI6IDEyMzQgfQ", "eyJjIjowMTIzfQ", "!!!", "e30"]


def sample_page(style, inner, href, date, view):
    return f"""<!DOCTYPE html><html><head></head><body><section class="tgme_channel_history">
<div class="tgme_widget_message_wrap"><div class="tgme_widget_message js-widget_message" data-post="sample/7"
 data-view="{view}"><div class="tgme_widget_message_bubble">
<a class="tgme_widget_message_photo_wrap" href="{href}" style="{style}">
<div class="tgme_widget_message_photo" style="{inner}"></div></a>
<div class="tgme_widget_message_text js-message_text">Words</div>
<div class="tgme_widget_message_footer"><span class="tgme_widget_message_views">1.2K</span>
<a class="tgme_widget_message_date" href="https://t.me/sample/7"><time datetime="{date}">x</time></a>
</div></div></div></div></section></body></html>"""


@needs_fast_path
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("inner", INNER)
def test_photo_styles_read_the_same(style, inner, monkeypatch):
    html = sample_page(style, inner, HREFS[0], DATES[0], VIEWS[0])
    fast = parse.parse_page(html)
    monkeypatch.setattr(parse, "FAST_PATH", None)
    assert fast == parse.parse_page(html)


@needs_fast_path
@pytest.mark.parametrize("href", HREFS)
@pytest.mark.parametrize("date", DATES)
@pytest.mark.parametrize("view", VIEWS)
def test_links_dates_and_data_views_read_the_same(href, date, view, monkeypatch):
    html = sample_page(STYLES[0], INNER[1], href, date, view)
    fast = parse.parse_page(html)
    monkeypatch.setattr(parse, "FAST_PATH", None)
    assert fast == parse.parse_page(html)


TEXTS = [
    "plain words",
    "a &amp; b &lt;c&gt; \u00a0no-break\u00a0space",
    "line one<br>line two<br/><br>",
    "re-indented\n    across\n lines <b>bold\n  too</b>",
    "<pre>keep\n   this\n</pre> and <code>x &lt; y</code>",
    '<i class="emoji" style="background-image:url(x)"><b> \u2764 </b></i> glyph',
    '<tg-emoji emoji-id="5"><i class="emoji"><b>\u2b50</b></i></tg-emoji> custom',
    '<span class="tg-spoiler">secret</span> <tg-spoiler>also</tg-spoiler>',
    '<a href="?q=%23%D1%82%D0%B5%D0%B3">#\u0442\u0435\u0433</a> <a href="https://t.me/who">@who</a>',
    '<a href="https://example.org/a"><a href="https://example.org/b">nested</a> link</a>',
    '<a href="javascript:alert(1)">bad</a> <a href="/relative">rel</a> <a>none</a>',
    '<blockquote>quoted <u>under</u> <s>struck</s> <del>del</del> <ins>ins</ins></blockquote>',
    "<div>block</div><script>no()</script><style>x{}</style><svg><text>no</text></svg><!-- c -->",
    "<unknown-tag>kept <strong>strong</strong></unknown-tag><em>em</em>",
]


@needs_fast_path
@pytest.mark.parametrize("text", TEXTS)
def test_texts_read_the_same(text, monkeypatch):
    html = sample_page(STYLES[0], INNER[1], HREFS[0], DATES[0], VIEWS[0]).replace(">Words<", f">{text}<")
    fast = parse.parse_page(html)
    assert fast.posts[0].text is not None
    monkeypatch.setattr(parse, "FAST_PATH", None)
    assert fast == parse.parse_page(html)


@needs_fast_path
@pytest.mark.parametrize("raw", [b"\xe2\x80", b"\xff ok", b"\xed\xa0\x80", b"\xf0\x9f\x98"])
def test_invalid_utf8_reads_the_same(raw):
    """Bytes lexbor passes through undecoded (parse_page refuses such input, but a tree
    may still hold them): both paths replace them node by node."""
    from selectolax.lexbor import LexborHTMLParser

    page = sample_page(STYLES[0], INNER[1], HREFS[0], DATES[0], VIEWS[0]).encode()
    page = page.replace(b">Words<", b">A" + raw + b"<b>\x99B</b>" + raw + b"<")
    message = LexborHTMLParser(page).css_first(".tgme_widget_message")
    fast = parse.FAST_PATH.parse_post(message)
    assert fast is not None and "\ufffd" in fast.text
    assert fast == parse.parse_post(message, [])


@needs_fast_path
@pytest.mark.parametrize("classes", [
    "a b", "ab b", "b", " b ", "xb bx", "b\tc", "c\nb", "a\u00a0b", "a\u2003b c", "\u00e9b b\u00e9", "a\x1cb",
    "a\x0bb", "bb", "", "b" * 3 + " " + "b", "a  b", "tgme_widget_message_text tgme_widget_message",
])
@pytest.mark.parametrize("token", ["b", "a", "tgme_widget_message"])
def test_class_tokens_split_as_python_does(classes, token):
    assert parse.FAST_PATH.class_has(classes, token) == (token in classes.split())
