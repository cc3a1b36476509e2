"""Render parsed-record model objects back into t.me HTML.

The fake Telegram server serves these pages, and round-trip tests feed them to the
parser. The markup follows the structure of real t.me/s pages and embed pages
(class names, nesting, attribute formats, entity escaping, pagination links); the
wording, images and decoration are the project's own.

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

from telegram_datasette.model import Channel, Media, Post, Reaction

BASE_URL = "https://t.me"

MORE_NOTICE_LABELS = {
    "too_big": "Media is too big",
    "not_supported": "This media is not supported in your browser",
    "open_telegram": "Please open Telegram to view this post",
}

# A small own drawing for the bubble tail; real pages carry an SVG in the same spot.
BUBBLE_TAIL = (
    '<i class="tgme_widget_message_bubble_tail">\n'
    '      <svg class="bubble_icon" width="9px" height="20px" viewBox="0 0 9 20">'
    '<path class="background" fill="#ffffff" d="M9,0 L9,20 L0,2 Z"></path></svg>\n'
    "    </i>"
)

# Emoji glyphs the demo uses; text_to_html wraps them like Telegram does.
KNOWN_EMOJI = (
    "❤️", "❤", "🔥", "👍", "👏", "😁", "🎉", "🙏", "🤔", "😢", "🇳🇴", "🇷🇺", "📌",
    "✨", "📍", "🗓", "📷", "🎵", "⚡", "❄️", "☀️", "🌧", "🏒", "⚽", "🎻", "📖", "🤝",
    "💬", "🚢", "🐟", "🌲", "🏔", "🎄", "⭐", "🕊",
)
_EMOJI_RE = re.compile("|".join(re.escape(e) for e in sorted(KNOWN_EMOJI, key=len, reverse=True)))
# Hashtags, mentions and URLs, as Telegram auto-links them in post text.
_ENTITY_RE = re.compile(
    r"(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)»])"
    r"|(?<![\w#])(?P<tag>#[^\W_][\w]*)"
    r"|(?<![\w@])(?P<mention>@[A-Za-z][A-Za-z0-9_]{3,31})"
)


# ---------------------------------------------------------------- small formatting helpers

def format_count(n: int | None) -> str:
    """Rounded like Telegram: 630, 3.06K, 149K, 1.51M (three significant digits)."""
    if n is None:
        return ""
    if n < 1000:
        return str(n)
    for unit, size in (("K", 1_000), ("M", 1_000_000), ("B", 1_000_000_000)):
        value = n / size
        if value < 999.5 or unit == "B":
            decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
            text = f"{value:.{decimals}f}"
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return text + unit
    return str(n)


def duration_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def attr(value) -> str:
    return escape(str(value), quote=True)


def text_escape(value: str) -> str:
    # Telegram writes "!" as &#33; in message text; reproduce it so parsers meet it.
    return escape(value, quote=True).replace("&#x27;", "&#39;").replace("!", "&#33;")


def emoji_url(glyph: str) -> str:
    code = "".join(f"{b:02X}" for b in glyph.replace("\ufe0f", "").encode("utf-8"))
    return f"//telegram.org/img/emoji/40/{code}.png"


def emoji_html(glyph: str, custom_id: str | None = None) -> str:
    inner = f"<i class=\"emoji\" style=\"background-image:url('{emoji_url(glyph)}')\"><b>{glyph}</b></i>"
    if custom_id:
        return f'<tg-emoji emoji-id="{attr(custom_id)}">{inner}</tg-emoji>'
    return inner


def link_html(url: str, text: str) -> str:
    return (
        f'<a href="{attr(url)}" target="_blank" rel="noopener" '
        f"onclick=\"return confirm('Open this link?\\n\\n'+this.href);\">{text}</a>"
    )


def _plain_html(text: str, custom_emoji: dict[str, str]) -> str:
    """Escape text, wrap emoji, keep line breaks as <br/>."""
    out = []
    pos = 0
    for m in _EMOJI_RE.finditer(text):
        out.append(text_escape(text[pos:m.start()]))
        out.append(emoji_html(m.group(0), custom_emoji.get(m.group(0))))
        pos = m.end()
    out.append(text_escape(text[pos:]))
    return "".join(out).replace("\n", "<br/>")


def text_to_html(text: str | None, custom_emoji: dict[str, str] | None = None) -> str:
    """Plain post text to Telegram's message HTML: links, #tags, @mentions, emoji, <br/>."""
    if not text:
        return ""
    custom_emoji = custom_emoji or {}
    out = []
    pos = 0
    for m in _ENTITY_RE.finditer(text):
        out.append(_plain_html(text[pos:m.start()], custom_emoji))
        token = m.group(0)
        if m.group("url"):
            out.append(link_html(token, text_escape(token)))
        elif m.group("tag"):
            out.append(f'<a href="?q={quote(token, safe="")}">{text_escape(token)}</a>')
        else:
            out.append(f'<a href="https://t.me/{token[1:]}">{token}</a>')
        pos = m.end()
    out.append(_plain_html(text[pos:], custom_emoji))
    return "".join(out)


def unix_time(iso: str | None) -> int:
    if not iso:
        return 0
    return int(datetime.fromisoformat(iso).timestamp())


def short_time(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%H:%M") if iso else ""


def data_view(channel_id: int | None, post: Post, seen_at: int) -> str:
    """base64url JSON without padding, as in data-view: c, p (with g for albums), t, h."""
    p: int | str = post.grouped_id or post.id
    digest = hashlib.sha1(f"{channel_id}/{post.id}".encode()).hexdigest()[:18]
    payload = json.dumps({"c": -(channel_id or 0), "p": p, "t": seen_at, "h": digest},
                         separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def stable_number(value) -> int:
    """A per-media number like the ones real photo wraps carry, stable across runs."""
    return int(hashlib.sha1(str(value).encode()).hexdigest()[:15], 16)


def initials(title: str | None) -> str:
    words = (title or "?").split()
    return "".join(w[0] for w in words[:2]).upper() or "?"


def bgcolor(username: str) -> str:
    return f"bgcolor{sum(username.encode()) % 7}"


# ---------------------------------------------------------------- message parts

def post_url(base_url: str, channel: str, post_id: int) -> str:
    return f"{base_url}/{channel}/{post_id}"


def render_user(channel: Channel, base_url: str) -> str:
    avatar = f'<img src="{attr(channel.avatar_url)}">' if channel.avatar_url else ""
    return (
        f'<div class="tgme_widget_message_user"><a href="{base_url}/{channel.username}">'
        f'<i class="tgme_widget_message_user_photo {bgcolor(channel.username)}" '
        f'data-content="{attr(initials(channel.title)[:1])}">{avatar}</i></a></div>'
    )


def render_owner(channel: Channel, base_url: str) -> str:
    return (
        '<div class="tgme_widget_message_author accent_color">'
        f'<a class="tgme_widget_message_owner_name" href="{base_url}/{channel.username}">'
        f'<span dir="auto">{text_escape(channel.title or channel.username)}</span></a></div>'
    )


def render_forward(post: Post) -> str:
    if not post.forwarded_from_name:
        return ""
    name = f'<span dir="auto">{text_escape(post.forwarded_from_name)}</span>'
    if post.forwarded_from_url:
        source = (f'<a class="tgme_widget_message_forwarded_from_name" '
                  f'href="{attr(post.forwarded_from_url)}">{name}</a>')
    else:  # forwarded from a person who hides their account: no link
        source = f'<span class="tgme_widget_message_forwarded_from_name">{name}</span>'
    if post.forwarded_from_author:
        source += f' (<span dir="auto">{text_escape(post.forwarded_from_author)}</span>)'
    return f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;{source}</div>'


def render_reply(post: Post, base_url: str) -> str:
    if post.reply_to_id is None:
        return ""
    channel = post.reply_to_channel or post.channel
    text = text_escape(post.reply_to_text or "")
    return (
        f'<a class="tgme_widget_message_reply user-color-default" href="{base_url}/{channel}/{post.reply_to_id}">'
        '<div class="tgme_widget_message_author accent_color">'
        f'<span class="tgme_widget_message_author_name" dir="auto">{text_escape(post.reply_to_author or "")}</span>'
        '</div>'
        f'<div class="tgme_widget_message_text js-message_reply_text" dir="auto">{text}</div></a>'
    )


def render_notice(label: str, link: str | None = None, extra_class: str = "") -> str:
    view = (f'<a href="{attr(link)}" class="message_media_view_in_telegram">VIEW IN TELEGRAM</a>'
            if link else '<span class="message_media_view_in_telegram">VIEW IN TELEGRAM</span>')
    cls = f"message_media_not_supported_wrap {extra_class}".strip()
    return (
        f'<div class="{cls}">\n  <div class="message_media_not_supported">\n'
        f'    <div class="message_media_not_supported_label">{label}</div>\n'
        f"    {view}\n  </div>\n</div>"
    )


def render_photo(media: Media, href: str) -> str:
    width = media.width or 800
    ratio = 100 * (media.height or 600) / width
    return (
        f'<a class="tgme_widget_message_photo_wrap {stable_number(media.url)} {media.position}_460000{media.position}" '
        f"href=\"{href}\" style=\"width:{width}px;background-image:url('{media.url}')\">\n"
        f'  <div class="tgme_widget_message_photo" style="padding-top:{ratio:.4f}%"></div>\n</a>'
    )


def render_video(media: Media, href: str) -> str:
    width = media.width or 1280
    ratio = 100 * (media.height or 720) / width
    thumb = f"<i class=\"tgme_widget_message_video_thumb\" style=\"background-image:url('{media.thumbnail_url}')\"></i>"
    if media.too_big:
        return (
            f'<a class="tgme_widget_message_video_player not_supported js-message_video_player" href="{href}">{thumb}\n'
            f'<div class="tgme_widget_message_video_wrap" style="width:{width}px;padding-top:{ratio:.4f}%">\n</div>\n'
            '<div class="message_video_play js-message_video_play"></div>\n'
            f'<time class="message_video_duration js-message_video_duration">{duration_text(media.duration_seconds)}</time>\n'
            f'{render_notice(MORE_NOTICE_LABELS["too_big"])}</a>'
        )
    return (
        f'<a class="tgme_widget_message_video_player js-message_video_player" href="{href}">{thumb}\n'
        f'<div class="tgme_widget_message_video_wrap" style="width:{width}px;padding-top:{ratio:.4f}%">\n'
        f'  <video src="{media.url}" class="tgme_widget_message_video js-message_video" width="100%" height="100%"></video>\n'
        '</div>\n<div class="message_video_play js-message_video_play"></div>\n'
        f'<time class="message_video_duration js-message_video_duration">{duration_text(media.duration_seconds)}</time>\n'
        # every video carries this hidden notice; the page shows it only without <video> support
        f'{render_notice(MORE_NOTICE_LABELS["not_supported"])}</a>'
    )


def render_gif(media: Media, href: str) -> str:
    width = media.width or 480
    ratio = 100 * (media.height or 360) / width
    return (
        f'<a class="tgme_widget_message_video_player js-message_video_player" href="{href}">'
        f"<i class=\"tgme_widget_message_video_thumb\" style=\"background-image:url('{media.thumbnail_url}')\"></i>\n"
        f'<div class="tgme_widget_message_video_wrap" style="width:{width}px;padding-top:{ratio:.4f}%">\n'
        f'  <video src="{media.url}" class="tgme_widget_message_video js-message_video" width="100%" height="100%" '
        'preload muted autoplay loop playsinline></video>\n</div>\n'
        f'{render_notice(MORE_NOTICE_LABELS["not_supported"])}</a>'
    )


def render_round_video(media: Media, href: str) -> str:
    return (
        '<div class="tgme_widget_message_roundvideo_player js-message_roundvideo_player">\n'
        '<div class="tgme_widget_message_roundvideo_wrap">\n'
        f"<i class=\"tgme_widget_message_roundvideo_thumb\" style=\"background-image:url('{media.thumbnail_url}')\"></i>\n"
        f'<video class="tgme_widget_message_roundvideo js-message_roundvideo" src="{media.url}" width="100%" '
        'height="100%" preload="" muted="" autoplay="" loop="" playsinline=""></video>\n'
        '<div class="tgme_widget_message_roundvideo_muted"></div>\n'
        '<div class="tgme_widget_message_roundvideo_border"></div>\n</div>\n'
        f'{render_notice(MORE_NOTICE_LABELS["not_supported"], href, "js-message_roundvideo_not_supported")}\n'
        '<div class="tgme_widget_message_roundvideo_play js-message_roundvideo_play"></div>\n'
        '<time class="tgme_widget_message_roundvideo_duration js-message_roundvideo_duration">'
        f"{duration_text(media.duration_seconds)}</time>\n</div>"
    )


def render_voice(media: Media, href: str) -> str:
    bars = "".join(f'<s style="height:{(i * 37) % 100}%;"></s>' for i in range(40))
    return (
        f'<a class="tgme_widget_message_voice_player js-message_voice_player" href="{href}">\n'
        f'<audio class="tgme_widget_message_voice js-message_voice" src="{media.url}" data-ogg width="100%" '
        f'data-waveform="{",".join(str((i * 7) % 32) for i in range(40))}"></audio>\n'
        '<div class="tgme_widget_message_voice_play accent_bghover"></div>\n'
        '<div class="tgme_widget_message_voice_wrap">\n'
        '<div class="tgme_widget_message_voice_progress_wrap js-message_voice_progress_wrap">\n'
        f'<div class="tgme_widget_message_voice_progress_bg"><div class="bar">{bars}</div></div>\n'
        '<div class="tgme_widget_message_voice_progress js-message_voice_progress"><div class="bar"></div></div>\n'
        "</div>\n"
        f'<time class="tgme_widget_message_voice_duration js-message_voice_duration">{duration_text(media.duration_seconds)}</time>\n'
        "</div>\n</a>"
    )


def render_document(media: Media, href: str) -> str:
    audio = media.kind == "audio"
    extra = media.performer if audio else media.size_text
    return (
        f'<a class="tgme_widget_message_document_wrap" href="{href}">\n'
        f'  <div class="tgme_widget_message_document_icon accent_bg{" audio" if audio else ""}"></div>\n'
        '  <div class="tgme_widget_message_document">\n'
        f'    <div class="tgme_widget_message_document_title accent_color" dir="auto">{text_escape(media.title or "")}</div>\n'
        f'    <div class="tgme_widget_message_document_extra" dir="auto">{text_escape(extra or "")}</div>\n'
        "  </div>\n</a>"
    )


def render_sticker(media: Media, href: str) -> str:
    return (
        f'{render_notice(MORE_NOTICE_LABELS["not_supported"], href, "media_not_supported_cont")}\n'
        '<div class="tgme_widget_message_sticker_wrap media_supported_cont">'
        f"<i class=\"tgme_widget_message_sticker js-sticker_image\" style=\"background-image:url('{media.url}')\" "
        f'data-webp="{media.url}"></i></div>'
    )


def render_poll(media: Media, href: str) -> str:
    options = "".join(
        '<div class="tgme_widget_message_poll_option">'
        f'<div class="tgme_widget_message_poll_option_percent">{o.percent or 0}%</div>'
        '<div class="tgme_widget_message_poll_option_value">'
        f'<div class="tgme_widget_message_poll_option_text">{text_escape(o.text)}</div>'
        f'<div class="tgme_widget_message_poll_option_bar accent_bg" style="width:{o.percent or 0}%"></div>'
        "</div></div>"
        for o in media.poll_options
    )
    return (
        '<div class="tgme_widget_message_poll js-poll">\n'
        f'  <div class="tgme_widget_message_poll_question">{text_escape(media.poll_question or "")}</div>\n'
        f'  <div class="tgme_widget_message_poll_type">{text_escape(media.poll_type or "Anonymous Poll")}</div>\n'
        f'  <a class="tgme_widget_message_poll_options" href="{href}">{options}</a>\n</div>'
    )


def render_location(media: Media, href: str) -> str:
    lat, lon = media.latitude, media.longitude
    link = media.url or f"https://maps.google.com/maps?q={lat},{lon}&ll={lat},{lon}&z=16"
    image = media.thumbnail_url or f"https://static-maps.example.invalid/map?ll={lon},{lat}&z=15&pt={lon},{lat}"
    return (
        f'<a class="tgme_widget_message_location_wrap" href="{attr(link)}">\n'
        f"  <div class=\"tgme_widget_message_location\" style=\"background-image:url('{attr(image)}')\"></div>\n"
        "</a>"
    )


def render_contact(media: Media, href: str) -> str:
    # No real capture of a contact post exists; class names follow Telegram's widget CSS.
    return (
        f'<a class="tgme_widget_message_contact_wrap" href="{href}">\n'
        f'  <i class="tgme_widget_message_contact_photo bgcolor1" data-content="{attr(initials(media.title))}"></i>\n'
        f'  <div class="tgme_widget_message_contact_name" dir="auto">{text_escape(media.title or "")}</div>\n'
        f'  <div class="tgme_widget_message_contact_phone">{text_escape(media.phone or "")}</div>\n</a>'
    )


MEDIA_RENDERERS = {
    "photo": render_photo, "video": render_video, "gif": render_gif,
    "round_video": render_round_video, "voice": render_voice, "audio": render_document,
    "document": render_document, "sticker": render_sticker, "poll": render_poll,
    "location": render_location, "contact": render_contact,
}


def render_album_item(media: Media, href: str, left: int, top: int) -> str:
    style = f"left:{left}px;top:{top}px;width:150px;height:150px;margin-right:2px;margin-bottom:2px;"
    if media.kind == "video":
        player_cls = "grouped_media_wrap blured not_supported" if media.too_big else "grouped_media_wrap blured"
        video = ("" if media.too_big else
                 f'  <div class="tgme_widget_message_video_wrap grouped_media js-message_video_wrap" style="left:0;right:0;top:0;bottom:0;">\n'
                 f'    <video src="{media.url}" class="tgme_widget_message_video js-message_video" width="100%" height="100%"></video>\n  </div>\n')
        label = MORE_NOTICE_LABELS["too_big" if media.too_big else "not_supported"]
        return (
            f'<a class="tgme_widget_message_video_player {player_cls} js-message_video_player" style="{style}" '
            f'data-ratio="1.7777777777778" href="{href}">\n'
            f"  <i class=\"tgme_widget_message_video_thumb\" style=\"background-image:url('{media.thumbnail_url}')\"></i>\n"
            f"{video}"
            '  <div class="message_video_play js-message_video_play"></div>\n'
            f'<time class="message_video_duration js-message_video_duration">{duration_text(media.duration_seconds)}</time>\n'
            f"{render_notice(label)}</a>"
        )
    return (
        f'<a class="tgme_widget_message_photo_wrap grouped_media_wrap blured js-message_photo" '
        f"style=\"{style}background-image:url('{media.url}')\" data-ratio=\"1.3333333333333\" href=\"{href}\">\n"
        '  <div class="grouped_media_helper" style="left:0;right:0;top:0;bottom:0;">\n'
        '    <div class="tgme_widget_message_photo grouped_media" style="left:0;right:0;top:0;bottom:0;"></div>\n'
        "  </div>\n</a>"
    )


def render_album(post: Post, base_url: str) -> str:
    items = []
    for i, media in enumerate(post.media):
        item_id = media.message_id or (post.album_ids[i] if i < len(post.album_ids) else post.id + i)
        href = f"{post_url(base_url, post.channel, item_id)}?single"
        items.append(render_album_item(media, href, (i % 3) * 152, (i // 3) * 152))
    rows = (len(post.media) + 2) // 3
    return (
        '<div class="tgme_widget_message_grouped_wrap js-message_grouped_wrap" data-margin-w="2" data-margin-h="2" style="width:454px;">\n'
        f'  <div class="tgme_widget_message_grouped js-message_grouped" style="padding-top:{100 * rows * 152 / 454:.3f}%">\n'
        f'    <div class="tgme_widget_message_grouped_layer js-message_grouped_layer" style="width:454px;height:{rows * 152}px">\n'
        f'      {"".join(items)}\n    </div>\n  </div>\n</div>'
    )


def render_media(post: Post, base_url: str) -> str:
    if post.album_ids and len(post.media) > 1:
        return render_album(post, base_url)
    href = post_url(base_url, post.channel, post.id)
    return "".join(MEDIA_RENDERERS[m.kind](m, href) for m in post.media)


def render_text(post: Post) -> str:
    if post.kind == "service":
        body = text_escape(post.service_text or post.text or "")
    else:
        body = post.html if post.html is not None else text_to_html(post.text)
    if not body:
        return ""
    div = f'<div class="tgme_widget_message_text js-message_text" dir="auto">{body}</div>'
    if post.album_ids and len(post.media) > 1:
        # Real album captions come in a doubled text div; keep that quirk.
        div = f'<div class="tgme_widget_message_text js-message_text" dir="auto">{div}</div>'
    return div


def render_link_preview(post: Post) -> str:
    if not post.link_preview_url:
        return ""
    parts = [f'<a class="tgme_widget_message_link_preview" href="{attr(post.link_preview_url)}">']
    if post.link_preview_site:
        parts.append(f'  <div class="link_preview_site_name accent_color" dir="auto">{text_escape(post.link_preview_site)}</div>')
    if post.link_preview_image:
        parts.append(f"  <i class=\"link_preview_image\" style=\"background-image:url('{post.link_preview_image}');padding-top:52.5%\"></i>")
    if post.link_preview_title:
        parts.append(f'  <div class="link_preview_title" dir="auto">{text_escape(post.link_preview_title)}</div>')
    if post.link_preview_description:
        parts.append(f'  <div class="link_preview_description" dir="auto">{text_escape(post.link_preview_description)}</div>')
    parts.append("</a>")
    return "\n".join(parts)


def render_reaction(reaction: Reaction) -> str:
    if reaction.paid:
        return f'<span class="tgme_reaction tgme_reaction_paid"><i class="icon icon-telegram-stars"></i>{reaction.count_text}</span>'
    if reaction.custom_emoji_id and not reaction.emoji:
        return f'<span class="tgme_reaction"><tg-emoji emoji-id="{attr(reaction.custom_emoji_id)}"></tg-emoji>{reaction.count_text}</span>'
    return f'<span class="tgme_reaction">{emoji_html(reaction.emoji or "", reaction.custom_emoji_id)}{reaction.count_text}</span>'


def render_reactions(post: Post) -> str:
    if not post.reactions:
        return ""
    chips = "".join(render_reaction(r) for r in post.reactions)
    return f'<div class="tgme_widget_message_reactions js-message_reactions">{chips}</div>'


def render_footer(post: Post, base_url: str, *, embed: bool = False) -> str:
    href = post_url(base_url, post.channel, post.id)
    voters = ""
    poll = next((m for m in post.media if m.kind == "poll"), None)
    if poll is not None:
        total = getattr(poll, "voters", None) or 0
        voters = f'<span class="tgme_widget_message_voters">{format_count(total)}</span><span class="copyonly"> voters</span>'
    views = ""
    if post.views is not None and post.kind != "service":
        views = (f'<span class="tgme_widget_message_views">{post.views_text or format_count(post.views)}</span>'
                 '<span class="copyonly"> views</span>')
    meta = ""
    if post.author:
        meta += f'<span class="tgme_widget_message_from_author" dir="auto">{text_escape(post.author)}</span>,&nbsp;'
    if post.edited:
        meta += "edited &nbsp;"
    if embed:
        when = datetime.fromisoformat(post.date).strftime("%b %-d at %H:%M") if post.date else ""
        link = (f'<div class="tgme_widget_message_link accent_color"><a href="{href}" class="link_anchor flex_ellipsis">'
                f'<span class="ellipsis">{base_url.split("//")[-1]}/{post.channel}</span>/{post.id}</a></div>\n')
        return (
            f'<div class="tgme_widget_message_footer js-message_footer">\n{link}'
            f'  <div class="tgme_widget_message_info js-message_info">\n    {voters}{views}'
            f'<span class="tgme_widget_message_meta">{meta}<a class="tgme_widget_message_date" href="{href}">'
            f'<time datetime="{post.date}" class="datetime">{when}</time></a></span>\n  </div>\n</div>'
        )
    return (
        '<div class="tgme_widget_message_footer compact js-message_footer">\n'
        f'  <div class="tgme_widget_message_info short js-message_info">\n    {voters}{views}'
        f'<span class="tgme_widget_message_meta">{meta}<a class="tgme_widget_message_date" href="{href}">'
        f'<time datetime="{post.date}" class="time">{short_time(post.date)}</time></a></span>\n  </div>\n</div>'
    )


def message_classes(post: Post) -> str:
    classes = ["tgme_widget_message"]
    if post.kind == "service":
        classes += ["text_not_supported_wrap", "service_message"]
    else:
        classes.append("text_not_supported_wrap")
        kinds = {m.kind for m in post.media}
        if "sticker" in kinds:
            classes += ["sticker_media", "no_bubble"]
        elif "round_video" in kinds:
            classes += ["roundvideo_media", "no_bubble"]
    return " ".join(classes + ["js-widget_message"])


def render_body(post: Post, media: str) -> str:
    """Media and text, with the post-level notices that sit around them."""
    text = render_text(post)
    if post.open_in_telegram:  # nothing the web preview can show: the notice is visible
        return media + render_notice(MORE_NOTICE_LABELS["open_telegram"], post.url) + text
    if post.media_not_supported and not any(m.kind == "sticker" for m in post.media):
        return media + render_notice(MORE_NOTICE_LABELS["not_supported"], post.url) + text
    if post.html and "<tg-emoji" in post.html:
        # Real pages wrap posts with custom emoji like this; the fallback stays hidden.
        return (f'<div class="media_supported_cont">{media}{text}</div><div class="media_not_supported_cont">'
                f'{render_notice(MORE_NOTICE_LABELS["open_telegram"], post.url)}</div>\n')
    return media + text


def render_message(post: Post, channel: Channel, *, base_url: str = BASE_URL,
                   seen_at: int = 0, embed: bool = False) -> str:
    """One tgme_widget_message block (without the wrap)."""
    extra = ""
    if embed:
        extra = f' data-peer="c{channel.channel_id}_{post.id}" data-post-id="{post.id}"'
    return (
        f'<div class="{message_classes(post)}" data-post="{post.channel}/{post.id}" '
        f'data-view="{data_view(channel.channel_id, post, seen_at)}"{extra}>\n'
        f"  {render_user(channel, base_url)}\n"
        '  <div class="tgme_widget_message_bubble">\n'
        + ('    <a class="tgme_widget_message_bubble_logo" href="//core.telegram.org/widgets"></a>\n' if embed else "")
        + f"    {BUBBLE_TAIL}\n"
        f"    {render_owner(channel, base_url)}\n"
        f"{render_forward(post)}{render_reply(post, base_url)}"
        f"{render_body(post, render_media(post, base_url))}\n{render_link_preview(post)}"
        f"{render_reactions(post)}{render_footer(post, base_url, embed=embed)}\n"
        "  </div>\n</div>"
    )


def render_message_wrap(post: Post, channel: Channel, *, base_url: str = BASE_URL, seen_at: int = 0) -> str:
    return ('<div class="tgme_widget_message_wrap js-widget_message_wrap">'
            f"{render_message(post, channel, base_url=base_url, seen_at=seen_at)}</div>")


# ---------------------------------------------------------------- whole pages

def render_head(title: str, *, description: str = "", image: str | None = None,
                links: list[tuple[str, str]] = (), widget: bool = False, suffix: bool = True) -> str:
    link_tags = "\n".join(f'<link rel="{rel}" href="{attr(href)}">' for rel, href in links)
    og = "" if widget else (
        f'<meta property="og:title" content="{attr(title)}">\n'
        f'<meta property="og:image" content="{attr(image or "")}">\n'
        '<meta property="og:site_name" content="Telegram">\n'
        f'<meta property="og:description" content="{attr(description)}">\n'
        '<meta name="twitter:card" content="summary">\n'
    )
    page_title = "Telegram Widget" if widget else escape(title) + (" – Telegram" if suffix else "")
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n"
        f"    <title>{page_title}</title>\n"
        '    <meta name="viewport" content="width=device-width, initial-scale=1.0" />\n'
        f"{og}{link_tags}\n"
        '    <link href="//telegram.org/css/widget-frame.css?75" rel="stylesheet">\n'
        "  </head>\n"
    )


def render_counters(channel: Channel) -> str:
    order = ("subscribers", "photos", "videos", "files", "links")
    names = [n for n in order if n in channel.counters] + [n for n in channel.counters if n not in order]
    return "".join(
        f'<div class="tgme_channel_info_counter"><span class="counter_value">{channel.counters[n].text}</span> '
        f'<span class="counter_type">{n}</span></div>'
        for n in names
    )


def render_channel_info(channel: Channel, base_url: str) -> str:
    avatar = f'<img src="{attr(channel.avatar_url)}">' if channel.avatar_url else ""
    labels = '<i class="verified-icon"> ✔</i>' if channel.verified else ""
    description = ""
    if channel.description:
        body = channel.description_html or _plain_html(channel.description, {})
        description = f'\n          <div class="tgme_channel_info_description">{body}</div>'
    title = text_escape(channel.title or channel.username)
    subscribers = channel.counters.get("subscribers")
    return f"""    <header class="tgme_header search_collapsed">
  <div class="tgme_container">
    <div class="tgme_header_search">
      <form class="tgme_header_search_form" action="/s/{channel.username}">
        <input class="tgme_header_search_form_input js-header_search" placeholder="Search" name="q" autocomplete="off" value="" />
      </form>
    </div>
    <div class="tgme_header_right_column">
      <section class="tgme_right_column">
        <div class="tgme_channel_info">
          <div class="tgme_channel_info_header">
            <i class="tgme_page_photo_image {bgcolor(channel.username)}" data-content="{attr(initials(channel.title))}">{avatar}</i>
            <div class="tgme_channel_info_header_title_wrap">
              <div class="tgme_channel_info_header_title"><span dir="auto">{title}</span></div>
              <div class="tgme_channel_info_header_labels">{labels}</div>
            </div>
            <div class="tgme_channel_info_header_username"><a href="{base_url}/{channel.username}">@{channel.username}</a></div>
          </div>
          <div class="tgme_channel_info_counters">{render_counters(channel)}</div>{description}
        </div>
      </section>
    </div>
    <div class="tgme_header_info">
      <a class="tgme_header_link" href="{base_url}/{channel.username}">
        <div class="tgme_header_title_wrap"><div class="tgme_header_title"><span dir="auto">{title}</span></div></div>
        <div class="tgme_header_counter">{subscribers.text + " subscribers" if subscribers else ""}</div>
      </a>
    </div>
  </div>
</header>
"""


def more_link(username: str, *, before: int | None = None, after: int | None = None) -> str:
    if before is not None:
        a = f'<a href="/s/{username}?before={before}" class="tme_messages_more js-messages_more" data-before="{before}"></a>'
    else:
        a = f'<a href="/s/{username}?after={after}" class="tme_messages_more js-messages_more" data-after="{after}"></a>'
    return f'<div class="tgme_widget_message_centered js-messages_more_wrap">{a}</div>'


def last_id(post: Post) -> int:
    return max(post.album_ids) if post.album_ids else post.id


# Used by layout="renamed": same content, but no class a parser knows.
RENAMED_LAYOUT = (("tgme_widget_message", "tgme_post_card"), ("js-widget_message", "js-post_card"))


def render_channel_page(channel: Channel, posts: list[Post], *, before: int | None = None,
                        after: int | None = None, base_url: str = BASE_URL, more_link: bool = True,
                        layout: str = "current", has_older: bool | None = None,
                        has_newer: bool | None = None, seen_at: int | None = None) -> str:
    """A whole t.me/s/<channel> page.

    `before`/`after` are the data-before/data-after values of the "more" links (the
    oldest and newest id shown); by default they are derived from `posts`, with the
    older link whenever the first shown post is not id 1 (`has_older` overrides) and
    the newer link only on non-newest pages (`has_newer`).
    """
    posts = sorted(posts, key=lambda p: p.id)
    name = channel.username
    first = posts[0].id if posts else None
    last = last_id(posts[-1]) if posts else None
    if has_older is None:
        has_older = bool(posts) and first > 1
    if has_newer is None:
        has_newer = False
    before = before if before is not None else (first if has_older else None)
    after = after if after is not None else (last if has_newer else None)
    links = []
    if before is not None:
        links.append(("prev", f"/s/{name}?before={before}"))
    if after is not None:
        links.append(("next", f"/s/{name}?after={after}"))
    if last is not None:
        links.append(("canonical", f"/s/{name}?before={last + 1}"))
    if seen_at is None:
        seen_at = max((unix_time(p.date) for p in posts), default=0)
    messages = "".join(render_message_wrap(p, channel, base_url=base_url, seen_at=seen_at) for p in posts)
    top = _more(name, before=before) if more_link and before is not None else ""
    bottom = _more(name, after=after) if more_link and after is not None else ""
    page = (
        render_head(channel.title or name, description=channel.description or "", image=channel.avatar_url, links=links)
        + '  <body class="widget_frame_base tgme_webpreview emoji_image thin_box_shadow tme_mode no_transitions">\n'
        + render_channel_info(channel, base_url)
        + f'<main class="tgme_main" data-url="/{name}">\n  <div class="tgme_container">\n'
        + '    <section class="tgme_channel_history js-message_history">\n      '
        + top + messages + bottom
        + "\n    </section>\n  </div>\n</main>\n"
        + '    <script src="//telegram.org/js/widget-frame.js?68"></script>\n  </body>\n</html>\n'
        + "<!-- page generated by the project's fake Telegram -->\n"
    )
    if layout == "renamed":
        for old, new in RENAMED_LAYOUT:
            page = page.replace(old, new)
    return page


_more = more_link  # the keyword argument of render_channel_page shadows the function


def render_embed_page(channel: Channel, post: Post | None, *, base_url: str = BASE_URL) -> str:
    """t.me/<channel>/<id>?embed=1; a "Post not found" widget when post is None."""
    head = render_head("Telegram Widget", widget=True)
    body_open = '<body class="widget_frame_base tgme_widget body_widget_post emoji_image nodark">\n'
    if post is None:
        widget = (
            '<div class="tgme_widget_message err_message js-widget_message">\n'
            '  <div class="tgme_widget_message_user"><i class="tgme_widget_message_user_photo" data-content="!"></i></div>\n'
            '  <div class="tgme_widget_message_bubble">\n'
            f"    {BUBBLE_TAIL}\n"
            '    <div class="tgme_widget_message_error" dir="auto">Post not found</div>\n  </div>\n</div>'
        )
    else:
        widget = render_message(post, channel, base_url=base_url, seen_at=unix_time(post.date), embed=True)
    return head + body_open + widget + "\n</body>\n</html>\n"


def render_contact_page(username: str, *, title: str | None = None, description: str | None = None,
                        subscribers: str | None = None, preview: bool = False) -> str:
    """t.me/<name>: the "contact" landing page, which has no channel history."""
    title = title or f"Telegram: Contact @{username}"
    button = (f'\n    <div class="tgme_page_context_link_wrap"><a class="tgme_page_context_link" '
              f'href="/s/{username}">Preview channel</a></div>') if preview else ""
    extra = f'\n    <div class="tgme_page_extra">{escape(subscribers)} subscribers</div>' if subscribers else ""
    desc = f'\n    <div class="tgme_page_description" dir="auto">{escape(description)}</div>' if description else ""
    return (
        render_head(title, description=description or "", suffix=False)
        + '  <body class="tgme_page_body">\n<div class="tgme_page_wrap">\n  <div class="tgme_page">\n'
        f'    <div class="tgme_page_title" dir="auto"><span dir="auto">{escape(title)}</span></div>'
        f"{extra}{desc}\n"
        f'    <div class="tgme_page_action"><a class="tgme_action_button_new" href="tg://resolve?domain={username}">'
        f"View in Telegram</a></div>{button}\n  </div>\n</div>\n  </body>\n</html>\n"
    )
