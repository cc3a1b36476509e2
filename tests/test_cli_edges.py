"""The commands at the edges: two crawls at once, a full disk, input that cannot be read.
Each ends in one clear line with a non-zero status, and the data stays valid."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.fake_telegram import FakeChannel, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "telegram_datasette"]


def run(*args, cwd, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*COMMAND, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def count(db_path, sql="select count(*) from posts"):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_second_crawl_of_the_same_files_says_another_is_running(tmp_path):
    fake = FakeTelegram([FakeChannel.demo("busychan", 400, seed=3)])
    with fake.serve() as url:
        # Pages only: at 4 requests a second, the media stage would hold the lock for minutes.
        (tmp_path / "pages-only.yml").write_text("channels: [busychan]\nmedia_images: false\nfollow_forwards: 'off'\n")
        crawl = ["crawl", "--channel", "busychan", "--base-url", url, "--db", str(tmp_path / "telegram.db"),
                 "--config", str(tmp_path / "pages-only.yml")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        first = subprocess.Popen([*COMMAND, *crawl, "--requests-per-second", "4"], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (tmp_path / "telegram.db.lock").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
            second = run(*crawl, "--requests-per-second", "0", cwd=tmp_path)
            assert second.returncode == 1
            assert len(second.stderr.strip().splitlines()) == 1
            assert "another command is writing" in second.stderr
        finally:
            out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    assert count(tmp_path / "telegram.db") == 400
    # the lock went with the first process: a third crawl runs
    with fake.serve() as url:
        third = run("crawl", "--channel", "busychan", "--base-url", url, "--requests-per-second", "0",
                    "--db", str(tmp_path / "telegram.db"), "--config", str(tmp_path / "pages-only.yml"), cwd=tmp_path)
    assert third.returncode == 0, third.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs to fill needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_clear_line_and_the_data_stays_valid(small_disk, tmp_path):
    db = small_disk / "telegram.db"
    fake = FakeTelegram([FakeChannel.demo("bigchan", 3000, seed=4)])
    with fake.serve() as url:
        full = run("crawl", "--channel", "bigchan", "--base-url", url, "--requests-per-second", "0",
                   "--db", str(db), cwd=tmp_path)
        assert full.returncode == 1
        assert last_line(full).startswith("Error: the disk is full"), full.stderr[-2000:]
        assert "Traceback" not in full.stderr
        for name in ("telegram.db", "archive.db"):
            conn = sqlite3.connect(small_disk / name)
            assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
            conn.close()
        stored = count(db)
        # room again: the next run carries on from what was stored
        subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
        again = run("crawl", "--channel", "bigchan", "--base-url", url, "--requests-per-second", "0",
                    "--db", str(db), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert count(db) == 3000 >= stored


def test_import_pages_exits_non_zero_when_nothing_could_be_read(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "a.html").write_text("<html><body>not telegram</body></html>")
    (tmp_path / "pages" / "b.html").write_bytes(b"\x00\xff" * 100)
    result = run("import-pages", str(tmp_path / "pages"), "--db", str(tmp_path / "telegram.db"), cwd=tmp_path)
    assert result.returncode == 1 and "none of the 2 files given could be read" in result.stderr
    empty = run("import-pages", str(tmp_path / "pages" / ".."), "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert empty.returncode == 1  # everything failed again


def test_only_regular_files_are_read(tmp_path, real_pages):
    fifo = tmp_path / "blocking.html"
    os.mkfifo(fifo)
    page = next(p for p in sorted(real_pages.glob("*__s-page*.html")))
    result = run("import-pages", str(fifo), str(page), "--db", str(tmp_path / "telegram.db"), cwd=tmp_path,
                 timeout=120)
    assert result.returncode == 0, result.stderr
    assert "not a regular file" in result.stderr and count(tmp_path / "telegram.db") > 0
