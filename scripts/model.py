"""The records a t.me page yields. Parsing produces them, storing consumes them.

Plain dataclasses so that both sides stay pure and testable; `dataclasses.asdict`
turns them into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Kinds of media item, as used in the public schema's `media.kind`.
MEDIA_KINDS = (
    "photo", "video", "gif", "round_video", "voice", "audio", "document",
    "sticker", "location", "contact", "poll",
)


@dataclass
class Count:
    """A rounded counter as the page shows it: "1.51M" is 1,510,000 ± 5,000."""

    text: str
    value: int | None
    precision: int | None  # half of the last shown digit's unit; 0 when exact


@dataclass
class Channel:
    username: str
    title: str | None = None
    description: str | None = None  # plain text, line breaks kept
    description_html: str | None = None  # sanitised
    avatar_url: str | None = None
    verified: bool = False
    channel_id: int | None = None  # numeric id, positive (from data-view "c")
    # subscribers, photos, videos, files, links (only those the page shows)
    counters: dict[str, Count] = field(default_factory=dict)


@dataclass
class PollOption:
    position: int
    text: str
    percent: int | None
    voters: int | None = None  # exact, from a Telegram Desktop export


@dataclass
class Media:
    position: int  # 0-based order inside the post
    kind: str  # one of MEDIA_KINDS
    message_id: int | None = None  # album items have their own message id
    url: str | None = None
    thumbnail_url: str | None = None
    duration_seconds: int | None = None
    duration_text: str | None = None
    title: str | None = None  # document/audio title, sticker emoji, contact name
    performer: str | None = None  # audio
    size_text: str | None = None  # document size, e.g. "1.2 MB"
    width: int | None = None
    height: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone: str | None = None  # contact
    too_big: bool = False  # "Media is too big"
    # poll
    poll_question: str | None = None
    poll_type: str | None = None  # e.g. "anonymous poll", "quiz"
    poll_options: list[PollOption] = field(default_factory=list)
    # the file, as a Telegram Desktop export describes it (the web shows none of this)
    file_name: str | None = None
    file_size: int | None = None  # bytes, exact
    mime_type: str | None = None
    file_path: str | None = None  # relative to the export's result.json
    file_status: str | None = None  # "included", "missing" (named but absent), "not included"


@dataclass
class Link:
    url: str
    domain: str | None
    text: str | None


@dataclass
class Reaction:
    position: int
    emoji: str | None  # the glyph, when the page shows one
    custom_emoji_id: str | None
    count: int | None
    count_text: str
    count_precision: int | None = None
    paid: bool = False


@dataclass
class Post:
    channel: str  # username as in data-post, original case
    id: int
    url: str
    # "message" for ordinary posts (see `content_kind`), "service", "unknown"
    kind: str = "message"
    date: str | None = None  # ISO 8601 UTC
    text: str | None = None  # plain text, line breaks kept, custom emoji as glyph
    html: str | None = None  # sanitised HTML of the text
    views: int | None = None
    views_text: str | None = None
    views_precision: int | None = None
    edited: bool = False
    author: str | None = None  # author signature
    channel_id: int | None = None  # from data-view
    grouped_id: str | None = None  # data-view "p" for albums, e.g. "2173g"
    album_ids: list[int] = field(default_factory=list)  # ids of every album item
    forwarded_from_name: str | None = None
    forwarded_from_channel: str | None = None
    forwarded_from_id: int | None = None
    forwarded_from_url: str | None = None
    forwarded_from_author: str | None = None
    reply_to_id: int | None = None
    reply_to_channel: str | None = None
    reply_to_author: str | None = None
    reply_to_text: str | None = None
    via_bot: str | None = None
    link_preview_url: str | None = None
    link_preview_site: str | None = None
    link_preview_title: str | None = None
    link_preview_description: str | None = None
    link_preview_image: str | None = None
    media_too_big: bool = False
    media_not_supported: bool = False  # "This media is not supported in your browser"
    open_in_telegram: bool = False  # "Please open Telegram to view this post"
    service_text: str | None = None  # for kind == "service"
    raw_html: str | None = None  # kept for kind == "unknown"
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    # What only a Telegram Desktop export knows (stored by scripts/desktop_export.py)
    edited_at: str | None = None  # ISO 8601 UTC: the time of the last edit
    service_action: str | None = None  # e.g. "pin_message", for kind == "service"
    forwarded_from_channel_id: int | None = None  # numeric id of the forwarded channel
    # posts columns this observation cannot know (an export shows no views): the stored
    # value is kept rather than overwritten with None
    unknown: tuple[str, ...] = ()

    @property
    def content_kind(self) -> str:
        """What a person would call the post: text, photo, album, poll, service..."""
        if self.kind != "message":
            return self.kind
        if len(self.media) > 1:
            return "album"
        if self.media:
            return self.media[0].kind
        return "text"


@dataclass
class Page:
    """One t.me/s page or one embed page, parsed."""

    channel: Channel | None
    posts: list[Post] = field(default_factory=list)
    is_embed: bool = False
    before: int | None = None  # data-before of the "load older" link
    after: int | None = None  # data-after of the "load newer" link
    prev_url: str | None = None  # <link rel="prev">
    next_url: str | None = None  # <link rel="next">
    canonical_url: str | None = None
    not_found: bool = False  # embed page for a post that does not exist
    complete: bool = True  # False when the document was cut off
    problems: list[str] = field(default_factory=list)  # human-readable, per page

    @property
    def unknown_count(self) -> int:
        return sum(1 for p in self.posts if p.kind == "unknown")


class NotTelegramPage(ValueError):
    """The input is not a t.me page (empty, binary, or some other site)."""


class PageTooLarge(ValueError):
    """The input is larger than the parser reads (parse.MAX_PAGE_BYTES)."""
