"""Follow the forwards: archive the posts a channel amplifies, one hop away, as sources.

Most posts of an embassy channel are forwards. For each configured channel whose
`follow_forwards` is `originals` (the default), this step fetches the originals of its
forwards, and the posts its replies and t.me links point to in other channels: for each,
the channel page that ends at it (`t.me/s/<source>?before=<id + 1>`), which shows the
original and about twenty posts before it. All of them are stored like crawled posts (same
tables, same history), their channel with `role` "source"; an original on a page fetched
for another counts as covered and is not asked for again. With `channels`, the source
channels are crawled in full instead (crawl.py). Forwards from hidden accounts and private
channels have no link: nothing is requested for them.

What became of each target is kept in `follows`: archived, not found on its page (deleted,
or never public), unavailable (no public preview, or no such channel), or failed (tried again
next run). Requests are limited per
run (`follow_requests_per_run`); what is left waits for the next run and the summary
says how much.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlite_utils

from .config import channel_name
from .parse import tme_target
from .pipeline import covered_ids
from .schema import post_key
from .store import utc_now

log = logging.getLogger("scripts")

# The statuses of `follows` that are final: such a target is never asked for again.
SETTLED = ("archived", "not found", "unavailable")


@dataclass(frozen=True, order=True)
class Target:
    channel: str  # the source channel, as the linking post wrote it
    id: int
    reason: str = field(compare=False)  # forward, reply or link

    @property
    def key(self) -> str:
        return post_key(self.channel, self.id)


@dataclass
class FollowResult:
    planned: int = 0
    requests: int = 0
    archived: int = 0  # targets now in the dataset
    not_found: int = 0
    unavailable: int = 0  # no public preview, or no such channel
    failed: int = 0
    left: int = 0  # targets waiting for the next run (the budget ran out)
    posts_gained: int = 0  # posts new to the dataset, originals and their neighbours
    private: int = 0  # forwards without a link: nothing to request

    def line(self) -> str:
        return (f"forwards: followed {self.planned - self.left} of {self.planned} linked posts in other channels "
                f"with {self.requests} requests: {self.archived} archived, {self.not_found} not found, "
                f"{self.unavailable} in channels without a public preview, {self.failed} failed (tried again next run); "
                f"{self.posts_gained} posts gained; {self.left} left for the next run; "
                f"{self.private} forwards from private sources (nothing to fetch)")


def following(config: dict, channels: list[str], mode: str) -> list[str]:
    """The channels whose forwards are followed in `mode` (originals or channels)."""
    by_channel = {name.lower(): value for name, value in config.get("follow_forwards_by_channel", {}).items()}
    return [c for c in channels if by_channel.get(c.lower(), config.get("follow_forwards", "originals")) == mode]


def link_target(url: str | None) -> tuple[str, int] | None:
    """(channel, id) of a public post link (t.me/<channel>/<id>), else None: private
    (t.me/c/...), invite and service links are not public posts."""
    channel, post_id = tme_target(url)
    if channel is None or post_id is None:
        return None
    try:
        return channel_name(channel), post_id
    except ValueError:
        return None


def plan_targets(db: sqlite_utils.Database, channels: list[str]) -> list[Target]:
    """The posts in other channels that these channels forward, reply to or link to and
    that the dataset does not hold yet (nor has settled), newest first per source."""
    if not channels:
        return []
    marks = ", ".join("?" * len(channels))
    own = {c.lower() for c in channels}
    found: dict[str, Target] = {}

    def add(channel, post_id, reason):
        # A forward of the channel's own older post is followed too; its replies and links
        # within itself are the crawl's business.
        target = link_target(f"https://t.me/{channel}/{post_id}") if channel and post_id else None
        if target and (reason == "forward" or target[0].lower() not in own):
            found.setdefault(post_key(target[0], target[1]).lower(), Target(target[0], target[1], reason))

    for row in db.execute(f"select forwarded_from_channel, forwarded_from_id from posts where channel in ({marks}) "
                          "and forwarded_from_channel is not null and forwarded_from_id is not null", channels):
        add(row[0], row[1], "forward")
    for row in db.execute(f"select reply_to_channel, reply_to_id from posts where channel in ({marks}) "
                          "and reply_to_channel is not null and reply_to_id is not null", channels):
        add(row[0], row[1], "reply")
    for (url,) in db.execute(f"select url from links where channel in ({marks}) and domain in "
                             "('t.me', 'telegram.me', 'www.t.me')", channels):
        target = link_target(url)
        if target:
            add(target[0], target[1], "link")
    canonical = {r[0].lower(): r[0] for r in db.execute("select username from channels")}
    held = {r[0].lower() for r in db.execute("select target from follows where status in (%s)"
                                             % ", ".join("?" * len(SETTLED)), SETTLED)}
    closed = {r[0].lower() for r in db.execute("select channel from follows where status = 'unavailable'")}
    wanted = [t for key, t in found.items() if key not in held and t.channel.lower() not in closed]
    have = set()
    for chunk in range(0, len(wanted), 500):
        keys = [post_key(canonical.get(t.channel.lower(), t.channel), t.id) for t in wanted[chunk:chunk + 500]]
        have.update(r[0].lower() for r in db.execute(
            f"select post from posts where post in ({', '.join('?' * len(keys))})", keys))
    todo = [t for t in wanted if post_key(canonical.get(t.channel.lower(), t.channel), t.id).lower() not in have]
    return sorted(todo, key=lambda t: (t.channel.lower(), -t.id))


def private_forwards(db: sqlite_utils.Database, channels: list[str]) -> int:
    marks = ", ".join("?" * len(channels))
    return db.execute(f"select count(*) from posts where channel in ({marks}) and forwarded_from_name is not null "
                      "and (forwarded_from_channel is null or forwarded_from_id is null)", channels).fetchone()[0] if channels else 0


def record(db: sqlite_utils.Database, target: Target, status: str, detail: str | None, fetch_id: int | None) -> None:
    db["follows"].upsert(
        {"target": target.key, "channel": target.channel, "id": target.id, "reason": target.reason,
         "status": status, "detail": detail, "checked_at": utc_now(), "fetch_id": fetch_id},
        pk="target",
    )


def mark_sources(db: sqlite_utils.Database, configured: list[str]) -> None:
    """`role` of every channel: configured, or a source reached by following."""
    with db.atomic():
        if configured:
            marks = ", ".join("?" * len(configured))
            db.execute(f"update channels set role = 'configured' where username in ({marks}) "
                       "and role is not 'configured'", configured)
        db.execute("update channels set role = 'source' where role is null")
        # Links write a channel as the linking post did; the page says how it is spelt.
        db.execute("update posts set forwarded_from_post = (select c.username from channels c where "
                   "c.username = posts.forwarded_from_channel collate nocase) || '/' || forwarded_from_id "
                   "where forwarded_from_channel is not null and forwarded_from_id is not null and exists "
                   "(select 1 from channels c where c.username = posts.forwarded_from_channel collate nocase "
                   "and c.username is not posts.forwarded_from_channel)")


def follow(db: sqlite_utils.Database, crawler_for, channels: list[str], budget: int) -> FollowResult:
    """Fetch the planned targets of `channels`, newest first per source, at most `budget`
    requests. `crawler_for(source)` gives a crawl.ChannelCrawler, whose `fetch_page`
    fetches, archives, parses and stores a page with the crawl's retries and checks."""
    from .crawl import ChannelUnavailable, LayoutChanged, PageCutOff, page_url
    from .fetch import FetchFailed

    result = FollowResult(private=private_forwards(db, channels))
    targets = plan_targets(db, channels)
    result.planned = len(targets)
    settled: set[str] = set()
    closed: set[str] = set()
    for index, target in enumerate(targets):
        if target.key.lower() in settled or target.channel.lower() in closed:
            continue
        if result.requests >= budget:
            result.left = sum(1 for t in targets[index:] if t.key.lower() not in settled
                              and t.channel.lower() not in closed)
            break
        crawler = crawler_for(target.channel)
        url = page_url(crawler.base_url, target.channel, target.id + 1)
        result.requests += 1
        try:
            page = crawler.fetch_page(url, first=True)
        except ChannelUnavailable as error:
            closed.add(target.channel.lower())
            for other in (t for t in targets if t.channel.lower() == target.channel.lower()):
                record(db, other, "unavailable", str(error), None)
                result.unavailable += 1
            continue
        except (LayoutChanged, PageCutOff, FetchFailed) as error:
            record(db, target, "failed", str(error), None)
            result.failed += 1
            continue
        result.posts_gained += crawler.result.new  # the page's posts new to the dataset (a fresh crawler each)
        shown = {(p.channel.lower(), p.id) for p in page.posts}
        span = covered_ids(url, page) or (target.id, target.id)
        fetch_id = db.execute("select max(id) from fetches").fetchone()[0]
        for other in (t for t in targets if t.channel.lower() == target.channel.lower()
                      and span[0] <= t.id <= span[1] and t.key.lower() not in settled):
            settled.add(other.key.lower())
            if (other.channel.lower(), other.id) in shown:
                # As the page spells the channel, so that the key is the post's.
                spelt = next(p.channel for p in page.posts if p.channel.lower() == other.channel.lower())
                record(db, Target(spelt, other.id, other.reason), "archived", None, fetch_id)
                result.archived += 1
            else:
                record(db, other, "not found", f"not on {url}: deleted, or never public", fetch_id)
                result.not_found += 1
        if target.key.lower() not in settled:  # a page that does not reach its own target
            settled.add(target.key.lower())
            record(db, target, "not found", f"not on {url}", fetch_id)
            result.not_found += 1
    return result
