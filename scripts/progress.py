"""Progress for crawls: a rich display on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

log = logging.getLogger("scripts")


def describe(result) -> str:
    return (
        f"{result.pages} pages, {result.new} new, {result.edited} edited, "
        f"{result.deleted} deleted, {result.requests} requests, {result.retries} retries"
    )


class CrawlProgress:
    """Call `report(result, page)` after each page; use as a context manager."""

    def __init__(self, console: Console | None = None, live: bool | None = None):
        self.live = sys.stderr.isatty() if live is None else live
        # Off a terminal (CI logs) rich assumes 80 columns and would cut the summary.
        self.console = console or Console(stderr=True, width=None if self.live else 140)
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.top_ids: dict[str, int] = {}

    def __enter__(self):
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.fields[channel]}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def report(self, result, page=None) -> None:
        ids = [post.id for post in page.posts] if page is not None else []
        if ids:
            self.top_ids.setdefault(result.channel, max(ids))
        top = self.top_ids.get(result.channel, 1)
        # Ids fall towards 1 while backfilling, which gives a fair estimate.
        done = top - min(ids) + 1 if ids else None
        if self.progress is None:
            log.info("%s: %s", result.channel, describe(result))
            return
        if result.channel not in self.tasks:
            self.tasks[result.channel] = self.progress.add_task(
                "", total=top, channel=result.channel, detail=""
            )
        self.progress.update(
            self.tasks[result.channel], completed=done, detail=describe(result)
        )


def summary_table(results) -> Table:
    table = Table(title="crawl summary")
    for column in ("channel", "pages", "posts", "new", "edited", "deleted", "restored",
                   "unknown", "requests", "retries", "complete", "status"):
        table.add_column(column)
    for r in results:
        if r.error is not None:
            status = "unavailable" if r.unavailable else "FAILED"
        else:
            status = f"INCOMPLETE ({r.incomplete} ranges)" if r.incomplete else "ok"
        table.add_row(
            r.channel, *(str(v) for v in (r.pages, r.posts, r.new, r.edited, r.deleted,
                                          r.restored, r.unknown, r.requests, r.retries)),
            "yes" if r.backfill_complete else "no", status,
        )
    return table
