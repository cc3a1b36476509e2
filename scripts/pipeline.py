"""One page in: archive it, parse it, store it. Shared by import, crawl and rebuild."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from .model import NotTelegramPage, Page
from .parse import parse_page
from .store import record_problem, save_page


@dataclass
class Outcome:
    page: Page | None
    summary: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def store_fetch(db: sqlite_utils.Database, fetch: dict, body: bytes) -> Outcome:
    """Parse an archived fetch and store it in telegram.db.

    `fetch` is an archive fetch row (id, url, fetched_at, status, sha256, ...). Bad
    input never raises: it is recorded in `problems` (the body stays in the archive)
    and what could be read is stored.
    """
    source = fetch.get("source_path") or fetch["url"]
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
    try:
        page = parse_page(body, url=fetch.get("final_url") or fetch["url"])
    except NotTelegramPage as error:
        message = f"{source}: not a Telegram page ({error})"
        with db.atomic():
            db["fetches"].upsert({**citation, "posts": 0, "problems": message}, pk="id")
            record_problem(db, source, message, fetch["sha256"], observed_at)
        return Outcome(None, {"posts": 0}, [message])
    problems = [f"{source}: {problem}" for problem in page.problems]
    if page.not_found:
        problems.append(f"{source}: the post does not exist (Telegram's 'post not found' page)")
    citation["problems"] = "\n".join(problems) or None
    summary = save_page(db, page, observed_at, citation)
    if problems:
        with db.atomic():
            for problem in problems:
                record_problem(db, source, problem, fetch["sha256"], observed_at)
    return Outcome(page, summary, problems)
