"""Crawl channels from t.me: incremental, polite, resumable, keeping history.

The walk for one channel goes from the newest page back with `?before=`:
- the first time, back to the channel's first post (the backfill);
- later, back to the newest post already synced, or further to cover the refresh
  window (the last N days), so that views, reactions, edits and deletions are seen
  again; then on with an unfinished backfill, from the oldest post stored.

`crawl_state` remembers, per channel, the contiguous range already synced
(`low_id`..`high_id`) and whether the backfill reached the first post. It only ever
describes pages already committed, so a crawl killed at any moment resumes without
gaps: the next walk goes back until it meets that range again.

A page that stays cut off after its retries is stored for what it shows, but never
counted as synced: the range stops above it, the backfill is not complete past it,
and the next run walks it again. The run reports such pages as incomplete ranges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import sqlite_utils

from .archive import archive_page
from .fetch import Fetcher, FetchFailed
from .follow import FollowResult, follow, following, mark_sources
from .model import Page
from .parse import looks_truncated
from .pipeline import read_page, store_fetch
from .store import record_problem, utc_now

log = logging.getLogger("scripts")

# A truncated body is fetched again this many times before we keep what it has.
TRUNCATED_RETRIES = 2


class ChannelUnavailable(Exception):
    """No public preview, or no such channel."""


class LayoutChanged(Exception):
    """t.me served content we cannot read: stop the channel, write nothing from it."""


class PageCutOff(Exception):
    """A page cut off so early that nothing in it can be read, not even the way on."""


@dataclass
class ChannelResult:
    channel: str
    pages: int = 0
    posts: int = 0
    new: int = 0
    edited: int = 0
    deleted: int = 0
    restored: int = 0
    unknown: int = 0
    requests: int = 0
    retries: int = 0
    backfill_complete: bool = False  # every post down to the first is synced
    incomplete: int = 0  # page ranges that stayed cut off: not synced, retried next run
    error: str | None = None  # why the channel stopped early
    unavailable: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.unavailable


def get_state(db: sqlite_utils.Database, channel: str) -> dict:
    rows = list(db["crawl_state"].rows_where("lower(channel) = lower(?)", [channel]))
    return rows[0] if rows else {"channel": channel, "high_id": None, "low_id": None, "backfill_complete": 0}


def put_state(db: sqlite_utils.Database, state: dict) -> None:
    db["crawl_state"].upsert({**state, "updated_at": utc_now()}, pk="channel")


def refresh_floor(db: sqlite_utils.Database, channel: str, refresh_days: float, now: datetime) -> int | None:
    """The oldest stored post id inside the refresh window."""
    cutoff = (now - timedelta(days=refresh_days)).isoformat(timespec="seconds")
    row = db.execute(
        "select min(id) from posts where lower(channel) = lower(?) and date >= ?", [channel, cutoff]
    ).fetchone()
    return row[0] if row else None


def stop_id(state: dict, floor: int | None) -> int | None:
    """Walk back from the newest page until a page reaches this id (None: to the end)."""
    if state["high_id"] is None:
        return None
    return min(state["high_id"], floor) if floor is not None else state["high_id"]


def page_url(base_url: str, channel: str, before: int | None = None) -> str:
    url = f"{base_url.rstrip('/')}/s/{channel}"
    return f"{url}?before={before}" if before is not None else url


def older_page_url(base_url: str, channel: str, page: Page, current_url: str) -> str | None:
    """The next older page: the "load more" link, else <link rel="prev">."""
    if page.before is not None:
        return page_url(base_url, channel, page.before)
    if page.prev_url:
        # Keep to our base URL (a mirror, the fake): take only the id from the link.
        before = before_of(urljoin(current_url, page.prev_url))
        return page_url(base_url, channel, before) if before is not None else None
    return None


def before_of(url: str) -> int | None:
    for part in urlsplit(url).query.split("&"):
        if part.startswith("before="):
            try:
                return int(part[len("before="):])
            except ValueError:
                return None
    return None


class ChannelCrawler:
    """Walks one channel's pages; every page is archived, parsed and stored in turn."""

    def __init__(self, channel, db, adb, fetcher: Fetcher, config: dict, report=None):
        self.name = channel
        self.db, self.adb, self.fetcher = db, adb, fetcher
        self.base_url = config["base_url"]
        self.refresh_days = float(config["refresh_days"])
        self.result = ChannelResult(channel)
        self.report = report or (lambda result, note=None: None)
        self.seen_urls: set[str] = set()
        self.requests_before, self.retries_before = fetcher.stats.requests, fetcher.stats.retries

    def run(self) -> ChannelResult:
        self.requests_before, self.retries_before = self.fetcher.stats.requests, self.fetcher.stats.retries
        try:
            self.crawl()
        except ChannelUnavailable as error:
            self.result.error, self.result.unavailable = str(error), True
        except (LayoutChanged, FetchFailed) as error:
            # The fetcher's messages name the URL; say which channel it was too.
            message = str(error)
            self.result.error = message if message.startswith(f"{self.name}: ") else f"{self.name}: {message}"
        finally:
            self.result.requests = self.fetcher.stats.requests - self.requests_before
            self.result.retries = self.fetcher.stats.retries - self.retries_before
        return self.result

    def crawl(self) -> None:
        state = get_state(self.db, self.name)
        floor = refresh_floor(self.db, state["channel"], self.refresh_days, datetime.now(timezone.utc))
        first_run = state["high_id"] is None
        newest = None
        for page in self.walk(page_url(self.base_url, self.name), stop_at=stop_id(state, floor)):
            ids = [post.id for post in page.posts]
            if not ids:
                continue
            if newest is None:
                newest = max(ids)
                state["channel"] = page.posts[0].channel
            if first_run and not self.gaps:
                # The walk is contiguous from the newest page down to here.
                state["high_id"] = state["high_id"] or newest
                state["low_id"] = min(ids + ([state["low_id"]] if state["low_id"] else []))
                put_state(self.db, state)
        if self.reached_end and not self.gaps:
            self.finish_backfill(state)
        if newest is not None and not self.cut_short and not self.gaps:
            # Everything from the newest post down to the old synced range is stored.
            state["high_id"] = max(state["high_id"] or 0, newest)
            state["low_id"] = state["low_id"] or newest
        put_state(self.db, state)
        start = page_url(self.base_url, self.name, state["low_id"]) if state["low_id"] else None
        # Not when the walk above has been there already in this run (it went on past a gap).
        if not state["backfill_complete"] and start and start not in self.seen_urls:
            for page in self.walk(start, stop_at=None):
                ids = [post.id for post in page.posts]
                if ids and not self.gaps:
                    state["low_id"] = min(state["low_id"], min(ids))
                    put_state(self.db, state)
            if self.reached_end and not self.gaps:
                self.finish_backfill(state)
            put_state(self.db, state)
        self.result.backfill_complete = bool(state["backfill_complete"]) and not self.result.incomplete

    def finish_backfill(self, state: dict) -> None:
        state["backfill_complete"] = 1
        if self.oldest_seen is not None:
            state["low_id"] = min(state["low_id"] or self.oldest_seen, self.oldest_seen)

    def walk(self, url: str, stop_at: int | None):
        """Yield stored pages from `url` back until `stop_at`, the first post, or a loop.

        Sets `reached_end` when there is nothing older. Pages without a "more" link
        are followed by their <link rel="prev">, and if that is missing too, by one
        `?before=<oldest id>` probe, since channels need not start at id 1. Counts in
        `gaps` the pages that stayed cut off; the walk goes on past them, to store what
        it can, but the synced range must not.
        """
        self.reached_end = False
        self.cut_short = False  # stopped by a loop guard before meeting stop_at
        self.oldest_seen = None
        self.gaps = 0
        first = url == page_url(self.base_url, self.name)
        while url:
            try:
                page = self.fetch_page(url, first=first)
            except PageCutOff as error:
                self.missing_range(url, str(error))
                return  # without its links there is no way on from an unreadable page
            first = False
            yield page
            ids = [post.id for post in page.posts]
            if not ids:
                self.reached_end = True  # an empty older page: nothing before it
                return
            oldest = min(ids)
            self.oldest_seen = oldest if self.oldest_seen is None else min(self.oldest_seen, oldest)
            if stop_at is not None and oldest <= stop_at:
                return  # met the synced range: everything below is stored
            next_url = older_page_url(self.base_url, self.name, page, url)
            if next_url is None:
                if oldest <= 1:
                    self.reached_end = True
                    return
                next_url = page_url(self.base_url, self.name, oldest)
            url = self.next_or_stop(url, next_url)
            self.cut_short = url is None

    def next_or_stop(self, url: str, next_url: str | None) -> str | None:
        """Refuse to fetch a URL twice or to walk anything but backwards."""
        if next_url is None:
            return None
        current, following = before_of(url), before_of(next_url)
        if next_url in self.seen_urls or (
            current is not None and following is not None and following >= current
        ):
            note = f"{self.name}: pagination points back to {next_url}; stopping here to avoid a loop"
            self.result.problems.append(note)
            log.warning("%s", note)
            return None
        return next_url

    def fetch_page(self, url: str, first: bool = False) -> Page:
        """Fetch, archive, parse and store one page. Raises to stop the channel."""
        self.seen_urls.add(url)
        for attempt in range(TRUNCATED_RETRIES + 1):
            response = self.fetcher.get(url)
            fetch = archive_page(
                self.adb, response.body, url=url, fetched_at=response.fetched_at,
                status=response.status, duration_ms=response.duration_ms,
                final_url=response.final_url, channel=self.name,
            )
            if response.status != 200:
                store_fetch(self.db, fetch, response.body)
                self.refuse(url, response, first)
            reading = read_page(response.body, url)
            # A body cut inside a character or before any post does not parse at all.
            cut_off = not reading.page.complete if reading.page else looks_truncated(
                response.body.decode("utf-8", "replace"))
            if not cut_off or attempt == TRUNCATED_RETRIES:
                break
            log.info("%s: %s came back truncated, fetching it again", self.name, url)
        if reading.problem:
            store_fetch(self.db, fetch, response.body, reading)  # records the problem only
            if cut_off:
                raise PageCutOff(f"{reading.problem} (the page was cut off; kept in the archive, "
                                 f"fetch {fetch['id']})")
            raise LayoutChanged(
                f"{self.name}: {url}: {reading.problem}; nothing from this page was stored "
                f"(the page is kept in the archive, fetch {fetch['id']})"
            )
        page = reading.page
        if cut_off:
            self.missing_range(url, "the page stayed cut off; what it shows is stored")
        outcome = store_fetch(self.db, fetch, response.body, reading)
        self.count(outcome.summary)
        self.result.problems.extend(outcome.problems)
        for problem in outcome.problems:
            log.warning("%s", problem)
        self.result.requests = self.fetcher.stats.requests - self.requests_before
        self.result.retries = self.fetcher.stats.retries - self.retries_before
        self.report(self.result, page)
        return page

    def refuse(self, url: str, response, first: bool) -> None:
        """Raise for an answer other than 200. Only the newest page tells whether the
        channel exists: an older page that fails is a failure of that page."""
        status = response.status
        if status in (301, 302, 303, 307, 308):
            location = response.location or "elsewhere"
            if first and urlsplit(urljoin(url, location)).path.rstrip("/").endswith("/" + self.name):
                raise ChannelUnavailable(
                    f"{self.name}: no public preview (t.me redirects /s/{self.name} to "
                    f"{location}); it is private, not a channel, or does not exist"
                )
            raise LayoutChanged(f"{self.name}: {url} redirected to {location} unexpectedly")
        if status == 404 and first:
            raise ChannelUnavailable(f"{self.name}: no such channel ({url} answered 404)")
        if status == 404:
            raise FetchFailed(f"{self.name}: {url} answered HTTP 404 although the channel's newest page "
                              "exists; older pages are walked again on the next run")
        raise FetchFailed(f"{self.name}: {url} answered HTTP {status}")

    def missing_range(self, url: str, why: str) -> None:
        """A page that could not be read in full: its range stays unsynced."""
        self.gaps += 1
        self.result.incomplete += 1
        note = (f"{self.name}: {url} could not be read in full after {TRUNCATED_RETRIES + 1} attempts "
                f"({why}); it is not counted as synced and is fetched again on the next run")
        self.result.problems.append(note)
        log.warning("%s", note)

    def count(self, summary: dict) -> None:
        self.result.pages += 1
        for key in ("posts", "new", "edited", "deleted", "restored", "unknown"):
            setattr(self.result, key, getattr(self.result, key) + summary.get(key, 0))


def crawl(
    channels: list[str],
    db: sqlite_utils.Database,
    adb: sqlite_utils.Database,
    config: dict,
    fetcher: Fetcher | None = None,
    report=None,
) -> list[ChannelResult]:
    own_fetcher = fetcher is None
    if fetcher is None:
        fetcher = page_fetcher(config)
    results = []
    try:
        for channel in channels:
            result = ChannelCrawler(channel, db, adb, fetcher, config, report).run()
            if result.error:
                log.warning("%s", result.error)
                record_problem(db, f"crawl:{channel}", result.error, None, utc_now())
            results.append(result)
    finally:
        if own_fetcher:
            fetcher.close()
    return results


def page_fetcher(config: dict) -> Fetcher:
    return Fetcher(
        requests_per_second=float(config["requests_per_second"]),
        timeout=float(config["timeout_seconds"]),
        max_retries=int(config["max_retries"]),
        request_deadline=float(config["request_deadline_seconds"]),
        max_bytes=int(config["max_page_bytes"]),
    )


def follow_forwards(channels: list[str], db: sqlite_utils.Database, adb: sqlite_utils.Database, config: dict,
                    report=None) -> tuple[list[ChannelResult], FollowResult]:
    """One hop from the configured channels (scripts/follow.py): the source channels of
    those set to `channels` are crawled in full; the originals of those set to
    `originals` (the default) are fetched, within the run's request budget."""
    from .config import channel_name

    sources: dict[str, str] = {}
    wanted = following(config, channels, "channels")
    if wanted:
        configured = {c.lower() for c in channels}
        marks = ", ".join("?" * len(wanted))
        for (name,) in db.execute(f"select distinct forwarded_from_channel from posts where channel in ({marks}) "
                                  "and forwarded_from_channel is not null", wanted):
            try:
                name = channel_name(name)
            except ValueError:
                continue
            if name.lower() not in configured:
                sources.setdefault(name.lower(), name)
    fetcher = page_fetcher(config)
    try:
        results = crawl(list(sources.values()), db, adb, config, fetcher, report)
        budget = int(config["follow_requests_per_run"])
        followed = follow(db, lambda source: ChannelCrawler(source, db, adb, fetcher, config, report),
                          following(config, channels, "originals"), budget)
    finally:
        fetcher.close()
    mark_sources(db, channels)
    return results, followed


def run_crawl(channels: list[str], db: sqlite_utils.Database, adb: sqlite_utils.Database, config: dict,
              echo=print, shard: bool = False) -> int:
    """The crawl as `crawl` and `build` run it: progress, a summary table, the derive
    step, the media stage (media.db beside telegram.db), and an honest exit status (1
    when any channel could not be read in full, after storing all the others)."""
    from .derive import derive
    from .media import run_media
    from .progress import CrawlProgress, summary_table

    last_fetch = db.execute("select coalesce(max(id), 0) from fetches").fetchone()[0]
    with CrawlProgress() as progress:
        results = crawl(channels, db, adb, config, report=progress.report)
        # A shard does not follow forwards: two shards would fetch the same sources, and the
        # merge takes each channel from one shard. The merge job follows them once (`follow`).
        sources, followed = ([], None) if shard else follow_forwards(channels, db, adb, config, report=progress.report)
    progress.console.print(summary_table(results + sources))
    echo(followed.line() if followed else "forwards: followed after the merge, not in a shard")
    derive(db)
    # media.db beside telegram.db (scripts/media.py). A shard downloads only the files of
    # the channels it crawled or reached this run: the other shards see to theirs.
    scope = None
    if shard:
        scope = {c.lower() for c in channels} | {r[0].lower() for r in db.execute(
            "select distinct channel from fetches where id > ? and channel is not null", [last_fetch])}
    run_media(db, config, echo=echo, channels=scope)
    bad = [r for r in results if r.error or r.incomplete]
    for result in bad:
        if result.error:
            echo(f"{'MISSING' if result.unavailable else 'FAILED'} {result.error}")
        if result.incomplete:
            echo(f"INCOMPLETE {incomplete_line(result)}")
    if bad:
        echo(f"crawl incomplete: {len(bad)} of {len(results)} channels could not be read "
             f"({', '.join(r.channel for r in bad)}); the others were stored")
        return 1
    return 0


def incomplete_line(result: ChannelResult) -> str:
    n = result.incomplete
    ranges = "1 page range" if n == 1 else f"{n} page ranges"
    return (f"{result.channel}: {ranges} could not be read in full; "
            f"{'it is' if n == 1 else 'they are'} retried on the next run")
