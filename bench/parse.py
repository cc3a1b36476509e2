"""Benchmark: the project's parser against snscrape's Telegram scraper.

Both contenders parse the same real t.me/s captures from
``shared/telegram-pages/real`` (found next to the repository), from the same
in-memory ``str``, and both build their full item objects for every post on
the page:

* the project: ``telegram_datasette.parse.parse_page(html, url)`` -> ``Page`` with its
  ``Post`` objects (and the channel header, which snscrape's ``get_items``
  does not produce);
* snscrape 0.7.0.20230622: ``TelegramChannelScraper(channel).get_items()``
  -> ``TelegramPost`` objects, its real code (BeautifulSoup + lxml), with the
  network replaced: ``_get`` returns the saved page for the first request and
  stops the pagination before a second one. A scraper is made per page inside
  the timed loop, as a real run would (about 30 us, noise next to its parse).

The project's parser is pure Python (selectolax over lexbor); targets: at least 8x
snscrape's speed while extracting at least 5x its non-empty fields per post.

Only s-pages (``__s-page`` / ``__s-before`` in the file name) are used, for
both, since snscrape only scrapes t.me/s pages. File reading happens before
timing. A round is one or more back-to-back passes over all pages, sized so
that a round lasts about the same for both (``--min-time`` / ``--rounds``);
rounds alternate between the contenders until each has ``--rounds`` rounds and
``--min-time`` seconds. posts/s comes from the best round (noise on a shared
machine only ever slows a round down); the median round is shown too.

Run from anywhere:  .venv/bin/python bench/parse.py   (``--quick``: one pass each, a smoke run)
Extra packages:     .venv/bin/pip install -r bench/requirements.txt
The last line printed is ``parse speed vs snscrape: N.Nx``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import math
import platform
import re
import statistics
import sys
import time
import types
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "telegram-pages" / "real"
S_PAGE_MARKERS = ("__s-page", "__s-before")


# --------------------------------------------------------------------------- inputs


def page_url(path: Path) -> str:
    """The URL the page was fetched from, as far as the file name tells."""
    channel = path.name.split("__", 1)[0]
    m = re.search(r"__s-before-(\d+)", path.name)
    return f"https://t.me/s/{channel}" + (f"?before={m.group(1)}" if m else "")


def load_pages(data_dir: Path) -> list[tuple[str, str, str]]:
    """[(file name, url, html str)] for the s-pages, read once, before any timing."""
    if not data_dir.is_dir():
        sys.exit(
            f"bench/parse.py: the real captures are not there: {data_dir}\n"
            "This benchmark needs shared/telegram-pages/real/*.html next to the repository "
            "(<parent of the repo>/shared/telegram-pages/real)."
        )
    files = sorted(
        p for p in data_dir.glob("*.html") if any(m in p.name for m in S_PAGE_MARKERS)
    )
    if not files:
        sys.exit(f"bench/parse.py: no s-page captures (*__s-page*.html, *__s-before*.html) in {data_dir}")
    return [(p.name, page_url(p), p.read_text(encoding="utf-8")) for p in files]


# --------------------------------------------------------------------------- contenders


def load_project_parser():
    try:
        from telegram_datasette.parse import parse_page
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("telegram_datasette"):
            sys.exit(f"bench/parse.py: the project is not installed in this Python ({sys.executable}): "
                     f"`make` (or `pip install -e '{REPO}[pipeline]'`) installs it as telegram_datasette")
        raise
    return parse_page


def load_snscrape():
    try:
        import snscrape.modules.telegram as sns_telegram
    except ImportError as exc:
        sys.exit(
            f"bench/parse.py: snscrape is not importable ({exc}).\n"
            "Install the benchmark's extra packages: .venv/bin/pip install -r bench/requirements.txt"
        )
    # Its warnings ("Possibly incorrect URL") would go to stderr inside the timed loop.
    logging.getLogger("snscrape").setLevel(logging.ERROR)
    return sns_telegram


class _Offline:
    """What snscrape reads of a requests.Response: status_code, url, text."""

    __slots__ = ("status_code", "url", "text")

    def __init__(self, url: str, text: str):
        self.status_code = 200
        self.url = url
        self.text = text


class _StopPagination(Exception):
    """Raised by the fake _get on the request for the next (older) page."""


def make_snscrape_runner(sns_telegram):
    class OfflineTelegramChannelScraper(sns_telegram.TelegramChannelScraper):
        """snscrape's scraper, unchanged but for _get: no network, one page."""

        def __init__(self, name, url, html):
            super().__init__(name)
            self._offline = _Offline(url, html)

        def _get(self, url, *args, **kwargs):
            if self._offline is None:
                raise _StopPagination(url)
            r, self._offline = self._offline, None
            return r

    def run(name: str, url: str, html: str) -> list:
        channel = url.split("/s/", 1)[1].split("?", 1)[0]
        scraper = OfflineTelegramChannelScraper(channel, url, html)
        items = []
        try:
            for item in scraper.get_items():
                items.append(item)
        except _StopPagination:
            pass
        return items

    return run


def make_project_runner(parse_page):
    def run(name: str, url: str, html: str) -> list:
        return parse_page(html, url).posts

    return run


# --------------------------------------------------------------------------- field counting


def _unwrap(tp):
    """Optional[X] / X | None -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def field_paths(cls, prefix: str = "") -> list[str]:
    """Every leaf field a dataclass can carry, nested dataclasses flattened
    ("media[].url", "linkPreview.title")."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = _unwrap(hints.get(f.name, f.type))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += field_paths(tp, f"{prefix}{f.name}.")
        elif origin is list and args and dataclasses.is_dataclass(args[0]):
            out += field_paths(args[0], f"{prefix}{f.name}[].")
        elif origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
            out += field_paths(args[1], f"{prefix}{f.name}{{}}.")
        else:
            out.append(prefix + f.name)
    return out


def _empty(v) -> bool:
    return v is None or v is False or (isinstance(v, str) and not v.strip()) or (
        isinstance(v, (list, tuple, dict, set)) and not v
    )


def filled_paths(obj, prefix: str = "") -> tuple[set[str], int]:
    """(distinct non-empty leaf paths, number of non-empty leaf values) of one item.
    None, False, blank strings and empty containers are empty; 0 is a value."""
    paths: set[str] = set()
    values = 0
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if _empty(v):
            continue
        if dataclasses.is_dataclass(v):
            p, n = filled_paths(v, f"{prefix}{f.name}.")
        elif isinstance(v, list) and dataclasses.is_dataclass(v[0]):
            p, n = set(), 0
            for item in v:
                ip, iv = filled_paths(item, f"{prefix}{f.name}[].")
                p |= ip
                n += iv
        elif isinstance(v, dict) and dataclasses.is_dataclass(next(iter(v.values()))):
            p, n = set(), 0
            for item in v.values():
                ip, iv = filled_paths(item, f"{prefix}{f.name}{{}}.")
                p |= ip
                n += iv
        else:
            p, n = {prefix + f.name}, 1
        paths |= p
        values += n
    return paths, values


def field_stats(items_per_page: list[list], item_cls) -> dict:
    items = [it for page in items_per_page for it in page]
    top = [sum(not _empty(getattr(it, f.name)) for f in dataclasses.fields(it)) for it in items]
    leaf = [filled_paths(it) for it in items]
    used: set[str] = set()
    for p, _ in leaf:
        used |= p
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return {
        "top_avg": mean(top),
        "top_total": len(dataclasses.fields(item_cls)),
        "leaf_avg": mean([len(p) for p, _ in leaf]),
        "values_avg": mean([n for _, n in leaf]),
        "leaf_total": len(field_paths(item_cls)),
        "leaf_seen": len(used),
    }


# --------------------------------------------------------------------------- timing


def time_round(run, pages, passes: int) -> tuple[float, int]:
    """Seconds per pass over all pages (mean of `passes` back-to-back passes), posts per pass."""
    gc.collect()
    posts = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        for name, url, html in pages:
            posts += len(run(name, url, html))
    return (time.perf_counter() - t0) / passes, posts // passes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: one timed pass per contender")
    ap.add_argument("--min-time", type=float, default=4.0,
                    help="seconds of timed rounds per contender, at least (default 4)")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds per contender, at least (default 20)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"captures folder (default {DATA_DIR})")
    args = ap.parse_args(argv)
    if args.quick:
        args.min_time, args.rounds = 0.0, 1

    pages = load_pages(args.data_dir)
    parse_page = load_project_parser()
    sns_telegram = load_snscrape()
    from importlib.metadata import version

    contenders = {
        "project": make_project_runner(parse_page),
        f"snscrape {version('snscrape')}": make_snscrape_runner(sns_telegram),
    }
    names = list(contenders)

    # Untimed pass: checks that both handle every page (warm-up too), counts posts and fields.
    outputs = {n: [] for n in names}
    usable = []
    for page in pages:
        results, failed = {}, False
        for n in names:
            try:
                results[n] = contenders[n](*page)
            except Exception as exc:  # noqa: BLE001 - reported, page left out for both
                print(f"! {n} failed on {page[0]}: {type(exc).__name__}: {exc}; page left out for both")
                failed = True
        if not failed:
            usable.append(page)
            for n in names:
                outputs[n].append(results[n])
    if not usable:
        sys.exit("bench/parse.py: no page that both contenders parse")
    # The item classes, for the fields they can carry: the project's Post as its parser returns it.
    first = next((it for page in outputs[names[0]] for it in page), None)
    if first is None:
        sys.exit("bench/parse.py: the project's parser found no post on any page")
    item_cls = {names[0]: type(first), names[1]: sns_telegram.TelegramPost}

    print(f"Parse benchmark  (Python {platform.python_version()}, {platform.machine()}, "
          f"{'--quick: one pass each, rough figures' if args.quick else 'wall clock'})")
    print(f"Input: the same {len(usable)} s-pages for both contenders (t.me/s captures, names with "
          f"__s-page / __s-before; embed pages left out: snscrape scrapes t.me/s only), "
          f"{sum(len(h) for _, _, h in usable) / 1024:.0f} KiB of HTML, from {args.data_dir}")
    print("Both parse the same in-memory str and build their full item objects for every post; "
          "file reading is not timed; snscrape's _get is replaced (no network) and its pagination "
          "stops after the first page.")
    pairs = list(zip(usable, outputs[names[0]], outputs[names[1]]))
    print("Posts per page (project/snscrape): "
          + "  ".join(f"{name.split('__')[0]}:{len(a)}/{len(b)}" for (name, _, _), a, b in pairs))
    mism = [name for (name, _, _), a, b in pairs if len(a) != len(b)]
    if mism:
        print(f"! post counts differ on: {', '.join(mism)}")

    # Rounds of equal length for both (a round = `passes` passes over all pages, about
    # min_time/rounds seconds), so that best-of-N favours neither; contenders alternate.
    passes = {n: 1 for n in names}
    if not args.quick:
        for n in names:
            dt, _ = time_round(contenders[n], usable, 1)
            passes[n] = max(1, math.ceil(args.min_time / args.rounds / dt))
    times = {n: [] for n in names}
    posts_per_pass = {}
    while True:
        pending = [n for n in names
                   if len(times[n]) < args.rounds or sum(times[n]) * passes[n] < args.min_time]
        if not pending:
            break
        for n in pending:
            dt, posts = time_round(contenders[n], usable, passes[n])
            times[n].append(dt)
            posts_per_pass[n] = posts

    rows = []
    for n in names:
        best, med = min(times[n]), statistics.median(times[n])
        rows.append({
            "name": n, "rounds": len(times[n]), "passes": passes[n], "best_ms": best * 1e3, "median_ms": med * 1e3,
            "posts": posts_per_pass[n], "posts_s": posts_per_pass[n] / best, "posts_s_med": posts_per_pass[n] / med,
            "pages_s": len(usable) / best, "ms_page": best * 1e3 / len(usable),
            **field_stats(outputs[n], item_cls[n]),
        })

    print()
    for r in rows:
        print(f"{r['name']}: {r['posts_s']:,.0f} posts/s, {r['pages_s']:,.1f} pages/s (best of {r['rounds']} "
              f"rounds of {r['passes']} pass(es); median round {r['posts_s_med']:,.0f} posts/s)")
        print(f"  fields per post: {r['leaf_avg']:.1f} non-empty of {r['leaf_total']} available "
              f"(nested fields flattened, each counted once per post; {r['leaf_seen']} seen at least once); "
              f"top-level {r['top_avg']:.1f} of {r['top_total']}; "
              f"{r['values_avg']:.1f} non-empty values per post counting every media/link/reaction item")
    print()
    hdr = ("contender", "pages", "posts", "rounds", "best ms", "median ms", "ms/page", "posts/s", "pages/s",
           "fields/post", "fields avail")
    table = [hdr] + [(
        r["name"], str(len(usable)), str(r["posts"]), f"{r['rounds']}x{r['passes']}", f"{r['best_ms']:.1f}",
        f"{r['median_ms']:.1f}", f"{r['ms_page']:.2f}", f"{r['posts_s']:,.0f}", f"{r['pages_s']:,.1f}",
        f"{r['leaf_avg']:.1f}", str(r["leaf_total"]),
    ) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("(ms: per pass over all pages; posts/s, pages/s, ms/page from the best round; rounds: rounds x passes; "
          "fields/post: non-empty leaf fields per post, averaged. The project also parses the channel header "
          "of each page, which snscrape's get_items does not.)")
    ratio = rows[0]["posts_s"] / rows[1]["posts_s"]
    fields = rows[0]["leaf_avg"] / rows[1]["leaf_avg"]
    print(f"fields per post vs snscrape: {fields:.1f}x (target >= 5x)")
    print(f"median-round ratio: {rows[0]['posts_s_med'] / rows[1]['posts_s_med']:.1f}x")
    print(f"parse speed vs snscrape: {ratio:.1f}x (target >= 8x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
