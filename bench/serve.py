"""Benchmark: the project's Datasette against a plain Datasette, on the same 1,000,000-post file.

Builds (once, cached in bench/.cache/telegram.db) a database with the project's schema
(telegram_datasette.schema: every table, index and the search queue) holding 1,000,000
generated posts in 5 channels, with media, reactions, hashtags, links, view snapshots and
the full-text index, by straight SQL inserts of generated rows; the search index and
languages by the real derive step with its places part switched off.

Then serves it on loopback twice, both servers up side by side (an idle one costs nothing),
with the same settings (--immutable, and the project's SERVE_SETTINGS: sql_time_limit_ms,
max_returned_rows, suggest_facets off):

* project: `datasette serve` as the project serves (telegram_datasette.publish.serve_command:
  metadata.yml, --template-dir templates, its plugins from the installed package's entry
  points, and the other installed plugins), plus --immutable;
* plain:   `datasette serve` with no metadata, no templates and every installed plugin
  switched off, the project's included (Datasette 0.65 ignores DATASETTE_LOAD_PLUGINS; it
  skips installed plugins when sys._called_from_test is set, so plain runs its CLI that way,
  and unregisters the project's plugins should any be loaded; checked with /-/plugins.json).

URLs: the posts table (as each serves it by default: the project sorted by date, newest
first, as cards; plain Datasette by rowid), a post page, a facet page (?_facet=kind), a search
(?_search=...); and, on the project alone (plain Datasette has neither), the channel page
(its HTML and the 13 chart queries its JavaScript fetches, loaded together as one page) and
the search-all page. The HTML size of each page is printed too. Each server first gets a warm-up (every URL, --warmup requests each, at the
measuring concurrency). Then, in each of --rounds rounds, for each URL, the two servers are
measured back to back (project first in odd rounds, plain first in even ones): --requests
requests from --concurrency concurrent clients (httpx over loopback), giving requests per
second and the 95th-percentile latency.

The machine is shared and noisy, so the overhead of a URL is computed per round from the
pair measured back to back (plain req/s / project req/s - 1) and the MEDIAN over rounds is
reported; the req/s and p95 columns are medians over rounds too. The last line printed is
`serve overhead vs plain datasette: N%`, the mean of the four URLs' median overheads.

Run:  .venv/bin/python bench/serve.py  [--requests 60] [--concurrency 4] [--rounds 5] [--warmup 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
DB = CACHE / "telegram.db"
N_POSTS = 1_000_000
# Bumped when the cached database must be built again (2: telegram_datasette.schema; 3: post keys).
CACHE_FORMAT = 3
# The project's Datasette plugins (pyproject.toml [project.entry-points.datasette]).
PROJECT_PLUGINS = ("telegram_search", "telegram_render", "telegram_search_all_menu",
                   "telegram_static_metadata", "telegram_site")
CHANNELS = ["RusEmbNo", "MID_Russia", "RusEmbUK", "EmbRusUSA", "mfa_norway"]

WORDS_RU = ("посол россия норвегия осло встреча министр заявление санкции сотрудничество арктика "
            "шпицберген мурманск москва переговоры посольство народ история память победа "
            "экономика энергия рыболовство граница соглашение визит делегация культура").split()
WORDS_EN = ("ambassador russia norway oslo meeting minister statement sanctions cooperation arctic "
            "svalbard murmansk moscow talks embassy people history memory victory economy energy "
            "fisheries border agreement visit delegation culture").split()
HASHTAGS = ["Норвегия", "Russia", "Arctic", "МИД", "Diplomacy", "Svalbard", "History", "Победа"]
DOMAINS = ["mid.ru", "regjeringen.no", "tass.ru", "nrk.no", "kremlin.ru", "youtube.com"]


def derive_search(db) -> int:
    """The derive step (language and stemmed search index) with its places part switched
    off: `telegram_datasette.derive.derive` as it runs, but `places.update_places` does
    nothing (places extraction, about 6 ms a post, is left out of the bench database)."""
    from unittest import mock

    from telegram_datasette import places
    from telegram_datasette.derive import derive

    with mock.patch.object(places, "update_places", lambda db, rowids, map_=map: 0):
        return derive(db)


def build_database(path: Path, n_posts: int) -> None:
    from telegram_datasette.schema import open_db

    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        if leftover.exists():
            leftover.unlink()
    db = open_db(tmp)  # the project's schema (its migrations), in WAL mode
    # A plain rollback-journal file (served --immutable), written without a journal.
    db.execute("pragma journal_mode = off")
    db.execute("pragma synchronous = off")
    rng = random.Random(42)
    start = time.monotonic()
    per_channel = n_posts // len(CHANNELS)
    batch_size = 20_000
    for c, channel in enumerate(CHANNELS):
        db["channels"].insert({"username": channel, "title": channel, "subscribers": 10_000 * (c + 1),
                               "subscribers_text": f"{10 * (c + 1)}K", "channel_id": 1000 + c})
        for first in range(1, per_channel + 1, batch_size):
            posts, media, reactions, hashtags, links, views = [], [], [], [], [], []
            for post_id in range(first, min(first + batch_size, per_channel + 1)):
                words = WORDS_RU if rng.random() < 0.6 else WORDS_EN
                text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 60)))
                tag = rng.choice(HASHTAGS)
                text += f" #{tag}"
                if rng.random() < 0.002:  # a rare word, for a search with a realistic hit count
                    text += " Barentsburg"
                seconds = 1_450_000_000 + post_id * (3.2e8 / per_channel)
                date = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))
                forwarded = rng.random() < 0.4
                view_count = rng.randint(100, 200_000)
                kind = rng.choice(["text", "text", "photo", "video", "album"])
                key = f"{channel}/{post_id}"  # telegram_datasette.schema.post_key
                posts.append((key, channel, post_id, f"https://t.me/{channel}/{post_id}", date, text,
                              text.replace("\n", "<br>"), view_count, str(view_count), 0, 0, kind,
                              "МИД России" if forwarded else None, "MID_Russia" if forwarded else None,
                              rng.randint(1, 50_000) if forwarded else None,
                              "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00",
                              f"{rng.getrandbits(64):016x}"))
                if kind in ("photo", "video", "album"):
                    media.append((key, channel, post_id, 0, "photo" if kind != "video" else "video",
                                  f"https://cdn4.telesco.pe/file/{post_id}.jpg", f"https://cdn4.telesco.pe/file/{post_id}t.jpg"))
                reactions.append((key, channel, post_id, "👍", 0, "👍", rng.randint(1, 900), "1"))
                hashtags.append((key, channel, post_id, tag))
                if rng.random() < 0.3:
                    domain = rng.choice(DOMAINS)
                    links.append((key, channel, post_id, 0, f"https://{domain}/news/{post_id}", domain, "link"))
                views.append((key, channel, post_id, "2026-01-01T00:00:00+00:00", view_count))
            with db.conn:
                db.conn.executemany(
                    "insert into posts (post, channel, id, url, date, text, html, views, views_text, views_precision, "
                    "edited, kind, forwarded_from_name, forwarded_from_channel, forwarded_from_id, first_seen_at, "
                    "last_seen_at, children_sha256) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", posts)
                db.conn.executemany("insert into media (post, channel, post_id, position, kind, url, thumbnail_url) values (?,?,?,?,?,?,?)", media)
                db.conn.executemany("insert into reactions (post, channel, post_id, reaction, position, emoji, count, count_text) values (?,?,?,?,?,?,?,?)", reactions)
                db.conn.executemany("insert into hashtags (post, channel, post_id, hashtag) values (?,?,?,?)", hashtags)
                db.conn.executemany("insert into links (post, channel, post_id, position, url, domain, text) values (?,?,?,?,?,?,?)", links)
                db.conn.executemany("insert into view_snapshots (post, channel, post_id, fetched_at, views) values (?,?,?,?,?)", views)
            done = c * per_channel + min(first + batch_size - 1, per_channel)
            print(f"\r  built {done:,} posts ({time.monotonic() - start:.0f}s)", end="", flush=True)
    print()
    db.conn.commit()
    print("  indexing for search (telegram_datasette.derive without places: language detection and stemming)...",
          flush=True)
    derive_search(db)
    db.execute("analyze")
    db.conn.commit()
    db.close()
    os.replace(tmp, path)


def ensure_indexes(path: Path) -> None:
    """A cached database built before an index joined telegram_datasette.schema.INDEXES
    gets it now, and the migrations since it was built (as the project's own commands
    would apply them when they open it), in rollback-journal mode as before."""
    import sqlite_utils

    from telegram_datasette.schema import INDEXES, migrations, open_db

    db = sqlite_utils.Database(path)
    if migrations.pending(db):
        db.close()
        print("  applying the schema's new migrations to the cached database", flush=True)
        open_db(path).close()
        db = sqlite_utils.Database(path)
        db.execute("pragma journal_mode = delete")
    names = "select name from sqlite_master where type = 'index'"
    before = {r[0] for r in db.execute(names)}
    for table, columns in INDEXES:
        db[table].create_index(columns, if_not_exists=True)
    if {r[0] for r in db.execute(names)} != before:
        print("  added indexes from telegram_datasette.schema.INDEXES to the cached database", flush=True)
        db.execute("analyze")
    db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PLAIN_DATASETTE = (
    # Datasette 0.65 ignores DATASETTE_LOAD_PLUGINS (a 1.0 setting) and loads every installed
    # plugin, the project's own (entry points) included; it skips them when
    # sys._called_from_test is set. Should any of the project's be loaded anyway, it is
    # unregistered before the CLI runs.
    "import sys; sys._called_from_test = True\n"
    "from datasette.plugins import pm\n"
    f"for name in {PROJECT_PLUGINS!r}:\n"
    "    if pm.get_plugin(name): pm.unregister(name=name)\n"
    "from datasette.cli import cli\n"
    "cli()\n"
)


def start_server(kind: str) -> tuple[subprocess.Popen, str]:
    from telegram_datasette.publish import serve_command, settings_args

    port = free_port()
    env = dict(os.environ)
    if kind == "project":
        # As the project serves (metadata.yml, templates, settings, its plugins), read-only
        # like the plain one: --immutable instead of the plain file argument.
        command = serve_command(DB, "127.0.0.1", port)
        position = command.index(str(DB))
        command[position:position + 1] = ["--immutable", str(DB)]
    else:
        # The same settings (Datasette's facet suggestions scan the table once per column:
        # about 6 s per table page on 1M posts; the project turns them off).
        command = [sys.executable, "-c", PLAIN_DATASETTE, "serve", "--immutable", str(DB), *settings_args(),
                   "--host", "127.0.0.1", "--port", str(port)]
        env["DATASETTE_LOAD_PLUGINS"] = ""  # no installed plugins either (Datasette 1.0)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/-/versions.json", timeout=5)
            plugins = [p["name"] for p in httpx.get(base + "/-/plugins.json", timeout=5).json()]
            print(f"{kind} server: plugins {plugins}", flush=True)
            if kind == "plain" and plugins:
                process.terminate()
                raise SystemExit(f"plain datasette has plugins loaded: {plugins}")
            return process, base
        except httpx.TransportError:
            if process.poll() is not None:
                raise SystemExit(f"{kind} datasette exited with {process.returncode}")
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"{kind} datasette did not start")


async def measure(base: str, path: str, n_requests: int, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(range(n_requests))

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async def worker():
            while queue:
                queue.pop()
                begin = time.perf_counter()
                # A page and what its JavaScript fetches (a list of paths) load together, as a browser does.
                responses = await asyncio.gather(*(client.get(p) for p in ([path] if isinstance(path, str) else path)))
                latencies.append(time.perf_counter() - begin)
                for response in responses:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": n_requests / elapsed,
        "p95_ms": 1000 * latencies[max(0, int(0.95 * len(latencies)) - 1)],
        "median_ms": 1000 * statistics.median(latencies),
        "statuses": statuses,
    }


def channel_page(channel: str) -> list[str]:
    """The channel page (datasette-dashboards): its HTML, then one JSON query per chart,
    as its JavaScript fetches them (metadata.yml's dashboard, the channel as the filter)."""
    import urllib.parse

    import yaml

    dashboard = yaml.safe_load((ROOT / "metadata.yml").read_text())["plugins"]["datasette-dashboards"]["channel"]
    page = f"/-/dashboards/channel?channel={channel}"
    return [page] + [f"/{chart['db']}.json?sql={urllib.parse.quote(chart['query'])}&channel={channel}&_shape=objects"
                     for chart in dashboard["charts"].values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="requests per URL per server per round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=8, help="warm-up requests per URL per server")
    parser.add_argument("--posts", type=int, default=N_POSTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")  # never commit the generated database
    stamp = CACHE / "telegram.db.posts"
    wanted = f"{args.posts} posts, format {CACHE_FORMAT}"
    if not DB.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"building {args.posts:,}-post database in {DB} (once; cached)")
        build_database(DB, args.posts)
        stamp.write_text(wanted)
    ensure_indexes(DB)

    channel = CHANNELS[0]
    urls = {
        "posts table": "/telegram/posts",
        "post page": f"/telegram/posts/{channel}~2F{args.posts // len(CHANNELS) // 2}",
        "facet page": "/telegram/posts?_facet=kind",
        "search": "/telegram/posts?_search=barentsburg",
    }
    # Pages only the project has (plain Datasette has no channel page or search-all): p95 only.
    project_only = {
        "channel page": channel_page(channel),
        "search-all": "/-/search?q=barentsburg",
    }
    kinds = ("project", "plain")
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    alone: dict[str, list[dict]] = {n: [] for n in project_only}
    sizes: dict[tuple[str, str], int] = {}
    results: dict[tuple[str, str], list[dict]] = {(k, n): [] for k in kinds for n in urls}
    overheads: dict[str, list[float]] = {n: [] for n in urls}
    try:
        for kind in kinds:
            servers[kind] = start_server(kind)
        import httpx

        for kind in kinds:
            for name, path in urls.items():
                asyncio.run(measure(servers[kind][1], path, args.warmup, args.concurrency))
                sizes[(kind, name)] = len(httpx.get(servers[kind][1] + path, timeout=60).content)
        for name, path in project_only.items():
            asyncio.run(measure(servers["project"][1], path, args.warmup, args.concurrency))
            first = path if isinstance(path, str) else path[0]
            sizes[("project", name)] = len(httpx.get(servers["project"][1] + first, timeout=60).content)
        for round_number in range(args.rounds):
            order = kinds if round_number % 2 == 0 else kinds[::-1]
            for name, path in urls.items():
                pair = {}
                for kind in order:
                    pair[kind] = result = asyncio.run(measure(servers[kind][1], path, args.requests, args.concurrency))
                    results[(kind, name)].append(result)
                    print(f"round {round_number + 1} {kind:8} {name:12} {result['rps']:7.1f} req/s  "
                          f"p95 {result['p95_ms']:7.1f} ms  statuses {result['statuses']}", flush=True)
                overheads[name].append(pair["plain"]["rps"] / pair["project"]["rps"] - 1)
            for name, path in project_only.items():
                alone[name].append(result := asyncio.run(measure(servers["project"][1], path, args.requests, args.concurrency)))
                print(f"round {round_number + 1} project  {name:12} {result['rps']:7.1f} req/s  "
                      f"p95 {result['p95_ms']:7.1f} ms  statuses {result['statuses']}", flush=True)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=20)

    def median_of(kind, name, metric):
        return statistics.median(r[metric] for r in results[(kind, name)])

    print()
    print(f"medians of {args.rounds} rounds ({args.requests} requests per URL per server per round, "
          f"concurrency {args.concurrency}); overhead = median over rounds of the back-to-back pair's ratio")
    print(f"{'url':14} {'project req/s':>14} {'p95 ms':>8} {'plain req/s':>12} {'p95 ms':>8} {'overhead':>9}")
    url_overheads = []
    for name in urls:
        overhead = statistics.median(overheads[name])
        url_overheads.append(overhead)
        print(f"{name:14} {median_of('project', name, 'rps'):14.1f} {median_of('project', name, 'p95_ms'):8.1f} "
              f"{median_of('plain', name, 'rps'):12.1f} {median_of('plain', name, 'p95_ms'):8.1f} {100 * overhead:8.1f}%")
    for name in project_only:
        print(f"{name:14} {statistics.median(r['rps'] for r in alone[name]):14.1f} "
              f"{statistics.median(r['p95_ms'] for r in alone[name]):8.1f} {'(project only)':>31}")
    print("HTML bytes: " + ", ".join(f"{name} {sizes[(kind, name)] / 1024:,.0f} KB ({kind})" for kind, name in sizes))
    print(f"default posts page: {sizes[('project', 'posts table')] / 1024:,.0f} KB of HTML (target under 250 KB)")
    print(json.dumps({name: [round(100 * o, 1) for o in values] for name, values in overheads.items()}))
    print(f"serve overhead vs plain datasette: {100 * statistics.mean(url_overheads):.0f}%")


if __name__ == "__main__":
    main()
