"""The commands as a new user runs them: `telegram-datasette build | crawl | serve |
import-pages`, from any directory, against the fake Telegram over real HTTP."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.fake_telegram import FakeChannel, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
COMMAND = shutil.which("telegram-datasette", path=str(Path(sys.executable).parent))
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on port 9: refused at once


def run(*args, cwd, **env):
    """The installed command, from `cwd`, with the checkout importable (for the demo)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([COMMAND, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def posts(db_path: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("select channel, id from posts order by channel, id").fetchall()
    finally:
        conn.close()


def config(tmp_path, text):
    path = tmp_path / "channels.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def fake():
    telegram = FakeTelegram([
        FakeChannel.demo("realchan", 30, seed=5),
        FakeChannel.demo("otherchan", 12, seed=6),
        FakeChannel.demo("closedchan", 5, seed=7, public_preview=False),
    ])
    with telegram.serve() as url:
        yield url


def test_the_command_is_installed():
    assert COMMAND, "telegram-datasette is not installed in this environment (pip install -e .)"


def test_unreachable_telegram_builds_the_demo_in_its_own_folder_then_a_real_crawl_never_mixes(tmp_path, fake):
    config(tmp_path, f"channels: [realchan]\nbase_url: {UNREACHABLE}\n")
    built = run("build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "cannot be reached" in built.stderr and "demo" in built.stderr
    demo_db = tmp_path / "demo" / "telegram.db"
    assert (tmp_path / "demo" / "archive.db").exists() and not (tmp_path / "telegram.db").exists()
    demo_channels = {c for c, _ in posts(demo_db)}
    assert "demo_embassy" in demo_channels and "demo_closed" not in demo_channels

    # t.me is back: the real crawl goes to telegram.db, never into the demo's file
    config(tmp_path, f"channels: [realchan]\nbase_url: {fake}\nrequests_per_second: 0\n")
    real = run("build", cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    assert {c for c, _ in posts(tmp_path / "telegram.db")} == {"realchan"}
    assert {c for c, _ in posts(demo_db)} == demo_channels

    # and a real crawl pointed at the demo's file is refused, with nothing written
    before = posts(demo_db)
    refused = run("crawl", "--db", str(demo_db), cwd=tmp_path)
    assert refused.returncode == 1 and "demo data" in refused.stderr
    assert posts(demo_db) == before


def test_a_missing_channel_still_stores_the_others_then_exits_non_zero(tmp_path, fake):
    config(tmp_path, f"channels: [realchan, nosuchchan, closedchan, otherchan]\nbase_url: {fake}\n"
                     "requests_per_second: 0\n")
    result = run("crawl", cwd=tmp_path)
    assert result.returncode == 1
    assert {c for c, _ in posts(tmp_path / "telegram.db")} == {"realchan", "otherchan"}
    assert "MISSING nosuchchan" in result.stderr and "MISSING closedchan" in result.stderr
    assert "2 of 4 channels could not be read (nosuchchan, closedchan)" in result.stderr


@pytest.mark.parametrize("form", ["@realchan", "t.me/realchan", "https://t.me/s/realchan", "https://t.me/realchan/7"])
def test_every_channel_name_form_crawls_the_channel(tmp_path, fake, form):
    result = run("crawl", "--channel", form, "--base-url", fake, "--requests-per-second", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {c for c, _ in posts(tmp_path / "telegram.db")} == {"realchan"}


def test_a_bad_channel_name_is_refused_with_the_rule(tmp_path, fake):
    result = run("crawl", "--channel", "t.me/+invite", "--base-url", fake, cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a public channel name" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "telegram.db").exists()


@pytest.mark.parametrize("text, needle", [
    ("channels: demo_mfa\n", "channels: expected a list of channel names, got a string"),
    ("channels: []\n", "channels: the list is empty"),
    ("channels: [demo_mfa]\nrequests_per_second: fast\n", "requests_per_second"),
    ("channels: [demo_mfa]\nrefresh_day: 3\n", "unknown key 'refresh_day'"),
    ("channels: [demo mfa]\n", "channels[0]"),
])
def test_configuration_mistakes_exit_2_in_one_line_and_crawl_nothing(tmp_path, fake, text, needle):
    config(tmp_path, text + f"base_url: {fake}\n" if "base_url" not in text else text)
    for command in ("crawl", "build"):
        result = run(command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "channels.yml" in lines[0] and needle in lines[0], lines
    assert not (tmp_path / "telegram.db").exists()


def test_a_missing_config_is_an_error_not_a_default(tmp_path):
    named = run("crawl", "--config", "missing.yml", cwd=tmp_path)
    assert named.returncode == 2 and "missing.yml: no such file" in named.stderr
    default = run("crawl", cwd=tmp_path)  # no channels.yml in this directory
    assert default.returncode == 2 and "channels.yml: no such file" in default.stderr
    assert not (tmp_path / "telegram.db").exists()


def test_serve_never_serves_an_empty_site(tmp_path):
    result = run("serve", "--no-build", "--db", str(tmp_path / "telegram.db"), cwd=tmp_path)
    assert result.returncode == 1 and "has no posts" in result.stderr


def test_db_alone_puts_the_archive_beside_it_from_any_directory(tmp_path, real_pages):
    elsewhere = tmp_path / "data"
    result = run("import-pages", str(real_pages), "--db", str(elsewhere / "telegram.db"), cwd=ROOT / "tests")
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "archive.db").exists() and not (ROOT / "tests" / "archive.db").exists()
    rebuilt = run("rebuild", "--db", str(elsewhere / "telegram.db"), "--workers", "2", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    check = run("check", "--before", str(tmp_path / "nothing"), "--db", str(elsewhere / "telegram.db"),
                "--no-smoke", cwd=tmp_path)
    assert "archive.db" in check.stdout + check.stderr


def test_serve_after_a_crawl_that_found_no_channel_serves_nothing(tmp_path, fake):
    config(tmp_path, f"channels: [nosuchchan, closedchan]\nbase_url: {fake}\nrequests_per_second: 0\n")
    result = run("serve", "--port", "9", cwd=tmp_path)
    assert result.returncode == 1
    assert "MISSING nosuchchan" in result.stderr and "has no posts: there is nothing to serve" in result.stderr
    assert "serving" not in result.stderr.replace("nothing to serve", "")
