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
