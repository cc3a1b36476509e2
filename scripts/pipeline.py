"""One page in: read it once (parse, and check it can be trusted), then store what it holds.

Shared by crawl, import and rebuild. Reading is pure; storing writes telegram.db.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import sqlite_utils

from .model import NotTelegramPage, Page
from .parse import PARSE_BUDGET_SECONDS, parse_budget, parse_page
from .store import mark_deleted, record_problem, save_page

log = logging.getLogger("scripts")


@dataclass
class Reading:
    page: Page | None
    problem: str | None = None  # why nothing from the page may be stored (also: the parser failed)


def read_page(body: bytes, url: str) -> Reading:
    """Parse a page and say whether it can be trusted (pure). Never raises.

    A page the parser fails on (any exception, or more than parse.PARSE_BUDGET_SECONDS)
    gives a Reading without a page: the caller records the problem and stores nothing
    from it, and the page stays in the archive for a later parser to read again.
    """
    try:
        with parse_budget(PARSE_BUDGET_SECONDS):
            page = parse_page(body, url=url)
            return Reading(page, layout_problem(page, body, url))
    except NotTelegramPage as error:
        return Reading(None, str(error))
    except Exception as error:  # noqa: BLE001 - quarantined: one page must not stop a crawl or rebuild
        log.debug("%s: parser failed", url, exc_info=True)
        return Reading(None, f"parser failed on this page: {type(error).__name__}: {error}")


@dataclass
class Outcome:
    page: Page | None
    summary: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def store_fetch(db: sqlite_utils.Database, fetch: dict, body: bytes, reading: Reading | None = None) -> Outcome:
    """Store an archived fetch in telegram.db, reading its body unless `reading` is given.

    `fetch` is an archive fetch row (id, url, fetched_at, status, sha256, ...). Bad
    input never raises: it is recorded in `problems` (the body stays in the archive)
    and what could be read is stored.
    """
    source = fetch["url"]
    observed_at = fetch["fetched_at"]
    citation = {
        "id": fetch["id"],
        "url": fetch["url"],
        "fetched_at": observed_at,
        "status": fetch["status"],
        "sha256": fetch["sha256"],
        "bytes": fetch["bytes"],
        "duration_ms": fetch.get("duration_ms"),
        "channel": fetch.get("channel"),
        "source": fetch.get("source"),
    }
    if fetch["status"] != 200:
        # Redirects and errors are archived and cited, but hold no posts.
        with db.atomic():
            db["fetches"].upsert({**citation, "posts": 0, "problems": None}, pk="id")
        return Outcome(None, {"posts": 0}, [])
    if reading is None:
        reading = read_page(body, fetch.get("final_url") or fetch["url"])
    page, broken = reading.page, reading.problem
    if broken:
        # Nothing from a page we cannot trust is written; the body stays archived.
        message = f"{source}: {broken}"
        with db.atomic():
            db["fetches"].upsert({**citation, "posts": 0, "problems": message}, pk="id")
            record_problem(db, source, message, fetch["sha256"], observed_at)
        return Outcome(None, {"posts": 0, "broken": 1}, [message])
    problems = [f"{source}: {problem}" for problem in page.problems]
    if page.not_found:
        problems.append(f"{source}: the post does not exist (Telegram's 'post not found' page)")
    citation["problems"] = "\n".join(problems) or None
    with db.atomic():  # the page and the deletions it reveals land together
        # One counters row per crawl: from its newest page (every page repeats them).
        query = urlsplit(fetch["url"]).query
        record_stats = "before=" not in query and "after=" not in query
        summary = save_page(db, page, observed_at, citation, record_stats=record_stats)
        summary["deleted"] = mark_missing_as_deleted(db, fetch, page)
    if problems:
        with db.atomic():
            for problem in problems:
                record_problem(db, source, problem, fetch["sha256"], observed_at)
    return Outcome(page, summary, problems)


def covered_ids(url: str, page: Page) -> tuple[float, float] | None:
    """The id range a complete page vouches for: every post in it is shown.

    `?before=X` shows the newest posts below X, so it covers [oldest shown, X-1];
    the newest page covers everything from its oldest post up; `?after=X` covers
    (X, newest shown]. Ids in these ranges that are not shown do not exist (now).
    """
    if not page.complete or not page.posts or page.is_embed:
        return None
    ids = [post.id for post in page.posts]
    query = parse_qs(urlsplit(url).query)
    if "before" in query:
        try:
            return min(ids), int(query["before"][0]) - 1
        except ValueError:
            return None
    if "after" in query:
        try:
            return int(query["after"][0]) + 1, max(ids)
        except ValueError:
            return None
    return min(ids), float("inf")


def mark_missing_as_deleted(db: sqlite_utils.Database, fetch: dict, page: Page) -> int:
    """Posts we stored before that a re-fetched range no longer shows.

    Only for crawled pages: a saved file says nothing about when it was saved or
    whether it was the newest page.
    """
    if fetch.get("source") != "crawl":
        return 0
    span = covered_ids(fetch.get("final_url") or fetch["url"], page)
    if span is None:
        return 0
    channel = page.posts[0].channel
    shown = {post.id for post in page.posts}
    low, high = span
    stored = db.execute(
        "select id from posts where channel = ? and id >= ? and id <= ? and deleted_at is null",
        [channel, low, high if high != float("inf") else 2**62],
    ).fetchall()
    missing = [row[0] for row in stored if row[0] not in shown]
    return mark_deleted(db, channel, missing, fetch["fetched_at"]) if missing else 0


def layout_problem(page: Page, body: bytes, url: str = "") -> str | None:
    """Why a channel page that yields no posts cannot be trusted, if it cannot."""
    if page.is_embed or page.posts:
        return None
    if page.before or page.after or b"js-widget_message" in body or b"data-post=" in body:
        return "the page has message blocks but none could be read (has t.me changed its layout?)"
    if page.channel is None:
        return "no channel and no posts found on the page"
    if "before=" in url:
        return None  # nothing older than the channel's first post
    media = [c.value or 0 for name, c in page.channel.counters.items() if name != "subscribers"]
    if any(media):
        return "the channel shows media counters but the page has no posts (has t.me changed its layout?)"
    return None  # a channel that has not posted yet
