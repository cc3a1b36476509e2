"""How posts look in Datasette: sanitised text, links to t.me, media thumbnails, reactions,
and the data for the post page (templates/row-telegram-posts.html).

Defence in depth: the parser already stores `posts.html` sanitised, but everything HTML
from the database is sanitised again here with an allow-list (nh3) before it is marked safe,
and every URL put in an attribute must be http(s) (or tg: for text links); anything else is
shown as escaped text. Everything not handled here is escaped by Datasette itself.

Values as people read them, on the HTML pages of tables (never in JSON or CSV, which
render_cell does not touch; query results are left as Datasette shows them): reactions as
emoji (a custom emoji by its fallback glyph, else a neutral one, the id in the title; paid
reactions as a star), counters with thousands separators and Telegram's rounded text when
it says something else ("23,700,000 (23.7M)"), times as "2026-03-01 14:05 UTC" with the
stored value in the title, digests as their first 12 characters, and Telegram's
placeholder avatars (data: URIs) as a small picture rather than base64 text.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

import nh3
from datasette import hookimpl
from datasette.utils import tilde_encode
from markupsafe import Markup

from telegram_datasette.schema import media_item, media_item_sql, post_key

SAFE_TAGS = {"a", "b", "strong", "i", "em", "u", "s", "code", "pre", "blockquote", "br", "span", "p"}
SANITISER = nh3.Cleaner(
    tags=SAFE_TAGS,
    clean_content_tags={"script", "style", "svg", "math", "iframe", "object", "embed", "noscript", "template", "textarea", "title"},
    attributes={"a": {"href"}},
    allowed_classes={"span": {"tg-spoiler"}},
    url_schemes={"http", "https", "tg"},
    link_rel="noopener noreferrer nofollow ugc",
)
UNSAFE_URL_CHARS = re.compile(r"[\"'<>`\s\\]")
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
TME = "https://t.me"


def sanitise(fragment: str | None) -> Markup:
    return Markup(SANITISER.clean(fragment or ""))


def web_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) URL with a host, else None."""
    if not url or not isinstance(url, str):
        return None
    if UNSAFE_URL_CHARS.search(url.strip()):
        return None  # quotes, brackets or whitespace: not a URL Telegram would give
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def link(url: str | None, text=None) -> Markup | None:
    safe = web_url(url)
    if safe is None:
        return None
    return Markup('<a href="{}" rel="noopener noreferrer nofollow">{}</a>').format(safe, text if text is not None else safe)


def thumbnail(url: str | None, alt: str = "") -> Markup | None:
    safe = web_url(url)
    if safe is None or not safe.startswith("https://"):
        return None
    return Markup(
        '<img class="tg-thumb" src="{}" alt="{}" loading="lazy" referrerpolicy="no-referrer" '
        'style="max-width:120px;max-height:120px">'
    ).format(safe, alt)


def tme_post_url(channel, post_id) -> str | None:
    """https://t.me/<channel>/<id>, built only from a valid username and an integer id."""
    if not isinstance(channel, str) or not USERNAME.match(channel):
        return None
    try:
        return f"{TME}/{channel}/{int(post_id)}"
    except (TypeError, ValueError):
        return None


def row_path(datasette, database: str, channel: str, post_id) -> str:
    return datasette.urls.row(database, "posts", tilde_encode(post_key(channel, int(post_id))))


# --- reactions as emoji ------------------------------------------------------------------
# `reactions.reaction` is the emoji, "custom:<id>" or "paid"; `emoji` is the glyph, or the
# custom emoji's id when the page showed no glyph, or "paid".
NEUTRAL_EMOJI = "\u25cc"  # ◌, for a custom emoji whose glyph the page did not show
PAID_EMOJI = "\u2b50"  # ⭐, a paid reaction (Telegram Stars)
DIGITS = re.compile(r"^[0-9]{5,25}$")


def reaction_markup(reaction, emoji=None, custom_emoji_id=None, paid=None) -> Markup | None:
    """A reaction as its emoji: a custom emoji by its fallback glyph when the database has
    one, else a neutral glyph, with the id in the title; a paid reaction as a star."""
    key = reaction if isinstance(reaction, str) else ""
    glyph = emoji if isinstance(emoji, str) and emoji.strip() else None
    if paid or key == "paid":
        return Markup('<span class="tg-emoji tg-paid" title="paid reaction (Telegram Stars)">{}</span>').format(PAID_EMOJI)
    custom = custom_emoji_id or (key[len("custom:"):] if key.startswith("custom:") else None)
    if custom:
        if glyph is None or glyph == str(custom) or DIGITS.match(glyph):
            glyph = NEUTRAL_EMOJI
        return Markup('<span class="tg-emoji tg-custom-emoji" title="custom emoji {}">{}</span>').format(custom, glyph)
    if glyph is None and not key:
        return None
    return Markup("{}").format(glyph or key)


def reactions_html(reactions: list[dict]) -> Markup:
    items = [
        Markup('<span class="tg-reaction">{} {}</span>').format(
            reaction_markup(r["reaction"], r["emoji"]) or "", r["count_text"] or r["count"] or "")
        for r in reactions
    ]
    return Markup('<div class="tg-reactions">{}</div>').format(Markup(" ").join(items)) if items else Markup("")


# --- the media store (media.db, served by datasette-media: metadata.yml) ------------------
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def stored_url(kind: str, sha256) -> str | None:
    """/-/media/file/<sha256> (the original) or /-/media/thumbnail/<sha256> (at most 480 px wide)."""
    return f"/-/media/{kind}/{sha256}" if isinstance(sha256, str) and SHA256.match(sha256) else None


def stored_picture(shown, original=None, alt: str = "") -> Markup | None:
    """The stored copy of an image as a thumbnail, opening the original (`original`, else
    the image itself) on click; None when nothing was stored."""
    src = stored_url("thumbnail", shown)
    if src is None:
        return None
    return Markup(
        '<a class="tg-stored" href="{}"><img class="tg-thumb" src="{}" alt="{}" loading="lazy" '
        'style="max-width:120px;max-height:120px"></a>'
    ).format(stored_url("file", original) or stored_url("file", shown), src, alt)


def media_html(media: list[dict]) -> Markup:
    """Each item's stored copy (media_files: its thumbnail, or the file itself when it is an
    image), else the CDN's thumbnail, else its kind."""
    parts = []
    for item in media:
        kind = item.get("kind") or "media"
        image_file = item.get("file_sha256") if (item.get("file_mime") or "").startswith("image/") else None
        picture = stored_picture(item.get("thumbnail_sha256") or image_file, item.get("file_sha256"), kind)
        if picture is None:
            picture = thumbnail(item.get("thumbnail_url") or (item.get("url") if item.get("kind") == "photo" else None), kind)
        label = Markup('<span class="tg-media-kind">{}</span>').format(kind)
        if picture is None and stored_url("file", item.get("file_sha256")):
            label = Markup('<a class="tg-stored tg-media-kind" href="{}">{}</a>').format(
                stored_url("file", item.get("file_sha256")), kind)
        parts.append(picture or label)
    return Markup('<div class="tg-media">{}</div>').format(Markup(" ").join(parts)) if parts else Markup("")


# Rendering cost matters: Datasette calls render_cell once per cell (about 4,300 calls for a
# page of 100 posts), so the hook returns None at once for cells it does not handle (one dict
# lookup), and what it renders is cached by the values it is rendered from.

_EXTRAS: dict = {}
EXTRAS_WINDOW = 100  # posts of the same channel whose media and reactions one query fetches
_EXTRAS_LIMIT = 20000

EXTRAS_SQL = """
select p.id, p.children_sha256,
  (select json_group_array(json_array(kind, url, thumbnail_url, title, file_sha256, file_mime, thumbnail_sha256))
     from (select kind, url, thumbnail_url, title, {stored} from media m
           where m.channel = p.channel and m.post_id = p.id order by position)) as media,
  (select json_group_array(json_array(reaction, emoji, count, count_text))
     from (select reaction, emoji, count, count_text from reactions r
           where r.channel = p.channel and r.post_id = p.id order by position)) as reactions
from posts p
where p.channel = ? and p.id between ? and ?
"""
# Per media item, what media_files says was stored: the file (and its type) and its thumbnail.
MEDIA_STORED_SQL = """(select sha256 from media_files f where f.item = {file} and f.status = 'stored') as file_sha256,
  (select mime from media_files f where f.item = {file} and f.status = 'stored') as file_mime,
  (select sha256 from media_files f where f.item = {thumbnail} and f.status = 'stored') as thumbnail_sha256""".format(
    file=media_item_sql("file", "m.channel", "m.post", "m.position"),
    thumbnail=media_item_sql("thumbnail", "m.channel", "m.post", "m.position"))
EXTRAS_SQL = EXTRAS_SQL.replace("{stored}", MEDIA_STORED_SQL)
MEDIA_FIELDS = ("kind", "url", "thumbnail_url", "title", "file_sha256", "file_mime", "thumbnail_sha256")


def _extras_from_json(media_json: str | None, reactions_json: str | None) -> dict:
    return {
        "media": [dict(zip(MEDIA_FIELDS, m)) for m in json.loads(media_json or "[]")],
        "reactions": [dict(zip(("reaction", "emoji", "count", "count_text"), r)) for r in json.loads(reactions_json or "[]")],
    }


def _remember_extras(key, extras) -> None:
    if len(_EXTRAS) >= _EXTRAS_LIMIT:
        _EXTRAS.clear()
    _EXTRAS[key] = extras


async def post_extras(datasette, database: str, channel: str, post_id: int, digest: str | None) -> dict:
    """Media and reactions of one post, cached by the post's child digest (an unchanged
    digest means unchanged media and reactions).

    A table page shows posts of a channel by date, i.e. mostly neighbouring ids, and
    Datasette renders its cells one after the other, so a miss fetches (in one query, one
    hop to the SQL thread) the media and reactions of the EXTRAS_WINDOW posts of the
    channel below this id as well: the next rows of the page are then hits."""
    key = (database, channel, post_id, digest)
    if digest is not None and key in _EXTRAS:
        return _EXTRAS[key]
    db = datasette.get_database(database)
    try:
        low = int(post_id) - EXTRAS_WINDOW
    except (TypeError, ValueError):
        low = post_id
    found = None
    for row_id, row_digest, media_json, reactions_json in (await db.execute(
        EXTRAS_SQL, [channel, low, post_id],
    )).rows:
        extras = _extras_from_json(media_json, reactions_json)
        if row_id == post_id:
            found = extras
        if row_digest is not None:
            _remember_extras((database, channel, row_id, row_digest), extras)
    if found is None:  # not a stored post (or an id that is not an integer): ask directly
        rows = (await db.execute(
            "select (select json_group_array(json_array(" + ", ".join(MEDIA_FIELDS) + ")) from ("
            " select kind, url, thumbnail_url, title, " + MEDIA_STORED_SQL + " from media m"
            " where channel = ? and post_id = ? order by position)),"
            " (select json_group_array(json_array(reaction, emoji, count, count_text)) from ("
            " select reaction, emoji, count, count_text from reactions where channel = ? and post_id = ? order by position))",
            [channel, post_id, channel, post_id],
        )).rows
        found = _extras_from_json(*rows[0])
    if digest is not None:
        # The row's own digest is what the caller's key uses (the window stored the table's).
        _remember_extras(key, found)
    return found


def _value(row, name):
    """A column of the row being rendered; a foreign key Datasette expanded is a dict."""
    try:
        value = row[name]
    except (KeyError, IndexError):
        return None
    return value["value"] if isinstance(value, dict) and "value" in value else value


# Rendered cells, by everything they are rendered from. Bounded: cleared when full.
_RENDERED: dict = {}
_RENDERED_LIMIT = 20000


def _remember(key, markup):
    if len(_RENDERED) >= _RENDERED_LIMIT:
        _RENDERED.clear()
    _RENDERED[key] = markup
    return markup


def _post_html(value, media, reactions) -> Markup:
    return Markup('<div class="tg-post"><div class="tg-text">{}</div>{}{}</div>').format(
        sanitise(value), media_html(media), reactions_html(reactions)
    )


def _posts_html(row, value, column, database, datasette):
    channel, post_id = _value(row, "channel"), _value(row, "id")
    if channel is None or post_id is None:
        return _text_div(value)
    digest = _value(row, "children_sha256")
    key = ("posts.html", database, channel, post_id, digest, value)
    if digest is not None:
        cached = _RENDERED.get(key)
        if cached is not None:
            return cached  # no coroutine, no SQL

    async def inner():
        extras = await post_extras(datasette, database, channel, post_id, digest)
        markup = _post_html(value, extras["media"], extras["reactions"])
        return _remember(key, markup) if digest is not None else markup

    return inner


def _by_value(render):
    """A renderer of one value, cached by that value (the value decides the output)."""

    def cached(row, value, column, database, datasette):
        key = (render, value)
        try:
            return _RENDERED[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value
            return render(value)
        result = render(value)
        if result is not None:
            _remember(key, result)
        return result

    return cached


def _text_div(value) -> Markup:
    return Markup('<div class="tg-text">{}</div>').format(sanitise(value))


def _forwarded_from_name(row, value, column, database, datasette):
    if not value:
        return None
    original = tme_post_url(_value(row, "forwarded_from_channel"), _value(row, "forwarded_from_id"))
    if original:
        return Markup('<a href="{}" rel="noopener noreferrer nofollow" title="original post">{}</a>').format(original, value)
    return None


def _raw_html(value) -> Markup | None:
    if not value:
        return None
    return Markup("<code>{}</code>").format(value[:300] + ("…" if len(value) > 300 else ""))


# --- values as people read them (HTML only: render_cell never touches JSON or CSV) --------

def _reaction_cell(row, value, column, database, datasette):
    return reaction_markup(_value(row, "reaction"), _value(row, "emoji"), _value(row, "custom_emoji_id"), _value(row, "paid"))


def _snapshot_reaction(row, value, column, database, datasette):
    """reaction_snapshots has only the key: a custom emoji's glyph comes from the post's
    current reactions row (its primary key), when it has one."""
    if not isinstance(value, str) or not value.startswith("custom:"):
        return reaction_markup(value)
    channel, post_id = _value(row, "channel"), _value(row, "post_id")
    key = ("reaction_snapshots.reaction", database, channel, post_id, value)
    cached = _RENDERED.get(key)
    if cached is not None:
        return cached

    async def inner():
        rows = (await datasette.get_database(database).execute(
            "select emoji from reactions where channel = ? and post_id = ? and reaction = ?",
            [channel, post_id, value])).rows
        return _remember(key, reaction_markup(value, rows[0][0] if rows else None))

    return inner


@functools.lru_cache(maxsize=8192, typed=True)
def count_markup(value, text=None, precision=None) -> Markup | None:
    """23700000 and "23.7M" -> 23,700,000 (23.7M): the number with thousands separators,
    and the rounded text Telegram shows when it says something else."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None and isinstance(text, str) and text.strip():
            return Markup('<span class="tg-count" title="as Telegram shows it">{}</span>').format(text.strip())
        return None
    shown = f"{value:,}"
    text = text.strip() if isinstance(text, str) else ""
    differs = bool(text) and text.replace(",", "").replace("\u202f", "").replace(" ", "") != str(value)
    if not differs:
        return None if shown == str(value) else Markup('<span class="tg-count">{}</span>').format(shown)
    title = f"Telegram shows {text}"
    if isinstance(precision, int) and not isinstance(precision, bool) and precision > 0:
        title += f" (\u00b1{precision:,})"
    return Markup(
        '<span class="tg-count" style="white-space:nowrap" title="{}">{} <span class="tg-rounded">({})</span></span>'
    ).format(title, shown, text)


def _count_cell(row, value, column, database, datasette):
    try:
        return count_markup(value, _value(row, f"{column}_text"), _value(row, f"{column}_precision"))
    except TypeError:  # an unhashable value (not from SQLite)
        return None


@functools.lru_cache(maxsize=8192, typed=True)  # crawl times repeat on every row a crawl wrote
def compact_date(value) -> Markup | None:
    """An ISO 8601 time as 2026-03-01 14:05 UTC, the stored value in the title."""
    if not isinstance(value, str) or len(value) < 16 or value[4:5] != "-" or value[10:11] not in ("T", " "):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)  # naive times are UTC already (the schema's rule)
    return Markup('<time datetime="{}" title="{}" style="white-space:nowrap">{} UTC</time>').format(
        value, value, moment.strftime("%Y-%m-%d %H:%M"))


def _date_cell(row, value, column, database, datasette):
    return compact_date(value) if isinstance(value, str) else None


HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{16,128}$")


def short_hash(value) -> Markup | None:
    if not isinstance(value, str) or not HEX_DIGEST.match(value):
        return None
    # Hex digits only: nothing to escape.
    return Markup(f'<code class="tg-hash" title="{value}">{value[:12]}\u2026</code>')


def _hash_cell(row, value, column, database, datasette):
    return short_hash(value)


# Telegram's placeholder avatars (a letter on a gradient) are SVG data: URIs; an image in
# an <img> runs no script and loads nothing, and CSP allows data: images.
DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=%]+$")
BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/=_-]{40,}$")
MAX_DATA_IMAGE = 64 * 1024


def avatar_markup(value) -> Markup | None:
    picture = thumbnail(value, "channel picture")
    if picture is not None or not isinstance(value, str):
        return picture
    value = value.strip()
    if len(value) <= MAX_DATA_IMAGE and DATA_IMAGE.match(value):
        return Markup(
            '<img class="tg-avatar" src="{}" alt="placeholder picture" title="placeholder picture ({:,} characters of data: URI)" '
            'width="32" height="32" style="border-radius:50%;vertical-align:middle">'
        ).format(value, len(value))
    if value.startswith("data:") or BASE64_TEXT.match(value):
        return Markup('<span class="tg-embedded" title="{:,} characters of embedded data, not shown">[embedded picture]</span>').format(len(value))
    return None


def _post_key_cell(row, value, column, database, datasette, archived: bool = True):
    """A post key (<channel>/<id>) in a view, where Datasette links no foreign keys: a link
    to the post's page when the dataset holds the post."""
    channel, _, post_id = value.rpartition("/") if isinstance(value, str) else ("", "", "")
    if not archived or not USERNAME.match(channel or "") or not post_id.isdigit():
        return None
    return Markup('<a href="{}">{}</a>').format(row_path(datasette, database, channel, post_id), value)


def _original_cell(row, value, column, database, datasette):
    status = _value(row, "original_status")
    return _post_key_cell(row, value, column, database, datasette, archived=status in ("archived", "deleted"))


def _follow_target_cell(row, value, column, database, datasette):
    return _post_key_cell(row, value, column, database, datasette, archived=_value(row, "status") == "archived")


def _stored_cell(role: str, fallback):
    """A media table or channel cell that shows the stored copy (media_files) when there is
    one, else what `fallback` makes of the CDN URL: one indexed lookup per cell."""

    def render(row, value, column, database, datasette):
        channel, post, position = _value(row, "channel"), _value(row, "post"), _value(row, "position")
        if role == "avatar":
            channel = _value(row, "username")
        if not value or not isinstance(channel, str) or (role != "avatar" and (post is None or position is None)):
            return fallback(value)
        item = media_item(role, channel, post, position)

        async def inner():
            try:
                rows = (await datasette.get_database(database).execute(
                    "select sha256, mime from media_files where item = ? and status = 'stored'", [item])).rows
            except Exception:  # noqa: BLE001 - a database without the media store
                rows = []
            if rows and (role != "file" or (rows[0]["mime"] or "").startswith("image/")):
                return stored_picture(rows[0]["sha256"], alt=role)
            if rows:
                return Markup('<a class="tg-stored" href="{}">stored file</a>').format(stored_url("file", rows[0]["sha256"]))
            return fallback(value)

        return inner

    return render


# (table, column) -> renderer(row, value, column, database, datasette); None means Datasette's own.
RENDERERS = {
    ("media", "url"): _stored_cell("file", link),
    ("media", "thumbnail_url"): _stored_cell("thumbnail", lambda v: thumbnail(v, "thumbnail_url")),
    ("channels", "avatar_url"): _stored_cell("avatar", avatar_markup),
    ("forwards", "post"): _post_key_cell,
    ("forwards", "original"): _original_cell,
    ("follows", "target"): _follow_target_cell,
    ("posts", "html"): _posts_html,
    ("posts", "url"): _by_value(link),
    ("posts", "link_preview_image"): _by_value(lambda v: thumbnail(v, "link preview")),
    ("posts", "forwarded_from_name"): _forwarded_from_name,
    ("posts", "forwarded_from_url"): _by_value(link),
    ("posts", "link_preview_url"): _by_value(link),
    ("posts", "raw_html"): _by_value(_raw_html),
    ("post_versions", "html"): _by_value(_text_div),
    ("channels", "description_html"): _by_value(_text_div),
    ("places", "popup"): lambda row, value, column, database, datasette: Markup("<code>{}</code>").format(value or ""),
    ("reactions", "reaction"): _reaction_cell,
    ("reactions", "emoji"): _reaction_cell,
    ("reaction_snapshots", "reaction"): _snapshot_reaction,
}

# Columns of any table, by name: times, counters (with their "<column>_text" and
# "<column>_precision" siblings when the row has them) and digests.
TIME_COLUMNS = ("date", "at", "fetched_at", "first_fetched_at", "last_fetched_at", "first_seen_at",
                "last_seen_at", "deleted_at", "seen_at", "updated_at")
COUNT_COLUMNS = ("views", "count", "subscribers", "photos", "videos", "files", "links", "bytes")
HASH_COLUMNS = ("sha256", "text_sha256", "children_sha256", "digest")
COLUMN_RENDERERS = {
    **{c: _date_cell for c in TIME_COLUMNS},
    **{c: _count_cell for c in COUNT_COLUMNS},
    **{c: _hash_cell for c in HASH_COLUMNS},
}


def _query_post_cell(row, value, column, database, datasette):
    """In a query's results: a post key links to the post's page; an original only when
    the row says it is archived (the forwards view's status, or its date)."""
    if column == "original":
        status = _value(row, "original_status")
        archived = status in ("archived", "deleted") if status is not None else _value(row, "original_date") is not None
        return _post_key_cell(row, value, column, database, datasette, archived=archived)
    return _post_key_cell(row, value, column, database, datasette)


def _query_id_cell(row, value, column, database, datasette):
    """In a query's results: a post id links to the post's page when the row is plainly a
    post's (its url is t.me/<channel>/<id>)."""
    channel = _value(row, "channel")
    url = tme_post_url(channel, value) if isinstance(value, int) else None
    if url is None or _value(row, "url") != url:
        return None
    return Markup('<a href="{}">{}</a>').format(row_path(datasette, database, channel, value), value)


# Columns of a query's results (canned queries, SQL): post keys and ids link to post pages.
QUERY_RENDERERS = {"post": _query_post_cell, "original": _query_post_cell,
                   "id": _query_id_cell, "post_id": _query_id_cell}


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    render = RENDERERS.get((table, column))
    if render is None:
        if table is None:  # a query's results: Datasette's, but for links to post pages
            render = QUERY_RENDERERS.get(column)
            return render(row, value, column, database, datasette) if render else None
        render = COLUMN_RENDERERS.get(column)
        if render is None:
            return None
    return render(row, value, column, database, datasette)


@hookimpl
def extra_template_vars(template, database, table, view_name, request, datasette):
    if view_name == "table" and table == "posts":  # the cards of templates/_table-telegram-posts.html
        return {
            "tg_post_path": lambda channel, post_id: row_path(datasette, database, channel, post_id),
            "tg_tme_url": tme_post_url,
            "tg_link": link,
        }
    if view_name != "row" or table != "posts" or request is None:
        return {}

    async def inner():
        pks = request.url_vars.get("pks", "")
        return {"tg_post": await post_page(datasette, database, pks)}

    return inner


POST_PAGE_SQL = """
select p.channel, p.id, p.date, p.html, p.views_text, p.edited, p.deleted_at,
  p.forwarded_from_name, p.forwarded_from_channel, p.forwarded_from_id,
  p.link_preview_url, p.link_preview_title, p.link_preview_description, p.link_preview_image,
  (select json_group_array(json_object('kind', kind, 'url', url, 'thumbnail_url', thumbnail_url, 'title', title,
       'file_sha256', file_sha256, 'file_mime', file_mime, 'thumbnail_sha256', thumbnail_sha256))
     from (select *, {stored} from media m where m.channel = p.channel and m.post_id = p.id order by position)) as tg_media,
  (select sha256 from media_files f where f.item = {link_preview} and f.status = 'stored') as tg_link_preview_sha256,
  (select json_group_array(json_object('reaction', reaction, 'emoji', emoji, 'count', count, 'count_text', count_text))
     from (select * from reactions r where r.channel = p.channel and r.post_id = p.id order by position)) as tg_reactions,
  (select json_group_array(json_object('version', version, 'text', text, 'html', html,
       'first_seen_at', first_seen_at, 'last_seen_at', last_seen_at))
     from (select * from post_versions v where v.channel = p.channel and v.post_id = p.id order by version)) as tg_versions,
  (select json_group_array(json_object('fetched_at', fetched_at, 'views', views, 'views_text', views_text))
     from (select * from view_snapshots s where s.channel = p.channel and s.post_id = p.id order by fetched_at)) as tg_views,
  o.channel as tg_original_channel, o.id as tg_original_id,
  p.reply_to_id, p.reply_to_author, p.reply_to_text, r.channel as tg_reply_channel, r.id as tg_reply_id
from posts p
left join posts r on r.post = p.reply_to_post
left join posts o on o.id = p.forwarded_from_id and o.channel = (
  -- usernames are case-insensitive; the small channels table resolves the case so the
  -- lookup in posts uses its primary key
  select c.username from channels c where c.username = p.forwarded_from_channel collate nocase limit 1)
where p.channel = ? and p.id = ?
""".replace("{stored}", MEDIA_STORED_SQL).replace(
    "{link_preview}", media_item_sql("link_preview", "p.channel", "p.post", "null"))


async def post_page(datasette, database: str, pks: str) -> dict | None:
    """Everything the post page shows, from the row key: the `post` key, "<channel>/<id>"."""
    from datasette.utils import tilde_decode

    channel, _, raw_id = tilde_decode(pks).rpartition("/")
    if not channel:
        return None
    try:
        post_id = int(raw_id)
    except ValueError:
        return None
    db = datasette.get_database(database)
    # One query for everything (each query is a hop to Datasette's SQL thread).
    rows = (await db.execute(POST_PAGE_SQL, [channel, post_id])).rows
    if not rows:
        return None
    post = dict(rows[0])
    media = json.loads(post["tg_media"] or "[]")
    reactions = json.loads(post["tg_reactions"] or "[]")
    versions = json.loads(post["tg_versions"] or "[]")
    views = json.loads(post["tg_views"] or "[]")
    extras = {"media": media, "reactions": reactions}
    original = None
    if post["tg_original_channel"] is not None:
        original = row_path(datasette, database, post["tg_original_channel"], post["tg_original_id"])
    max_views = max([v["views"] or 0 for v in views] or [0]) or 1
    return {
        "channel": channel,
        "id": post_id,
        "date": post.get("date"),
        "date_text": compact_date(post["date"]) if isinstance(post.get("date"), str) else None,
        "html": sanitise(post.get("html")),
        "tme_url": tme_post_url(channel, post_id),
        "forwarded_from_name": post.get("forwarded_from_name"),
        "forwarded_from_tme": tme_post_url(post.get("forwarded_from_channel"), post.get("forwarded_from_id")),
        "forwarded_from_archived": original,
        "link_preview": {
            "url": web_url(post.get("link_preview_url")),
            "title": post.get("link_preview_title"),
            "description": post.get("link_preview_description"),
            "image": stored_picture(post.get("tg_link_preview_sha256"), alt="link preview")
            or thumbnail(post.get("link_preview_image"), "link preview"),
        } if post.get("link_preview_url") or post.get("link_preview_title") else None,
        "channel_path": datasette.urls.row(database, "channels", tilde_encode(channel)),
        "reply": {
            "archived": row_path(datasette, database, post["tg_reply_channel"], post["tg_reply_id"])
            if post["tg_reply_channel"] is not None else None,
            "id": post["reply_to_id"], "author": post["reply_to_author"], "text": post["reply_to_text"],
        } if post.get("reply_to_id") is not None else None,
        "views_text": post.get("views_text"),
        "edited": post.get("edited"),
        "deleted_at": post.get("deleted_at"),
        "media": media_html(extras["media"]),
        "reactions": reactions_html(extras["reactions"]),
        "versions": [{**v, "html": sanitise(v["html"]), "first_seen_text": compact_date(v["first_seen_at"]),
                      "last_seen_text": compact_date(v["last_seen_at"])} for v in versions],
        "views": [{**v, "percent": round(100 * (v["views"] or 0) / max_views)} for v in views],
    }
