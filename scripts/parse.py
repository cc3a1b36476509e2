"""Parse t.me web-preview pages into the records of `scripts.model`.

One entry point, `parse_page(html, url)`, for both kinds of page Telegram serves:

- the channel preview, https://t.me/s/<channel> (newest page, ?before= and ?after= pages);
- the single-post embed, https://t.me/<channel>/<id>?embed=1.

Pure: no network, no database, no files. Each document is parsed once with lexbor
(selectolax); per post we run a handful of CSS queries on the post's own subtree and one
walk over its text (iterative: no Python recursion over the tree anywhere). Everything a person can see on the page ends up in a field;
what the parser does not recognise is kept (kind="unknown", raw_html) and reported in
`Page.problems` rather than silently dropped.

Decisions worth knowing (see also tests/test_parse_units.py):

- Dates are ISO 8601 in UTC with an explicit offset: "2026-08-08T12:34:56+00:00".
- Link domains are the lowercased host without a leading "www." (so facets group
  "www.reuters.com" with "reuters.com"); None for non-http links (tg://...).
- Telegram puts fallback "not supported" blocks in every post (a hidden
  `.media_not_supported_cont` and a hidden label inside every video player). The notice
  flags mean what a person sees in a normal browser, so only visible labels count:
  a label inside `.media_not_supported_cont` (while the post also has supported content)
  or inside a playable video player is ignored.
- Media `url` is the media file itself (CDN, expiring tokens); documents and audio files
  have no file URL on the page, only a t.me link, so their `url` stays None.
- Post HTML is built from an allow-list while the text is walked (links keep http, https
  and tg hrefs only) and comes out exactly as nh3 would leave it: the tests run nh3 over
  every post to prove it. nh3 itself cleans the channel description and `sanitise_html`.
- A page is truncated when a full document ends before </html>; a last message block
  without its date is then incomplete and skipped (named in `Page.problems`).
- A post is kind="unknown" when its bubble holds a tgme_widget_message_* element we do
  not handle and that element carries content (text, an image, a background image).
- Input is bounded (see "bounds" below): at most MAX_PAGE_BYTES; markup nested deeper
  than DEPTH_LIMIT (256) elements loses the tags past that depth before lexbor sees it
  (text kept), and the post holding it is kind="unknown" with a problem. Bytes that are
  not UTF-8 become U+FFFD, with a problem, and the posts are kept.
"""

from __future__ import annotations

import binascii
import codecs
import json
import re
import signal
import threading
import time
from bisect import bisect_right
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

import nh3
from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser, LexborNode

from telegram_datasette.model import (
    Channel,
    Count,
    Link,
    Media,
    NotTelegramPage,
    Page,
    PageTooLarge,
    PollOption,
    Post,
    Reaction,
)

TME = "https://t.me"

# What the sanitised HTML may contain. Telegram's own text markup uses only these.
SAFE_TAGS = {"a", "b", "strong", "i", "em", "u", "s", "code", "pre", "blockquote", "br", "span"}
SAFE_ATTRIBUTES = {"a": {"href"}}
SAFE_CLASSES = {"span": {"tg-spoiler"}}
SAFE_SCHEMES = {"http", "https", "tg"}
LINK_REL = "noopener noreferrer nofollow"
# Removed together with their content (nh3 would otherwise keep e.g. <svg>'s text).
DROPPED_WITH_CONTENT = {
    "script", "style", "svg", "math", "iframe", "object", "embed", "noscript",
    "template", "textarea", "title", "select", "frameset", "noembed", "xmp",
}

# Telegram text formatting, mapped to the tag we emit.
TEXT_TAGS = {
    "b": "b", "strong": "strong", "i": "i", "em": "em", "u": "u", "ins": "u",
    "s": "s", "del": "s", "strike": "s", "code": "code", "pre": "pre",
    "blockquote": "blockquote",
}
SKIPPED_TAGS = {"script", "style", "svg", "img", "video", "audio", "picture", "canvas", "-comment"}
OPEN_TAGS = {out: f"<{out}>" for out in TEXT_TAGS.values()}
CLOSE_TAGS = {out: f"</{out}>" for out in TEXT_TAGS.values()}
SPOILER_OPEN = '<span class="tg-spoiler">'

NOTICE_FLAGS = {
    "media is too big": "media_too_big",
    "this media is not supported in your browser": "media_not_supported",
    "please open telegram to view this post": "open_in_telegram",
}

MEDIA_SELECTOR = ", ".join(
    "." + c
    for c in (
        "tgme_widget_message_photo_wrap",
        "tgme_widget_message_video_player",
        "tgme_widget_message_roundvideo_player",
        "tgme_widget_message_voice_player",
        "tgme_widget_message_document_wrap",
        "tgme_widget_message_sticker_wrap",
        "tgme_widget_message_poll",
        "tgme_widget_message_location_wrap",
        "tgme_widget_message_venue_wrap",
        "tgme_widget_message_contact_wrap",
    )
)

# Every tgme_widget_message_* class we understand (or know to be decoration). A post
# whose bubble holds any other such class with content becomes kind="unknown".
KNOWN_CLASSES = frozenset(
    "tgme_widget_message_" + c
    for c in """
    bubble bubble_tail bubble_logo user user_photo author owner_name author_name text
    footer info meta views voters date from_author forwarded_from forwarded_from_name
    forwarded_from_author via_bot reply reply_thumb metatext link link_preview
    reactions photo photo_wrap grouped grouped_wrap grouped_layer one_media
    video video_player video_thumb video_wrap roundvideo roundvideo_player roundvideo_wrap
    roundvideo_thumb roundvideo_muted roundvideo_border roundvideo_play roundvideo_duration
    voice voice_player voice_play voice_wrap voice_progress voice_progress_wrap
    voice_progress_bg voice_duration
    document document_wrap document_icon document_title document_extra
    sticker sticker_wrap tgsticker tgsticker_wrap videosticker videosticker_wrap
    poll poll_question poll_type poll_options poll_option poll_option_percent
    poll_option_value poll_option_text poll_option_bar
    location location_wrap location_title location_address venue_wrap
    contact contact_wrap contact_name contact_phone contact_photo
    service_photo service_date service_date_wrap error centered wrap
    """.split()
)

# Built once: nh3's Cleaner keeps the policy compiled.
SANITISER = nh3.Cleaner(
    tags=SAFE_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=SAFE_ATTRIBUTES,
    allowed_classes=SAFE_CLASSES,
    url_schemes=SAFE_SCHEMES,
    link_rel=LINK_REL,
)

_BG_URL = re.compile(r"background-image\s*:\s*url\(\s*['\"]?([^'\")]+)")
_PX = re.compile(r"(?:^|;)\s*width\s*:\s*([\d.]+)px")
_PCT = re.compile(r"padding-top\s*:\s*([\d.]+)%")
_WIDTH_PCT = re.compile(r"(?:^|;)\s*width\s*:\s*([\d.]+)%")
_COUNT = re.compile(r"^(\d+(?:[.,]\d+)?)([KMB]?)$", re.IGNORECASE)
_TME_POST = re.compile(r"^(?:https?:)?//(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?([A-Za-z0-9_]+)(?:/(\d+))?")
_WS_NEWLINE = re.compile(r"\s*\n\s*")
_SENTINEL_CLEAN = re.compile(r"\x00*\n\x00*")
_SENTINEL_RUN = re.compile(r" ?\x00+ ?")
_REACTION_COUNT = re.compile(r"([\d.,\s]+[KMBkmb]?)\s*$")


# ---------------------------------------------------------------- small pure helpers


def parse_count(text: str | None) -> Count:
    """Read a rounded counter: "1.51M" is 1,510,000 ± 5,000; "630" is exact.

    Thousands separators ("1,234", "1 234") are accepted. Anything else gives value None.
    """
    raw = (text or "").strip()
    if raw.isdigit() and raw.isascii():  # the common case, "630": exact, no regex needed
        return Count(raw, int(raw), 0)
    return Count(raw, *_count_value(raw))


@lru_cache(maxsize=8192)  # the same few hundred counter texts repeat on every page
def _count_value(raw: str) -> tuple[int | None, int | None]:
    compact = raw.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    # "1,234" is a thousands separator; "1,5K" a decimal comma.
    if re.fullmatch(r"\d{1,3}(,\d{3})+", compact):
        compact = compact.replace(",", "")
    m = _COUNT.match(compact)
    if not m:
        return None, None
    number, suffix = m.group(1).replace(",", "."), m.group(2).upper()
    multiplier = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}[suffix]
    try:
        value = Decimal(number) * multiplier
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        return None, None
    if not suffix:
        if "." in number:  # "1.5" or "1,23" without K/M is not a count Telegram writes
            return None, None
        return int(value), 0
    decimals = len(number.split(".")[1]) if "." in number else 0
    unit = Decimal(multiplier) / (Decimal(10) ** decimals)
    return int(value), int(unit / 2)


_URLSAFE = str.maketrans("-_", "+/")
_scan_json = json.JSONDecoder().scan_once


def decode_data_view(value: str | None) -> dict:
    """Decode a post's data-view: base64url JSON without padding. {} when unreadable."""
    if not value:
        return {}
    try:
        # base64.urlsafe_b64decode and json.loads, minus their Python-level wrappers
        # (a third of a post's parse time): the compact object t.me writes is read by
        # the C scanner directly; anything else takes json.loads.
        raw = binascii.a2b_base64((value + "=" * (-len(value) % 4)).translate(_URLSAFE))
        if raw[:1] == b"{" and raw[-1:] == b"}":
            try:
                text = raw.decode("utf-8")
                data, end = _scan_json(text, 0)
                if end == len(text):
                    return data
            except (StopIteration, ValueError):
                pass
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def parse_duration(text: str | None) -> int | None:
    """"0:09" -> 9, "27:40" -> 1660, "1:02:03" -> 3723; None if not a duration."""
    if not text:
        return None
    parts = text.strip().split(":")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def normalise_date(value: str | None) -> str | None:
    """Any ISO 8601 datetime -> "YYYY-MM-DDTHH:MM:SS+00:00" in UTC."""
    if not value:
        return None
    if len(value) == 25 and value.endswith("+00:00") and value.isascii():
        # Already what we write (t.me's usual form): only check that it is a date.
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        if value[4] == value[7] == "-" and value[10] == "T" and value[13] == value[16] == ":":
            return value
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # t.me always sends an offset; assume UTC if not
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=8192)  # pure, and the same links repeat across a channel's posts
def link_domain(url: str) -> str | None:
    """Lowercased host without a leading "www."; None for non-web links."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    return host[4:] if host.startswith("www.") else host


def tme_target(href: str | None) -> tuple[str | None, int | None]:
    """("chan", 123) from https://t.me/chan/123; ("chan", None) from https://t.me/chan."""
    if not href:
        return None, None
    m = _TME_POST.match(href)
    if not m:
        return None, None
    return m.group(1), int(m.group(2)) if m.group(2) else None


@lru_cache(maxsize=4096)  # the same hashtags come back post after post
def search_target(query: str) -> str:
    """What a t.me/s/<channel>?q=... link searches for: "#tag" for a hashtag link."""
    return unquote(query)


@lru_cache(maxsize=256)  # a channel's description comes back on every page of it
def sanitise_html(fragment: str | None) -> str | None:
    """Keep only harmless text markup: a (http/https/tg links), b, i, u, s, code, pre..."""
    if fragment is None:
        return None
    return SANITISER.clean(fragment)


def background_url(node: LexborNode | None) -> str | None:
    if node is None:
        return None
    style = node.attributes.get("style") or ""
    m = _BG_URL.search(style)
    return absolute_url(m.group(1).strip()) if m else None


def absolute_url(url: str | None) -> str | None:
    if not url:
        return None
    if url.startswith("//"):
        return "https:" + url
    if url.startswith("/"):
        return TME + url
    return url


def has_class(node: LexborNode, name: str) -> bool:
    return name in (node.attributes.get("class") or "").split()


def clean_text(text: str | None) -> str | None:
    """Collapse the whitespace of a label (prettified sources wrap them over lines)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def first_text(node: LexborNode, selector: str) -> str | None:
    found = node.css_first(selector)
    return clean_text(found.text()) if found is not None else None


def first_with_class(node: LexborNode, name: str) -> LexborNode | None:
    """node.css_first("." + name) for a small subtree (node itself included, page order).

    Walking two or three elements costs a fraction of a CSS query, whose selector is
    compiled on every call."""
    for element in node.traverse():
        classes = element.attrs.get("class")
        if classes and name in classes.split():
            return element
    return None


def inside(node: LexborNode, stop: LexborNode, class_names: tuple[str, ...]) -> LexborNode | None:
    """The nearest ancestor of node (below stop) carrying one of class_names."""
    # Compare by identity (mem_id): Node equality would serialise both subtrees.
    stop_id = stop.mem_id
    parent = node.parent
    for _ in _DEPTH_STEPS:  # bounded: the climb is in Python, once per media item and label
        if parent is None or parent.mem_id == stop_id:
            return None
        classes = (parent.attributes.get("class") or "").split()
        for name in class_names:
            if name in classes:
                return parent
        parent = parent.parent
    raise TooDeep(f"an element nested more than {DEPTH_LIMIT} levels inside a post")


# ---------------------------------------------------------------- rich text


class RichText:
    """Plain text, safe HTML and the links of one text element, from one walk."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.text: list[str] = []
        self.html: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, plain text)
        self.in_link = False

    def walk(self, node: LexborNode, in_pre: bool = False) -> None:
        """Append the text, HTML and links of node's content.

        Iterative, with an explicit stack (a recursive walk ran out of Python stack on
        text nested a few hundred elements deep). The hottest loop of the parser (every
        node of every post's text): the cases are inlined, most frequent first, and
        lists are bound to locals. Each stack frame is (the next sibling to go on with,
        in_pre there, what to write on leaving the element: None, a closing tag, or a
        link's (href, start, opened)).
        """
        text, html = self.text, self.html
        stack: list = []
        push, pop = stack.append, stack.pop
        check = DEPTH_CHECK  # nesting at which the element's depth in the document is checked
        child = node.first_child
        while True:
            while child is not None:
                tag = child.tag
                if tag == "-text":
                    value = child.text_content or ""
                    if not in_pre and "\n" in value:
                        # Telegram writes line breaks as <br>; a raw newline only comes from
                        # re-indented copies and renders as a space. Mark it so that it can be
                        # trimmed next to real line breaks.
                        value = _WS_NEWLINE.sub("\x00", value)
                        text.append(value)
                        html.append(escape_text(value.replace("\x00", " ")))
                    else:
                        text.append(value)
                        html.append(escape_text(value))
                    child = child.next
                    continue
                if tag == "br":
                    text.append("\n")
                    html.append("<br>")
                    child = child.next
                    continue
                if tag in SKIPPED_TAGS:
                    child = child.next
                    continue
                # An element whose content is walked: open it, then go down.
                inner_pre = in_pre
                if tag == "a":
                    href = (child.attributes.get("href") or "").strip()
                    if href.startswith("?"):  # hashtag search links are relative to the channel page
                        href = self.base_url + href
                    elif href.startswith("/"):
                        href = absolute_url(href)
                    if self.in_link:  # a link inside a link is not valid HTML: keep only its text
                        leave = (href, len(text), False)
                    else:
                        self.in_link = True
                        html.append(link_tag(href))
                        leave = (href, len(text), True)
                elif tag == "i" or tag == "span":
                    classes = (child.attrs.get("class") or "").split()
                    if tag == "i" and "emoji" in classes:
                        # The image emoji's glyph sits in its <b>; keep just the glyph.
                        glyph = child.text().strip()  # re-indented copies wrap the glyph in whitespace
                        text.append(glyph)
                        html.append(escape_text(glyph))
                        child = child.next
                        continue
                    if tag == "span" and "tg-spoiler" in classes:
                        html.append(SPOILER_OPEN)
                        leave = "</span>"
                    elif tag == "i":
                        html.append("<i>")
                        leave = "</i>"
                    else:  # a plain span: keep the content, drop the element
                        leave = None
                elif tag == "tg-spoiler":
                    html.append(SPOILER_OPEN)
                    leave = "</span>"
                else:
                    out = TEXT_TAGS.get(tag)
                    if out is None:  # div, tg-emoji...: keep the content, drop the element
                        leave = None
                    else:
                        html.append(OPEN_TAGS[out])
                        leave = CLOSE_TAGS[out]
                        if tag == "pre":
                            inner_pre = True
                push((child.next, in_pre, leave))
                if len(stack) >= check:
                    check = nesting_check(node, len(stack))
                in_pre = inner_pre
                child = child.first_child
            if not stack:
                return
            child, in_pre, leave = pop()
            if leave is None:
                continue
            if leave.__class__ is str:
                html.append(leave)
                continue
            href, start, opened = leave
            if opened:
                html.append("</a>")
                self.in_link = False
            if href:
                self.links.append((href, tidy_text("".join(text[start:])) or ""))

    def plain(self) -> str | None:
        return tidy_text("".join(self.text))

    def safe_html(self) -> str | None:
        """The text as HTML that only holds SAFE_TAGS, escaped text and vetted links.

        Built safe by construction rather than cleaned afterwards: running nh3 over each
        post cost more than the rest of the post together. The output is exactly what
        `sanitise_html` (nh3) returns for it; the tests check that on every page.
        """
        html = "".join(self.html).strip()
        return html or None


def link_tag(href: str) -> str:
    """<a> with the href only when its scheme is allowed, as nh3 does."""
    scheme = href.split(":", 1)[0].lower() if ":" in href else ""
    if scheme in SAFE_SCHEMES:
        return f'<a href="{escape_attribute(href)}" rel="{LINK_REL}">'
    return f'<a rel="{LINK_REL}">'


def escape_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("\u00a0", "&nbsp;")


def escape_text(value: str) -> str:
    # Most text nodes have nothing to escape; skip the replaces for them.
    if "&" in value or "<" in value or ">" in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\u00a0" in value:  # written as nh3 (html5ever) writes it
        value = value.replace("\u00a0", "&nbsp;")
    return value


def tidy_text(text: str) -> str | None:
    """Resolve the whitespace markers RichText leaves and trim the ends."""
    if "\x00" in text:
        text = _SENTINEL_CLEAN.sub("\n", text)
        text = _SENTINEL_RUN.sub(" ", text.strip("\x00"))
    text = text.strip()
    return text or None


def rich_text(node: LexborNode, base_url: str = TME) -> RichText:
    rich = RichText(base_url)
    rich.walk(node)
    return rich


def plain_text(node: LexborNode | None) -> str | None:
    return rich_text(node).plain() if node is not None else None


# ---------------------------------------------------------------- media


def media_size(wrap_style: str, inner_style: str) -> tuple[int | None, int | None]:
    """Pixel size from `width:800px` and the inner `padding-top:62.5%` aspect box."""
    width_m = _PX.search(wrap_style)
    if not width_m:
        return None, None
    width = float(width_m.group(1))
    inner_width = _WIDTH_PCT.search(inner_style)
    if inner_width:
        width = width * float(inner_width.group(1)) / 100
    pad = _PCT.search(inner_style) or _PCT.search(wrap_style)
    height = round(width * float(pad.group(1)) / 100) if pad else None
    return round(width), height


def item_message_id(node: LexborNode) -> int | None:
    return tme_target(node.attributes.get("href"))[1]


def parse_photo(node: LexborNode) -> Media:
    media = Media(position=0, kind="photo", url=background_url(node), message_id=item_message_id(node))
    if not has_class(node, "grouped_media_wrap"):
        inner = first_with_class(node, "tgme_widget_message_photo")
        media.width, media.height = media_size(
            node.attributes.get("style") or "", (inner.attributes.get("style") or "") if inner else ""
        )
    return media


def parse_video(node: LexborNode) -> Media:
    wrap = node.css_first(".tgme_widget_message_video_wrap")
    video = None
    for candidate in node.css("video"):
        if not has_class(candidate, "blured"):  # the blurred copy is only a backdrop
            video = candidate
            break
    is_gif = video is not None and "loop" in video.attributes
    duration = first_text(node, ".message_video_duration")
    media = Media(
        position=0,
        kind="gif" if is_gif else "video",
        message_id=item_message_id(node),
        url=absolute_url(video.attributes.get("src")) if video is not None else None,
        thumbnail_url=background_url(node.css_first(".tgme_widget_message_video_thumb")),
        duration_text=duration,
        duration_seconds=parse_duration(duration),
    )
    if wrap is not None and not has_class(node, "grouped_media_wrap"):
        style = wrap.attributes.get("style") or ""
        media.width, media.height = media_size(style, style)
    return media


def parse_roundvideo(node: LexborNode) -> Media:
    video = node.css_first("video")
    duration = first_text(node, ".tgme_widget_message_roundvideo_duration")
    return Media(
        position=0,
        kind="round_video",
        url=absolute_url(video.attributes.get("src")) if video is not None else None,
        thumbnail_url=background_url(node.css_first(".tgme_widget_message_roundvideo_thumb")),
        duration_text=duration,
        duration_seconds=parse_duration(duration),
    )


def parse_voice(node: LexborNode) -> Media:
    audio = node.css_first("audio")
    duration = first_text(node, ".tgme_widget_message_voice_duration")
    return Media(
        position=0,
        kind="voice",
        message_id=item_message_id(node),
        url=absolute_url(audio.attributes.get("src")) if audio is not None else None,
        duration_text=duration,
        duration_seconds=parse_duration(duration),
    )


def parse_document(node: LexborNode) -> Media:
    icon = node.css_first(".tgme_widget_message_document_icon")
    is_audio = icon is not None and has_class(icon, "audio")
    title = first_text(node, ".tgme_widget_message_document_title")
    extra = first_text(node, ".tgme_widget_message_document_extra")
    media = Media(position=0, kind="audio" if is_audio else "document", title=title,
                  message_id=item_message_id(node))
    # The second line is the performer for music, the file size for other files.
    if is_audio:
        media.performer = extra
    else:
        media.size_text = extra
    return media


def parse_sticker(node: LexborNode) -> Media:
    media = Media(position=0, kind="sticker")
    image = node.css_first(".tgme_widget_message_sticker")
    if image is not None:
        media.url = absolute_url(image.attributes.get("data-webp")) or background_url(image)
    for source in node.css("source"):
        kind = source.attributes.get("type") or ""
        srcset = absolute_url((source.attributes.get("srcset") or "").split(" ")[0])
        if kind == "application/x-tgsticker":
            media.url = srcset
        elif srcset and not srcset.startswith("data:") and media.thumbnail_url is None:
            media.thumbnail_url = srcset
    video = node.css_first("video")
    if video is not None:
        media.url = absolute_url(video.attributes.get("src"))
    img = node.css_first("img")
    if img is not None and media.thumbnail_url is None:
        media.thumbnail_url = absolute_url(img.attributes.get("src"))
    emoji = node.attributes.get("data-emoji") or (image.attributes.get("data-emoji") if image else None)
    media.title = emoji
    return media


def parse_poll(node: LexborNode) -> Media:
    options = []
    for position, option in enumerate(node.css(".tgme_widget_message_poll_option")):
        percent = first_text(option, ".tgme_widget_message_poll_option_percent")
        options.append(
            PollOption(
                position=position,
                text=plain_text(option.css_first(".tgme_widget_message_poll_option_text")) or "",
                percent=int(percent.rstrip("%")) if percent and percent.rstrip("%").isdigit() else None,
            )
        )
    return Media(
        position=0,
        kind="poll",
        poll_question=plain_text(node.css_first(".tgme_widget_message_poll_question")),
        poll_type=first_text(node, ".tgme_widget_message_poll_type"),
        poll_options=options,
    )


def coordinates(href: str | None, image_url: str | None) -> tuple[float | None, float | None]:
    """Latitude, longitude from the map link (q= or ll=), else from the map image."""
    for url, lon_first in ((href, False), (image_url, True)):
        if not url:
            continue
        query = parse_qs(urlsplit(url).query)
        for key in ("q", "ll", "center"):
            for value in query.get(key, []):
                parts = value.split(",")
                try:
                    a, b = float(parts[0]), float(parts[1])
                except (ValueError, IndexError):
                    continue
                # Yandex static maps write "lon,lat"; Google links write "lat,lon".
                if lon_first and "yandex" in url:
                    return b, a
                return a, b
    return None, None


def parse_location(node: LexborNode) -> Media:
    image = node.css_first(".tgme_widget_message_location")
    image_url = background_url(image)
    latitude, longitude = coordinates(node.attributes.get("href"), image_url)
    return Media(
        position=0,
        kind="location",
        url=absolute_url(node.attributes.get("href")),
        thumbnail_url=image_url,
        latitude=latitude,
        longitude=longitude,
        title=first_text(node, ".tgme_widget_message_location_title"),
    )


def parse_contact(node: LexborNode) -> Media:
    photo = node.css_first(".tgme_widget_message_contact_photo img")
    return Media(
        position=0,
        kind="contact",
        title=plain_text(node.css_first(".tgme_widget_message_contact_name")),
        phone=first_text(node, ".tgme_widget_message_contact_phone"),
        thumbnail_url=absolute_url(photo.attributes.get("src")) if photo is not None else None,
    )


MEDIA_PARSERS = {
    "tgme_widget_message_photo_wrap": parse_photo,
    "tgme_widget_message_video_player": parse_video,
    "tgme_widget_message_roundvideo_player": parse_roundvideo,
    "tgme_widget_message_voice_player": parse_voice,
    "tgme_widget_message_document_wrap": parse_document,
    "tgme_widget_message_sticker_wrap": parse_sticker,
    "tgme_widget_message_poll": parse_poll,
    "tgme_widget_message_location_wrap": parse_location,
    "tgme_widget_message_venue_wrap": parse_location,
    "tgme_widget_message_contact_wrap": parse_contact,
}


def parse_media(scope: LexborNode) -> list[Media]:
    """Every media item inside scope (a post, or a bare fragment), in page order."""
    return media_from_nodes(scope, scope.css(MEDIA_SELECTOR))


def media_from_nodes(scope: LexborNode, nodes) -> list[Media]:
    items = []
    for node in nodes:
        if inside(node, scope, ("tgme_widget_message_reply", "tgme_widget_message_link_preview")):
            continue
        kind, not_supported = media_class(node.attributes.get("class") or "")
        if kind is None:  # pragma: no cover - callers pass media elements only
            continue
        media = MEDIA_PARSERS[kind](node)
        media.position = len(items)
        if not_supported and notice_of(node) == "media_too_big":
            media.too_big = True
        items.append(media)
    return items


@lru_cache(maxsize=4096)
def media_class(class_attribute: str) -> tuple[str | None, bool]:
    names = class_attribute.split()
    return next((n for n in names if n in MEDIA_PARSERS), None), "not_supported" in names


def notice_of(node: LexborNode) -> str | None:
    label = node.css_first(".message_media_not_supported_label")
    if label is None:
        return None
    return NOTICE_FLAGS.get(" ".join(label.text().split()).lower())


# ---------------------------------------------------------------- post parts


def parse_reactions(node: LexborNode) -> list[Reaction]:
    reactions = []
    for chip in node.css(".tgme_reaction"):
        emoji = custom_id = None
        count_text = ""
        # A chip is a short row: an emoji (<i class="emoji"> or <tg-emoji>) then the count.
        child = chip.first_child
        while child is not None:
            tag = child.tag
            if tag == "-text":
                count_text += child.text_content or ""
            elif tag == "tg-emoji":
                custom_id = child.attributes.get("emoji-id")
                glyph = child.text().strip()
                emoji = glyph or emoji
            elif tag == "i" and "emoji" in (child.attributes.get("class") or "").split():
                emoji = child.text().strip() or None
            child = child.next
        count_text = count_text.strip()
        paid = has_class(chip, "tgme_reaction_paid")
        if emoji is None and custom_id is None and not paid:
            # A bare "👍 12" chip: split the glyph from the number.
            m = _REACTION_COUNT.search(count_text)
            emoji = count_text[: m.start()].strip() if m else count_text or None
            count_text = m.group(1).strip() if m else ""
        count = parse_count(count_text)
        reactions.append(
            Reaction(
                position=len(reactions),
                emoji=emoji or None,
                custom_emoji_id=custom_id,
                count=count.value,
                count_text=count_text,
                count_precision=count.precision,
                paid=paid,
            )
        )
    return reactions


def visible_notices(message: LexborNode, labels: list[LexborNode], has_supported: bool) -> set[str]:
    """The notices a person actually sees on this post (see module docstring)."""
    found = set()
    for label in labels:
        text = " ".join(label.text().split()).lower()
        holder = inside(
            label,
            message,
            ("media_not_supported_cont", "tgme_widget_message_video_player",
             "tgme_widget_message_roundvideo_player"),
        )
        if holder is not None:
            classes = (holder.attributes.get("class") or "").split()
            if "media_not_supported_cont" in classes and has_supported:
                continue  # fallback for browsers that cannot show the post
            if "media_not_supported_cont" not in classes and "not_supported" not in classes:
                continue  # the player works; its label stays hidden
        found.add(NOTICE_FLAGS.get(text, "service" if text == "service message" else text))
    return found


# Everything parse_post needs from a post comes from one CSS query (a query per part was
# the largest cost per post); each element is then sorted by its class attribute, whose
# meaning is cached because the same few class strings repeat on every post.
PART_CLASSES = (
    "tgme_widget_message_bubble", "tgme_widget_message_date", "tgme_widget_message_views",
    "tgme_widget_message_meta", "tgme_widget_message_from_author", "tgme_widget_message_via_bot",
    "tgme_widget_message_forwarded_from", "tgme_widget_message_reply", "tgme_widget_message_link_preview",
    "tgme_widget_message_reactions", "media_supported_cont", "tgme_widget_message_error",
)
LIST_CLASSES = ("tgme_widget_message_text", "message_media_not_supported_label")
PARTS_SELECTOR = '[class*="tgme_widget_message_"], .media_supported_cont, .message_media_not_supported_label'


@lru_cache(maxsize=4096)
def part_roles(class_attribute: str) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """(part and list classes, is a media element, unknown tgme_widget_message_* classes)."""
    names = class_attribute.split()
    roles = tuple(n for n in names if n in PART_CLASSES or n in LIST_CLASSES)
    is_media = any(n in MEDIA_PARSERS for n in names)
    unknown = tuple(n for n in names if n.startswith("tgme_widget_message_") and n not in KNOWN_CLASSES)
    return roles, is_media, unknown


def post_parts(message: LexborNode) -> dict:
    """{class: first element} for PART_CLASSES, {class: [elements]} for LIST_CLASSES,
    plus "media" (media elements) and "unknown" ([(class, element)])."""
    parts: dict = {name: [] for name in LIST_CLASSES}
    parts["media"] = []
    parts["unknown"] = []
    seen = set()
    for node in message.css(PARTS_SELECTOR):
        # lexbor returns an element once per selector of the list it matches
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        roles, is_media, unknown = part_roles(node.attributes.get("class") or "")
        for name in roles:
            if name in LIST_CLASSES:
                parts[name].append(node)
            elif name not in parts:
                parts[name] = node
        if is_media:
            parts["media"].append(node)
        for name in unknown:
            parts["unknown"].append((name, node))
    return parts


def main_text_node(message: LexborNode, candidates: list[LexborNode]) -> LexborNode | None:
    """The post's own text element (not the reply quote, not the link preview)."""
    for node in candidates:
        if has_class(node, "js-message_reply_text"):
            continue
        if inside(node, message, ("tgme_widget_message_reply", "tgme_widget_message_link_preview")):
            continue
        # Album captions come wrapped in a second, identical text div.
        inner = node.css_first(".tgme_widget_message_text")
        return inner if inner is not None else node
    return None


def first_time(date_link: LexborNode) -> LexborNode | None:
    """date_link.css_first("time[datetime]") without a CSS query (the link holds one <time>)."""
    for element in date_link.traverse():
        if element.tag == "time" and "datetime" in element.attrs:
            return element
    return None


def edited_mark(meta: LexborNode | None) -> bool:
    if meta is None:
        return False
    child = meta.first_child
    while child is not None:
        if child.tag == "-text" and "edited" in (child.text_content or ""):
            return True
        child = child.next
    return False


def unknown_classes(found: list[tuple[str, LexborNode]]) -> list[str]:
    """tgme_widget_message_* classes we do not handle, on elements that carry content."""
    unknown = []
    for name, node in found:
        if name not in unknown and carries_content(node):
            unknown.append(name)
    return unknown


def carries_content(node: LexborNode) -> bool:
    if node.text().strip():
        return True
    if "background-image" in (node.attributes.get("style") or ""):
        return True
    return node.css_first("img, video, audio, picture, source, iframe") is not None


def fill_forward(post: Post, node: LexborNode) -> None:
    name = node.css_first(".tgme_widget_message_forwarded_from_name")
    if name is not None:
        post.forwarded_from_name = plain_text(name)
        href = name.attributes.get("href")
        if href:
            post.forwarded_from_url = absolute_url(href)
            post.forwarded_from_channel, post.forwarded_from_id = tme_target(href)
    author = node.css_first(".tgme_widget_message_forwarded_from_author")
    if author is not None:
        post.forwarded_from_author = plain_text(author)


def fill_reply(post: Post, node: LexborNode) -> None:
    post.reply_to_channel, post.reply_to_id = tme_target(node.attributes.get("href"))
    post.reply_to_author = plain_text(node.css_first(".tgme_widget_message_author_name"))
    quote = node.css_first(".tgme_widget_message_metatext, .tgme_widget_message_text")
    post.reply_to_text = plain_text(quote)


def fill_link_preview(post: Post, node: LexborNode) -> None:
    post.link_preview_url = absolute_url(node.attributes.get("href"))
    post.link_preview_site = plain_text(node.css_first(".link_preview_site_name"))
    post.link_preview_title = plain_text(node.css_first(".link_preview_title"))
    post.link_preview_description = plain_text(node.css_first(".link_preview_description"))
    image = node.css_first(".link_preview_image, .link_preview_right_image, .link_preview_video_thumb")
    post.link_preview_image = background_url(image)


def fill_text(post: Post, node: LexborNode) -> None:
    rich = rich_text(node, base_url=f"{TME}/s/{post.channel}")
    post.text = rich.plain()
    post.html = rich.safe_html()
    for href, text in rich.links:
        target = search_target(href.split("?q=", 1)[1]) if "?q=" in href else ""
        if target.startswith("#"):
            tag = target[1:] or text.lstrip("#")
            if tag and tag not in post.hashtags:
                post.hashtags.append(tag)
            continue
        if text.startswith("@"):
            username = text[1:]
            if username and username not in post.mentions:
                post.mentions.append(username)
        post.links.append(Link(url=href, domain=link_domain(href), text=text or None))


def parse_post(message: LexborNode, problems: list[str], parts: dict | None = None) -> Post | None:
    """One message block -> Post; None (with a problem line) when it has no id."""
    data_post = message.attributes.get("data-post") or ""
    channel, _, id_text = data_post.rpartition("/")
    if not channel or not id_text.isdigit():
        problems.append(f"message block without a readable data-post ({data_post!r}) skipped")
        return None
    post = Post(channel=channel, id=int(id_text), url=f"{TME}/{channel}/{id_text}")
    view = decode_data_view(message.attributes.get("data-view"))
    if "c" in view:
        try:
            post.channel_id = abs(int(view["c"]))
        except (TypeError, ValueError):
            pass
    if str(view.get("p", "")).endswith("g"):
        post.grouped_id = str(view["p"])

    if parts is None:
        parts = post_parts(message)
    bubble = parts.get("tgme_widget_message_bubble") or message
    date_link = parts.get("tgme_widget_message_date")
    time = first_time(date_link) if date_link is not None else None
    post.date = normalise_date(time.attributes.get("datetime")) if time is not None else None

    views = parts.get("tgme_widget_message_views")
    if views is not None:
        count = parse_count(views.text())
        post.views, post.views_text, post.views_precision = count.value, count.text, count.precision
    post.edited = edited_mark(parts.get("tgme_widget_message_meta"))
    post.author = plain_text(parts.get("tgme_widget_message_from_author"))
    via = parts.get("tgme_widget_message_via_bot")
    if via is not None:
        post.via_bot = (clean_text(via.text()) or "").lstrip("@") or tme_target(via.attributes.get("href"))[0]

    forward = parts.get("tgme_widget_message_forwarded_from")
    if forward is not None:
        fill_forward(post, forward)
    reply = parts.get("tgme_widget_message_reply")
    if reply is not None:
        fill_reply(post, reply)
    preview = parts.get("tgme_widget_message_link_preview")
    if preview is not None:
        fill_link_preview(post, preview)

    notices = visible_notices(
        message, parts["message_media_not_supported_label"], "media_supported_cont" in parts
    )
    is_service = has_class(message, "service_message") or "service" in notices
    text_node = main_text_node(message, parts["tgme_widget_message_text"])
    if is_service:
        post.kind = "service"
        post.service_text = plain_text(text_node)
    elif text_node is not None:
        fill_text(post, text_node)

    post.media = media_from_nodes(bubble, parts["media"])
    post.album_ids = [
        m.message_id for m in post.media if m.message_id is not None
    ] if post.grouped_id or len(post.media) > 1 else []
    post.media_too_big = "media_too_big" in notices or any(m.too_big for m in post.media)
    post.media_not_supported = "media_not_supported" in notices
    post.open_in_telegram = "open_in_telegram" in notices
    for notice in sorted(notices - set(NOTICE_FLAGS.values()) - {"service"}):
        problems.append(f"post {post.id}: unrecognised notice {notice!r}")

    reactions = parts.get("tgme_widget_message_reactions")
    if reactions is not None:
        post.reactions = parse_reactions(reactions)

    unknown = unknown_classes(parts["unknown"])
    if unknown and not is_service:
        post.kind = "unknown"
        post.raw_html = message.html
        problems.append(
            f"post {post.id}: unrecognised markup ({', '.join(unknown)}); kept as kind=unknown with its raw HTML"
        )
    return post


# ---------------------------------------------------------------- channel and page


def parse_counters(info: LexborNode) -> dict[str, Count]:
    counters = {}
    for counter in info.css(".tgme_channel_info_counter"):
        value = first_text(counter, ".counter_value")
        kind = (first_text(counter, ".counter_type") or "").lower()
        if not value or not kind:
            continue
        # "1 subscriber", "1 photo": use the plural as the key.
        key = kind if kind.endswith("s") else kind + "s"
        counters[key] = parse_count(value)
    return counters


def parse_channel_info(info: LexborNode, fallback_username: str | None) -> Channel:
    username_node = info.css_first(".tgme_channel_info_header_username")
    username = None
    if username_node is not None:
        username = (clean_text(username_node.text()) or "").lstrip("@") or None
    description = info.css_first(".tgme_channel_info_description")
    avatar = info.css_first(".tgme_channel_info_header .tgme_page_photo_image img")
    channel = Channel(
        username=username or fallback_username or "",
        title=plain_text(info.css_first(".tgme_channel_info_header_title")),
        avatar_url=absolute_url(avatar.attributes.get("src")) if avatar is not None else None,
        verified=info.css_first(".tgme_channel_info_header_labels .verified-icon") is not None,
        counters=parse_counters(info),
    )
    if description is not None:
        rich = rich_text(description, base_url=f"{TME}/s/{channel.username}")
        channel.description = rich.plain()
        channel.description_html = sanitise_html(rich.safe_html())
    return channel


def channel_from_message(message: LexborNode, username: str) -> Channel:
    """Embed pages have no channel header: read what the post shows."""
    avatar = message.css_first(".tgme_widget_message_user_photo img")
    owner = message.css_first(".tgme_widget_message_owner_name")
    # The name sits in a span; a verified channel has a "✔" icon next to it.
    name = owner.css_first("span") if owner is not None else None
    return Channel(
        username=username,
        title=plain_text(name if name is not None else owner),
        avatar_url=absolute_url(avatar.attributes.get("src")) if avatar is not None else None,
        verified=owner is not None and owner.css_first(".verified-icon") is not None,
    )


# ---------------------------------------------------------------- bounds: size, nesting, time
#
# A page is untrusted input. lexbor takes time that grows with the square of the nesting
# (200,000 nested <div>s: minutes), so deep markup has to go before lexbor sees it:
#
# - pages over MAX_PAGE_BYTES are refused (PageTooLarge);
# - a document with more than TAG_GATE "<" goes through `limit_depth` first, which drops
#   the tags nested deeper than DEPTH_LIMIT (their text stays). Below TAG_GATE lexbor's
#   worst case for nesting is ~0.2 s (16k nested <div>s), and the check is one
#   bytes.count (~3% of a parse); real t.me pages have up to ~4,500 "<" and are 8 to 18
#   elements deep. limit_depth itself costs about as much as a parse (pure Python, per
#   tag), hence the gate. Not covered: markup crafted so that HTML's error recovery
#   nests deeper than its tags say (formatting elements left open, which HTML re-opens
#   at every paragraph), which t.me never writes (see limit_depth);
# - in a smaller document, the parser's own walks (texts, `inside`) notice an element
#   deeper than DEPTH_LIMIT and raise TooDeep: the page is then read again through
#   `limit_depth`. Either way a post holding such markup is kept as kind="unknown" with
#   a problem naming the limit;
# - `parse_budget` bounds the time of a whole parse (see pipeline.read_page).

DEPTH_LIMIT = 256  # elements, counted from <html> (1); real pages: 8 to 18
MAX_PAGE_BYTES = 8 * 1024 * 1024  # real pages: up to ~0.25 MB
TAG_GATE = 16_384  # "<" in a document above which it goes through limit_depth
DEPTH_CHECK = 64  # nesting inside one text at which the walk checks the depth in the document
PARSE_BUDGET_SECONDS = 10.0  # per page; real pages take milliseconds
_DEPTH_STEPS = range(DEPTH_LIMIT + 2)  # parents of an element at DEPTH_LIMIT, the document, None


class TooDeep(ValueError):
    """Markup nested deeper than DEPTH_LIMIT where the parser walks it."""


class ParseTimeout(Exception):
    """The page took longer to parse than its time budget."""


def many_tags(data: bytes) -> bool:
    """More than TAG_GATE "<" (a tag takes at least 3 bytes: small pages are not counted)."""
    return len(data) > 3 * TAG_GATE and data.count(b"<") > TAG_GATE


def nesting_check(root: LexborNode, nesting: int) -> int:
    """Raise TooDeep if an element `nesting` levels below root lies deeper than
    DEPTH_LIMIT in the document; else the nesting at which to check again."""
    depth = 0
    node = root
    while node is not None and node.tag != "-document":
        depth += 1
        node = node.parent
    if depth + nesting > DEPTH_LIMIT:
        raise TooDeep(f"text markup nested deeper than {DEPTH_LIMIT} levels")
    return DEPTH_LIMIT - depth + 1


@contextmanager
def parse_budget(seconds: float | None = PARSE_BUDGET_SECONDS):
    """Raise ParseTimeout in the block once `seconds` have passed.

    SIGALRM, so only in a main thread (a crawl, a rebuild worker process) and where the
    platform has setitimer; elsewhere the block runs without a budget. A timer already
    running (pytest-timeout, a caller's own budget) is put back afterwards, and left in
    charge if it is due first. The signal is handled between Python bytecodes: a single
    long call into lexbor is not interrupted, which is why nesting is bounded before it.
    """
    if (not seconds or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_delay and outer_delay <= seconds:
        yield
        return
    started = time.monotonic()

    def out_of_time(signum, frame):
        raise ParseTimeout(f"parsing took longer than {seconds:g} s")

    outer_handler = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler if outer_handler is not None else signal.SIG_DFL)
        if outer_delay:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


# Tags as they nest in well-formed markup (t.me's own): groups 1 "/" of an end tag,
# 2 the name. Comments are skipped whole. "/>" closes nothing in HTML (but voids).
_TAG = re.compile(rb"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\t\n\f\r />]*)[^>]*>", re.S)
_DATA_POST = re.compile(rb'data-post="[^"]*?/(\d+)"')
_VOID = frozenset(b"area base br col embed hr img input keygen link meta param source track wbr "
                  b"basefont bgsound frame image".split())
_RAW_TEXT = frozenset(b"script style textarea title xmp".split())  # their content is not markup


def limit_depth(data: bytes, limit: int = DEPTH_LIMIT) -> tuple[bytes, list[int], list[int]]:
    """(data without the tags nested deeper than `limit`, where each dropped run starts, [])

    One pass over the tags, counting start tags against end tags as well-formed markup
    nests (t.me writes it so); past the limit every tag is dropped and the text kept.
    For a page within the limit the result is `data` itself. Markup crafted to nest
    deeper in HTML's error recovery than its tags say (misnested formatting elements,
    which HTML re-opens) is not counted here: that would take a second HTML tree
    builder, and t.me does not write it; the parse's time budget still bounds it.
    """
    depth, pieces, runs, copied, dropping = 0, [], [], 0, False
    raw_until = None
    for m in _TAG.finditer(data):
        closing, name = m.group(1), m.group(2)
        if name is None:  # a comment
            continue
        name = name.lower()
        if raw_until is not None:  # inside <script>, <style>...: only its end tag counts
            if not (closing and name == raw_until):
                continue
            raw_until = None
        if closing:
            drop = depth > limit
            depth = max(0, depth - 1)
        elif name in _VOID:
            drop = depth >= limit
        else:
            depth += 1
            drop = depth > limit
            if name in _RAW_TEXT and not drop:
                raw_until = name
        if drop:
            if not dropping:
                runs.append(m.start())
                dropping = True
            pieces.append(data[copied:m.start()])
            copied = m.end()
        else:
            dropping = False
    if not runs:
        return data, runs, []
    pieces.append(data[copied:])
    return b"".join(pieces), runs, []


def post_ids_at(data: bytes, positions: list[int]) -> list[int | None]:
    """The id of the message block each position of data lies in (the last data-post
    before it); None before the first one."""
    starts, ids = [], []
    for m in _DATA_POST.finditer(data):
        starts.append(m.start())
        ids.append(int(m.group(1)))
    found = []
    for position in positions:
        i = bisect_right(starts, position)
        found.append(ids[i - 1] if i else None)
    return found


def read_input(html: str | bytes) -> tuple[str, bytes]:
    """(text, UTF-8 bytes) of the page, or NotTelegramPage for empty and binary input."""
    text, data, _ = decode_page(html)
    return text, data


def decode_page(html: str | bytes) -> tuple[str, bytes, list[str]]:
    """(text, UTF-8 bytes, problems) of the page; NotTelegramPage for empty and binary
    input, PageTooLarge past MAX_PAGE_BYTES.

    lexbor parses UTF-8 bytes (selectolax encodes a str itself), so the bytes are made
    once here and handed over; the checks run on whichever form is cheap: a NUL search
    is a memchr on bytes but a slow scan of a 4-byte-per-character str (emoji pages).
    Bytes that are not UTF-8 in a page with t.me markup become U+FFFD (one bad byte must
    not cost the page its posts), with a problem naming where; without t.me markup they
    are binary input, as before.
    """
    problems: list[str] = []
    if isinstance(html, (bytes, bytearray)):
        data = bytes(html)
        if len(data) > MAX_PAGE_BYTES:
            raise PageTooLarge(f"{len(data):,} bytes, more than the {MAX_PAGE_BYTES:,} the parser reads")
        if not data or data.isspace():  # same as `not data.strip()`, without the copy
            raise NotTelegramPage("empty input: no HTML to parse")
        if b"\x00" in data:
            raise NotTelegramPage("binary input (NUL bytes): not an HTML page")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            if b"tme_" not in data:
                raise NotTelegramPage(f"binary input: not UTF-8 text ({error.reason} at byte {error.start})") from None
            text = data.decode("utf-8", "replace")
            problems.append(invalid_utf8_problem(data, text, error.start))
            data = text.encode("utf-8")
    elif isinstance(html, str):
        text = html
        # "ignore" as selectolax does for str input (lone surrogates are dropped)
        data = text.encode("utf-8", "ignore")
        if len(data) > MAX_PAGE_BYTES:
            raise PageTooLarge(f"{len(data):,} bytes, more than the {MAX_PAGE_BYTES:,} the parser reads")
    else:
        raise NotTelegramPage(f"expected HTML text or bytes, got {type(html).__name__}")
    if not text or text.isspace():
        raise NotTelegramPage("empty input: no HTML to parse")
    if b"\x00" in data:  # for str input; bytes with a NUL were refused above
        raise NotTelegramPage("binary input (NUL characters): not an HTML page")
    return text, data, problems


def invalid_utf8_problem(data: bytes, text: str, first: int) -> str:
    """Where the bytes that are not UTF-8 are: how many, the first few, their posts."""
    count = text.count("\ufffd") - data.count("\ufffd".encode())  # one U+FFFD per bad sequence
    positions = [first]
    view = memoryview(data)
    position = first
    while len(positions) < 20:  # each step decodes from the last bad byte to the next one
        try:
            codecs.utf_8_decode(view[position:], "strict", True)
            break
        except UnicodeDecodeError as error:
            if position + error.start != positions[-1]:
                positions.append(position + error.start)
            position += error.end
    ids = [i for i in dict.fromkeys(post_ids_at(data, positions)) if i is not None]
    where = f"at byte {first}" if count == 1 else (
        f"at bytes {', '.join(map(str, positions[:5]))}{', ...' if count > 5 else ''}")
    posts = f" (in post {', '.join(map(str, ids[:10]))}{', ...' if count > len(positions) else ''})" if ids else ""
    return (f"{count} byte sequence{'s' if count > 1 else ''} not valid UTF-8 {where}{posts} "
            "read as U+FFFD; the posts are kept")


def decode_input(html: str | bytes) -> str:
    """Text of the page, or NotTelegramPage for empty and binary input."""
    return read_input(html)[0]


def describe_other_page(tree: LexborHTMLParser) -> str:
    title = tree.css_first("title")
    name = clean_text(title.text()) if title is not None else None
    if tree.css_first(".tgme_page") is not None:
        return (
            f"a t.me profile page ({name!r}), not a channel preview: the channel has no public "
            "web preview, or t.me/s/<channel> redirected to t.me/<channel>"
        )
    if tree.css_first('[class*="tgme_widget_message"]') is not None:
        return "an HTML fragment with t.me widget markup but no message block or channel header"
    return f"not a Telegram page (title: {name!r})" if name else "not a Telegram page (no t.me markup found)"


def head_links(head: LexborNode | None) -> list[tuple[str | None, str | None]]:
    """[(rel, href)] of every <link rel> in <head>."""
    # A query on <head> alone: "head link[rel]" on the tree would walk the whole body.
    if head is None:
        return []
    return [(link.attributes.get("rel"), link.attributes.get("href")) for link in head.css("link[rel]")]


def pagination(more_links: list[LexborNode], links: list[tuple[str | None, str | None]], page: Page) -> None:
    for more in more_links:
        before, after = more.attributes.get("data-before"), more.attributes.get("data-after")
        if before and before.isdigit():
            page.before = int(before)
        if after and after.isdigit():
            page.after = int(after)
    for rel, href in links:
        href = absolute_url(href)
        if rel == "prev":
            page.prev_url = href
        elif rel == "next":
            page.next_url = href
        elif rel == "canonical":
            page.canonical_url = href


# Every query parse_page needs on the whole document, as one query: each query walks
# every node of the page, which costs about as much as the rest of a small post.
DOCUMENT_SELECTOR = (
    ".tgme_widget_message, .tgme_channel_info, .tgme_channel_history, .tme_no_messages_found, "
    "a.tme_messages_more"
)


def document_parts(tree: LexborHTMLParser) -> tuple[list[LexborNode], LexborNode | None, LexborNode | None,
                                                    list[LexborNode]]:
    """(message blocks, channel info, history or no-messages block, "more" links), in page order."""
    messages, more_links = [], []
    info = history = None
    seen = set()
    for node in tree.css(DOCUMENT_SELECTOR):
        # lexbor returns an element once per selector of the list it matches
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        classes = (node.attributes.get("class") or "").split()
        if "tgme_widget_message" in classes:
            messages.append(node)
        if info is None and "tgme_channel_info" in classes:
            info = node
        if history is None and ("tgme_channel_history" in classes or "tme_no_messages_found" in classes):
            history = node
        if "tme_messages_more" in classes and node.tag == "a":
            more_links.append(node)
    return messages, info, history, more_links


def looks_truncated(text: str) -> bool:
    """A full document that stops before </html> was cut off (fragments have no <html>)."""
    head = text[:2048]
    if "<html" not in head and "<html" not in head.lower():
        return False
    tail = text[-4096:]
    return "</html>" not in tail and "</html>" not in tail.lower()


def parse_page(html: str | bytes, url: str | None = None) -> Page:
    """Parse a t.me/s/<channel> page or a t.me/<channel>/<id>?embed=1 page.

    Raises NotTelegramPage for anything else, PageTooLarge past MAX_PAGE_BYTES, and
    TooDeep when markup stays nested deeper than DEPTH_LIMIT after `limit_depth`.
    """
    text, data, problems = decode_page(html)
    if b"tgme_" not in data and b"tme_" not in data:
        if many_tags(data):
            data = limit_depth(data)[0]
        tree = LexborHTMLParser(data)
        raise NotTelegramPage(describe_other_page(tree))
    deep = None
    if many_tags(data):
        deep = limit_depth(data)
    else:
        try:
            return read_tree(text, data, url, problems, None)
        except TooDeep:  # seen by a walk: read the page again within the limit
            deep = limit_depth(data)
    return read_tree(text, data, url, problems, deep)


DEEP_MARKUP = ("markup nested deeper than {limit} levels (byte {position}); "
               "the tags past that depth were dropped, their text kept")


def read_tree(text: str, data: bytes, url: str | None, problems: list[str],
              deep: tuple[bytes, list[int], list[int]] | None) -> Page:
    """parse_page's reading of the document; `deep` is limit_depth's result when it ran."""
    problems = list(problems)  # a first reading that stopped at TooDeep leaves the caller's as it was
    deep_posts: dict[int, str] = {}  # post id: what limit_depth changed in it
    if deep is not None:
        source = data
        data, runs, closed = deep
        for positions, what in ((runs, DEEP_MARKUP),):
            outside = []
            for position, post_id in zip(positions, post_ids_at(source, positions)):
                if post_id is None:
                    outside.append(position)
                elif post_id not in deep_posts:
                    deep_posts[post_id] = what.format(limit=DEPTH_LIMIT, position=position)
            if outside:
                found = what.format(limit=DEPTH_LIMIT, position=outside[0])
                more = f" (and {len(outside) - 1} more places)" if len(outside) > 1 else ""
                problems.append(f"outside the posts: {found}{more}")
    # Without mutation events: the tree as written (the same for t.me pages, a little faster).
    tree = LexborHTMLParser(data, options=LexborDocumentOptions.WO_EVENTS)
    messages, info, history, more_links = document_parts(tree)
    if not messages and info is None and history is None:
        hidden = f"; markup nested deeper than {DEPTH_LIMIT} levels from byte {runs[0]} was dropped" if (
            deep is not None and runs) else ""
        raise NotTelegramPage(describe_other_page(tree) + hidden)

    body = tree.body
    body_classes = (body.attributes.get("class") or "").split() if body is not None else []
    page = Page(channel=None, is_embed="body_widget_post" in body_classes or bool(url and "embed=1" in url),
                problems=problems)
    pagination(more_links, head_links(tree.head), page)
    truncated = looks_truncated(text)

    for message in messages:
        # The message's parts come from one query, which also finds an error block.
        parts = post_parts(message)
        if "tgme_widget_message_error" in parts or has_class(message, "err_message"):
            page.not_found = True
            continue
        post = parse_post(message, page.problems, parts)
        if post is None:
            continue
        if post.id in deep_posts:
            post.kind = "unknown"
            post.raw_html = message.html
            page.problems.append(f"post {post.id}: {deep_posts.pop(post.id)}; kept as kind=unknown")
        if post.date is None:
            if truncated and message.mem_id == messages[-1].mem_id:
                # The document stops inside this block: what we read is incomplete.
                page.complete = False
                last = page.posts[-1].id if page.posts else None
                page.problems.append(
                    f"page is truncated after post {last}; 1 incomplete message block "
                    f"(post {post.id}) skipped"
                )
                continue
            page.problems.append(f"post {post.id}: no date found")
        page.posts.append(post)

    if truncated and page.complete:
        page.complete = False
        last = page.posts[-1].id if page.posts else None
        page.problems.append(
            f"page is truncated after post {last} (the document ends before </html>); "
            "no incomplete message block found"
        )

    username = None
    if page.posts:
        username = page.posts[0].channel
    else:
        main = tree.css_first("main.tgme_main[data-url]")
        if main is not None:
            username = main.attributes.get("data-url", "").strip("/") or None
    if info is not None:
        page.channel = parse_channel_info(info, username)
    elif messages and username:
        first = next((m for m in messages if m.attributes.get("data-post")), None)
        page.channel = channel_from_message(first, username) if first is not None else Channel(username=username)
    elif username:
        page.channel = Channel(username=username)
    if page.channel is not None:
        page.channel.channel_id = next((p.channel_id for p in page.posts if p.channel_id), None)
    for post_id, found in deep_posts.items():  # in a message block that gave no post
        page.problems.append(f"message block {post_id}: {found}")
    if page.not_found:
        page.posts = []
    return page
