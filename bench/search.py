"""Search at scale: build, size and latency of the stemmed index over generated posts.

    .venv/bin/python bench/search.py [--posts 1000000] [--queries 100] [--dir build/bench-search]

1. Generates posts (half Russian, half English, inflected words with a Zipf-like
   frequency, lengths like a channel's: mostly a few sentences, some long).
2. Builds telegram.db without the stemmed index (posts rows only) and reports
   time and size; then adds the stemmed index and languages with the real
   `scripts.search.index_posts` and reports time and size again.
3. Serves it with `datasette serve` exactly as `make serve` does (project
   metadata, plugins, --immutable) on a loopback port, and measures over HTTP the
   median and 95th percentile latency of the `search` canned query and of the
   posts table search (the JSON that datasette-search-all asks for), for one- and
   two-word queries. Target: p95 under 100 ms. The last line is `search p95: N ms`
   (the worst p95 of all four).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RU_STEMS = [
    ("Норвеги", ["я", "и", "ю", "ей"]), ("Росси", ["я", "и", "ю", "ей"]), ("санкци", ["я", "и", "й", "ями", "ях"]),
    ("посольств", ["о", "а", "у", "ом", "е"]), ("посл", ["ом", "а", "у"]), ("министр", ["", "а", "у", "ом"]),
    ("переговор", ["ы", "ов", "ам", "ах"]), ("встреч", ["а", "и", "у", "ей"]), ("заявлени", ["е", "я", "ю", "ем"]),
    ("сотрудничеств", ["о", "а", "у", "ом"]), ("Арктик", ["а", "и", "у", "ой"]), ("безопасност", ["ь", "и", "ью"]),
    ("дипломат", ["", "ы", "ов", "ам"]), ("отношени", ["я", "й", "ям", "ях"]), ("праздник", ["", "а", "ом", "и"]),
    ("выставк", ["а", "и", "у", "ой"]), ("консульств", ["о", "а", "е"]), ("граждан", ["е", "ам", "ами"]),
    ("Москв", ["а", "ы", "у", "е"]), ("Осло", [""]), ("Киркенес", ["", "а", "е"]), ("Баренцев", ["о", "а"]),
    ("мор", ["е", "я", "ю"]), ("истори", ["я", "и", "ю"]), ("памят", ["ь", "и", "ью"]), ("побед", ["а", "ы", "у"]),
    ("ветеран", ["", "ы", "ов", "ам"]), ("Запад", ["", "а", "у", "ом"]), ("правительств", ["о", "а", "у"]),
    ("рыболовств", ["о", "а", "е"]), ("визит", ["", "а", "у", "ом"]), ("брифинг", ["", "а", "е"]),
]
RU_COMMON = "и в на с по о не что это для как из от мы его к за также был будет".split()
EN_WORDS = (
    "Norway Norwegian Russia Russian sanction sanctions embassy embassies ambassador ambassadors minister "
    "talks meeting meetings statement statements cooperation Arctic security diplomat diplomats relations "
    "holiday exhibition consulate citizens Moscow Oslo Kirkenes Barents sea history memory victory veteran "
    "veterans West government governments fishing visit visits briefing spokeswoman visa visas council"
).split()
EN_COMMON = "the of and to in a on for is that with by at as was from this will be".split()


def words(rng: random.Random, language: str, n: int) -> list[str]:
    if language == "ru":
        out = []
        for _ in range(n):
            if rng.random() < 0.45:
                out.append(rng.choice(RU_COMMON))
            else:
                stem, endings = RU_STEMS[min(int(rng.paretovariate(1.1)) - 1, len(RU_STEMS) - 1)]
                out.append(stem + rng.choice(endings))
        return out
    return [
        rng.choice(EN_COMMON) if rng.random() < 0.45
        else EN_WORDS[min(int(rng.paretovariate(1.1)) - 1, len(EN_WORDS) - 1)]
        for _ in range(n)
    ]


def post_text(rng: random.Random, language: str) -> str:
    # Channel posts: a headline and a few sentences (median ~45 words), some long.
    n = max(3, min(600, int(rng.lognormvariate(3.8, 0.7))))
    ws = words(rng, language, n)
    sentences, i = [], 0
    while i < len(ws):
        k = rng.randint(6, 16)
        sentence = " ".join(ws[i:i + k])
        sentences.append(sentence[:1].upper() + sentence[1:] + ".")
        i += k
    return " ".join(sentences)


def generate(count: int, seed: int = 1):
    rng = random.Random(seed)
    for i in range(1, count + 1):
        language = "ru" if i % 2 else "en"
        forwarded = rng.random() < 0.6
        yield (
            "benchchan", i, f"https://t.me/benchchan/{i}",
            f"20{15 + i * 10 // count:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+00:00",
            post_text(rng, language), "text", "МИД России" if forwarded else None,
            "MID_Russia" if forwarded else None,
        )


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def build_plain(path: Path, count: int) -> float:
    """posts rows only (the store's schema, without the search index)."""
    from scripts.search import PENDING_TABLE, STEMS_TABLE, _triggers
    from scripts.store import open_db

    db = open_db(path)
    for name in _triggers():
        db.execute(f"drop trigger if exists [{name}]")
    for name in ("posts_fts", STEMS_TABLE, PENDING_TABLE, STEMS_TABLE + "_version"):
        db.execute(f"drop table if exists [{name}]")
    db.conn.commit()
    started = time.perf_counter()
    with db.atomic():
        db.conn.executemany(
            "insert into posts (channel, id, url, date, text, kind, forwarded_from_name, forwarded_from_channel) "
            "values (?, ?, ?, ?, ?, ?, ?, ?)",
            generate(count),
        )
    db.conn.execute("pragma wal_checkpoint(truncate)")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def build_index(path: Path) -> float:
    from scripts.search import index_posts
    from scripts.store import open_db

    started = time.perf_counter()
    db = open_db(path)  # creates the index and queues every post
    index_posts(db, batch_size=5000)
    db.conn.execute("pragma wal_checkpoint(truncate)")
    db.conn.execute("pragma journal_mode = delete")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def query_words(rng: random.Random, n: int, two: bool) -> list[str]:
    pool_ru = [stem + endings[0] for stem, endings in RU_STEMS] + ["Норвегии", "санкций", "посольстве"]
    pool_en = EN_WORDS
    out = []
    for i in range(n):
        pool = pool_ru if i % 2 else pool_en
        out.append(" ".join(rng.sample(pool, 2)) if two else rng.choice(pool))
    return out


def measure(base: str, paths: list[str]) -> tuple[float, float, int]:
    import httpx

    timings, rows = [], 0
    with httpx.Client(timeout=60) as client:
        client.get(base + paths[0])  # warm up
        for path in paths:
            started = time.perf_counter()
            response = client.get(base + path)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            rows += len(response.json().get("rows", []))
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))], rows


def serve(path: Path, workdir: Path):
    from scripts.build import write_metadata

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import free_port, serve_command, wait_for_http

    metadata = workdir / "metadata.json"
    write_metadata(metadata, demo=False)
    port = free_port()
    process = subprocess.Popen(serve_command(path, metadata, port), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(base + "/-/versions.json", process, timeout=120)
    return process, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=ROOT / "build" / "bench-search")
    parser.add_argument("--reuse", action="store_true", help="reuse a database built by a previous run")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "telegram.db"
    if not (args.reuse and path.exists()):
        for old in args.dir.glob("telegram.db*"):
            old.unlink()
        plain_s = build_plain(path, args.posts)
        plain_mb = size_mb(path)
        print(f"posts: {args.posts:,} generated posts (ru/en), no search index: build {plain_s:.1f} s, {plain_mb:.0f} MB")
        index_s = build_index(path)
        index_mb = size_mb(path)
        print(f"with stemmed index and languages (index_posts): +{index_s:.1f} s, {index_mb:.0f} MB "
              f"(+{index_mb - plain_mb:.0f} MB)")
        conn = sqlite3.connect(path)
        print("languages: " + ", ".join(f"{l} {n:,}" for l, n in conn.execute(
            "select language, count(*) from posts group by 1 order by 2 desc")))
        conn.close()
    rng = random.Random(7)
    process, base = serve(path, args.dir)
    worst = 0.0
    try:
        for two in (False, True):
            queries = query_words(rng, args.queries, two)
            label = "two-word" if two else "one-word"
            for kind, template in (
                ("canned search", "/telegram/search.json?q={}&_shape=objects"),
                ("table search", "/telegram/posts.json?_search={}&_shape=objects&_labels=on&_size=5"),
            ):
                median, p95, rows = measure(base, [template.format(quote(q)) for q in queries])
                worst = max(worst, p95)
                print(f"{kind:14s} {label}: median {median:.0f} ms, p95 {p95:.0f} ms "
                      f"({args.queries} queries, {rows / len(queries):.0f} rows each)")
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"search p95: {worst:.0f} ms")


if __name__ == "__main__":
    main()
