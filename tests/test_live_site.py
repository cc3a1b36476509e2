"""A crawl runs while the site is served the README's way, and a client reading the site
all along never sees an error.

`telegram-datasette serve` runs `datasette serve` as publish.serve_command builds it (not
--immutable: the file may change under it, and WAL keeps readers consistent). Served
--immutable instead, every query answered "database disk image is malformed" while a
crawl wrote the file, and after it until a restart: this test catches that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ROOT, free_port, stop, wait_for_http
from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.publish import serve_command
from telegram_datasette.schema import open_db

CHANNEL = "livechan"
POSTS = 3000
ROUNDS_AFTER = 3  # full rounds of reading once the crawl has ended


def urls(round_number: int) -> list[str]:
    word = ("Oslo", "Bergen", "посольства", "Ambassador")[round_number % 4]
    return [
        "/telegram/posts.json?_size=5",
        "/telegram/posts",
        f"/telegram/posts.json?_search={word}",
        f"/-/search?q={word}",
        "/",
    ]


def tail(path: Path, size: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-size:]


def read(client: httpx.Client, url: str) -> tuple[str | None, int | None]:
    """(problem, posts count): problem is None for a valid 200 answer; the count is the
    posts table's row count when the answer is posts.json."""
    try:
        response = client.get(url)
    except httpx.HTTPError as error:
        return f"{url}: {type(error).__name__}: {error}", None
    if response.status_code != 200:
        text = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())  # an error page, as text
        return f"{url}: {response.status_code}: {text[:300]}", None
    if url.split("?")[0].endswith(".json"):
        try:
            data = response.json()
        except json.JSONDecodeError as error:
            return f"{url}: invalid JSON ({error}): {response.text[:300]}", None
        if data.get("ok") is False or "rows" not in data:
            return f"{url}: not a table answer: {response.text[:300]}", None
        if url.startswith("/telegram/posts.json?_size="):
            return None, data["filtered_table_rows_count"]
    elif "<html" not in response.text[:500].lower():
        return f"{url}: not an HTML page: {response.text[:300]}", None
    if url.startswith("/-/search?q="):
        return search_all_fetches(client, url, response.text), None
    return None, None


def search_all_fetches(client: httpx.Client, url: str, html: str) -> str | None:
    """What the search-all page's script then fetches: each searchable table's JSON."""
    marker = "var searchable_tables = "
    if marker not in html:
        return f"{url}: no searchable tables on the page"
    tables = json.JSONDecoder().raw_decode(html[html.index(marker) + len(marker):])[0]
    if not any(table["table"] == "posts" for table in tables):
        return f"{url}: posts is not searchable: {tables}"
    q = url.split("q=", 1)[1]
    for table in tables:
        problem, _ = read(client, f"{table['url_json']}?_shape=objects&_labels=on&_size=5&_search={q}")
        if problem:
            return problem
    return None


def crawled_posts(db_path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select count(*) from posts").fetchone()[0]
    finally:
        conn.close()


def test_site_answers_throughout_a_crawl(tmp_path):
    db_path = tmp_path / "telegram.db"
    open_db(db_path).close()  # an empty database, as before the first crawl
    fake = FakeTelegram([FakeChannel.demo(CHANNEL, POSTS, seed=1)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log, crawl_log = tmp_path / "datasette.log", tmp_path / "crawl.log"
    problems: list[str] = []
    counts: list[int] = []
    requests = 0
    with fake.serve() as telegram_url, open(server_log, "wb") as server_out, open(crawl_log, "wb") as crawl_out:
        server = subprocess.Popen(serve_command(db_path, "127.0.0.1", port), cwd=ROOT,
                                  stdout=server_out, stderr=subprocess.STDOUT)
        crawl = None
        try:
            wait_for_http(base + "/-/versions.json", server, timeout=60, log=server_log)
            crawl = subprocess.Popen(
                [sys.executable, "-m", "telegram_datasette", "crawl", "--channel", CHANNEL,
                 "--base-url", telegram_url, "--requests-per-second", "0", "--db", str(db_path)],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=crawl_out, stderr=subprocess.STDOUT,
            )
            started, crawl_seconds = time.monotonic(), 0.0
            with httpx.Client(base_url=base, timeout=30) as client:
                round_number, rounds_after = 0, 0
                while rounds_after < ROUNDS_AFTER:
                    crawling = crawl.poll() is None
                    assert time.monotonic() - started < 240, "the crawl did not end within 240 s"
                    for url in urls(round_number):
                        problem, count = read(client, url)
                        requests += 1
                        if problem:
                            problems.append(f"round {round_number} ({'during' if crawling else 'after'} the crawl): {problem}")
                        if count is not None:
                            counts.append(count)
                    round_number += 1
                    if crawling:
                        crawl_seconds = time.monotonic() - started
                    else:
                        rounds_after += 1
            assert crawl.returncode == 0, f"the crawl failed:\n{tail(crawl_log)}"
        finally:
            if crawl is not None:
                stop(crawl)
            stop(server)

    expected = crawled_posts(db_path)
    print(f"{requests} requests in {round_number} rounds, during a crawl of about {crawl_seconds:.1f} s and after it; "
          f"posts seen: {sorted(set(counts))[:3]} ... {counts[-1] if counts else None} of {expected}")
    assert not problems, f"{len(problems)} of {requests} answers failed:\n" + "\n".join(problems[:20]) + \
        f"\n--- datasette log:\n{tail(server_log)}"
    assert expected > POSTS // 2  # the crawl really wrote the channel
    assert counts == sorted(counts), "the posts count went down while the crawl only adds posts"
    distinct = sorted(set(counts))
    assert len(distinct) >= 3 and distinct[0] < expected, \
        f"the site did not show the crawl's progress, only {distinct}: the client read too rarely"
    assert counts[-1] == expected
