"""Crawl progress: a live display on a terminal, plain log lines elsewhere, a summary."""

import io
import logging

from rich.console import Console

from telegram_datasette.crawl import ChannelResult
from telegram_datasette.model import Page, Post
from telegram_datasette.progress import CrawlProgress, summary_table


def page(*ids):
    return Page(channel=None, posts=[Post(channel="chan", id=i, url=f"https://t.me/chan/{i}") for i in ids])


def test_plain_log_lines_when_not_on_a_terminal(caplog):
    result = ChannelResult("chan", pages=2, new=30, edited=1, deleted=2, requests=3, retries=1)
    with caplog.at_level(logging.INFO, logger="scripts"):
        with CrawlProgress(live=False) as progress:
            progress.report(result, page(100, 99))
    assert "chan: 2 pages, 30 new, 1 edited, 2 deleted, 3 requests, 1 retries" in caplog.text


def test_live_display_estimates_the_backfill_and_summarises():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150)
    result = ChannelResult("chan")
    with CrawlProgress(console=console, live=True) as progress:
        for newest in (400, 380, 360):
            result.pages += 1
            result.new += 20
            progress.report(result, page(*range(newest, newest - 20, -1)))
        task = progress.progress.tasks[0]
        assert task.total == 400 and task.completed == 60  # ids left to walk down to 1
    failed = ChannelResult("other", error="other: gave up", pages=1)
    console.print(summary_table([result, failed]))
    text = out.getvalue()
    assert "crawl summary" in text and "FAILED" in text and "60" in text
