"""Telegram Desktop export benchmark: `import-export` of the real 3,719-message export and
of generated exports of growing size, each in its own process.

    .venv/bin/python bench/export.py [--messages 1000000] [--messages 100000] ...

Reports messages per second (reading, converting, archiving and storing; the derive step
is the same as for crawled posts, see bench/crawl.py) and the peak memory of the
importing process, which must not grow with the file. Generated exports are written
to a temporary folder as a stream, in the exporter's layout, with this project's own
words: text with links, hashtags and formatting, photos, videos, documents, edits,
forwards, replies and reactions.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "telegram-exports" / "real" / "guzelskie_perezalivy__result_full_3719msgs.json"
WORDS = ("harbour ferry office opens notice schedule winter road closed tomorrow morning island bridge "
         "council meeting library market square weather storm delay tickets station").split()
NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


def generated_message(rng: random.Random, message_id: int, when: int) -> dict:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
    entities = [{"type": "plain", "text": words.capitalize() + ".\n\n"},
                {"type": "bold", "text": rng.choice(WORDS)}, {"type": "plain", "text": " "},
                {"type": "text_link", "text": "read more", "href": f"https://example.org/{message_id}"},
                {"type": "plain", "text": " "}, {"type": "hashtag", "text": "#" + rng.choice(WORDS)}]
    m = {"id": message_id, "type": "message", "date": "2026-01-01T00:00:00", "date_unixtime": str(when),
         "from": "Bench harbour", "from_id": "channel9000000001",
         "text": entities, "text_entities": entities}
    roll = rng.random()
    if roll < 0.3:
        m.update(photo=NOT_INCLUDED, photo_file_size=rng.randint(10_000, 900_000), width=1280, height=720)
    elif roll < 0.5:
        m.update(file=NOT_INCLUDED, file_name="clip.mp4", file_size=rng.randint(10**6, 10**8),
                 media_type="video_file", mime_type="video/mp4", duration_seconds=rng.randint(5, 600))
    elif roll < 0.55:
        m.update(file=NOT_INCLUDED, file_name="minutes.pdf", file_size=12345, mime_type="application/pdf")
    if rng.random() < 0.4:
        m.update(edited="2026-01-01T00:00:00", edited_unixtime=str(when + rng.randint(10, 5000)))
    if rng.random() < 0.1:
        m.update(forwarded_from="Bench council", forwarded_from_id="channel9000000002")
    if rng.random() < 0.05 and message_id > 1:
        m["reply_to_message_id"] = message_id - 1
    if rng.random() < 0.3:
        m["reactions"] = [{"type": "emoji", "count": rng.randint(1, 500), "emoji": e} for e in ("👍", "🔥")]
    return m


def write_export(path: Path, messages: int, seed: int = 1) -> None:
    """A one-channel export, written message by message (bounded memory here too)."""
    rng = random.Random(seed)
    when = 1_700_000_000
    with open(path, "w", encoding="utf-8") as out:
        out.write('{\n "name": "Bench harbour",\n "type": "public_channel",\n "id": 9000000001,\n "messages": [\n')
        for i in range(1, messages + 1):
            when += rng.randint(30, 3000)
            out.write(("  " if i == 1 else ",\n  ") + json.dumps(generated_message(rng, i, when), ensure_ascii=False))
        out.write("\n ]\n}\n")


def import_once(path: Path) -> dict:
    """In this process: import `path` into a fresh database; timings and peak memory."""
    from telegram_datasette.desktop_export import import_export
    from telegram_datasette.schema import open_archive, open_db

    with tempfile.TemporaryDirectory() as tmp:
        db, adb = open_db(Path(tmp) / "telegram.db"), open_archive(Path(tmp) / "archive.db")
        started = time.perf_counter()
        totals = import_export(path, db, adb, echo=lambda line: None)
        seconds = time.perf_counter() - started
    return {"messages": totals["messages"], "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(path: Path) -> dict:
    """import_once in a child process, so that each figure is that import's own peak."""
    output = subprocess.run([sys.executable, __file__, "--one", str(path)], check=True, capture_output=True,
                            text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(label: str, path: Path, figures: dict) -> None:
    size = path.stat().st_size / 1e6
    print(f"{label}: {figures['messages']:,} messages ({size:,.1f} MB) in {figures['seconds']:.1f} s: "
          f"{figures['messages'] / figures['seconds']:,.0f} messages/s, peak memory {figures['peak_mb']:.0f} MB",
          flush=True)


@click.command()
@click.option("--messages", "sizes", type=int, multiple=True, help="Generated export sizes  [default: 10,000, 100,000 and 1,000,000]")
@click.option("--one", type=click.Path(path_type=Path), hidden=True)
def main(sizes, one):
    if one is not None:
        print(json.dumps(import_once(one)))
        return
    if REAL.is_file():
        report("real export", REAL, measure(REAL))
    else:
        print(f"real export not available at {REAL}: skipped")
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes or (10_000, 100_000, 1_000_000):
            path = Path(tmp) / f"result-{n}.json"
            write_export(path, n)
            figures = measure(path)
            report("generated export", path, figures)
            peaks.append((n, figures["peak_mb"]))
            path.unlink()
    if len(peaks) > 1:
        (small, low), (large, high) = peaks[0], peaks[-1]
        print(f"peak memory {low:.0f} MB at {small:,} messages, {high:.0f} MB at {large:,} "
              f"({large // small}x the messages, {high / low:.2f}x the memory)")


if __name__ == "__main__":
    main()
