"""`restore` when what it restores from is damaged, missing or down: each file is taken on
its own from the first source that has it sound, and a file that some source may hold
but none could give is never started fresh unless the run says so (--allow-fresh true).

The damaged files are the first run's own databases (tests/test_workflow.py), truncated
or overwritten; the release is served by the same stand-in for `gh`, the site by a web
server on loopback.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.test_workflow import (  # noqa: F401  (first_run and site_server are fixtures)
    REPO, Runner, continue_from, first_run, rows, scripts_command, site_server,
)

DOWN = "http://127.0.0.1:9"  # nothing listens there: connection refused


def truncate(path: Path) -> None:
    """Half a file, as an interrupted upload or download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite(path: Path) -> None:
    """Something else entirely where the database should be."""
    path.write_bytes(b"<!doctype html><html><body>Bad gateway</body></html>\n" * 50)


def restore(runner: Runner, *args: str, **env: str):
    result = scripts_command(runner, "restore", *args, **env)
    return result.returncode, result.stdout + result.stderr


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("::error")]


def data_files(runner: Runner) -> set[str]:
    """telegram.db and archive.db restored (media.db, restored on its own, is tested in test_workflow)."""
    data = runner.work / "data"
    return {p.name for p in data.iterdir() if p.name.endswith(".db") and p.name != "media.db"} if data.exists() else set()


def restore_info(runner: Runner) -> dict:
    return json.loads((runner.work / "before" / "restore.json").read_text())


def next_archive_id(archive: Path) -> int:
    """The id the crawl's next archived fetch gets (a throwaway copy of the archive)."""
    from telegram_datasette.archive import archive_page
    from telegram_datasette.schema import open_archive

    copy = archive.with_name("probe.db")
    shutil.copyfile(archive, copy)
    adb = open_archive(copy)
    try:
        return archive_page(adb, b"<html></html>", url="https://t.me/s/probe", fetched_at="2030-01-01T00:00:00+00:00",
                            status=200)["id"]
    finally:
        adb.close()
        for leftover in copy.parent.glob("probe.db*"):
            leftover.unlink()


def last_fetch_id(db: Path) -> int:
    return max(r[0] for r in rows(db, "select max(id) from fetches union all select max(fetch_id) from posts"))


@pytest.fixture
def release(first_run, tmp_path) -> Path:
    """A copy of the first run's release (and site folder), for this test to damage."""
    return continue_from(first_run, tmp_path)


@pytest.fixture
def good_site(release, site_server) -> str:
    """The published site, serving a sound copy of the release's telegram.db."""
    root, url = site_server
    shutil.copyfile(release / "telegram.db", root / "telegram.db")
    return url


@pytest.fixture
def html_site():
    """A site that answers every path with an HTML page and status 200 (a parking page,
    a login wall, a proxy's error page)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def runner(tmp_path) -> Runner:
    return Runner(tmp_path, DOWN, "run")


# ---------------------------------------------------------------- one damaged file in the release


@pytest.mark.parametrize("damage", [truncate, overwrite])
def test_a_damaged_archive_stops_restore_and_never_discards_the_sound_telegram_db(release, runner, good_site, damage):
    damage(release / "archive.db")
    # The finding: restore took the site's telegram.db, an empty archive, and exit 0.
    # The site has no archive, so nothing can stand in for the damaged one: stop.
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site)
    assert code == 1, output
    assert "GitHub release example/telegram-data@data: archive.db downloaded, but broken" in output
    (error,) = errors(output)
    assert error.startswith("::error title=Restore failed::No sound archive.db could be restored: "
                            "GitHub release example/telegram-data@data: archive.db downloaded, but broken")
    assert "telegram.db is sound in GitHub release example/telegram-data@data" in error
    assert "--allow-fresh true" in error
    assert data_files(runner) == set()

    # Allowed to start the archive fresh: the release's sound telegram.db is still the one kept.
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site, "--allow-fresh", "true")
    assert code == 0, output
    assert "::warning title=No archive restored::No sound archive.db could be restored" in output
    assert not errors(output)
    data, before = runner.work / "data", runner.work / "before"
    assert (data / "telegram.db").read_bytes() == (release / "telegram.db").read_bytes()
    assert (before / "telegram.db").read_bytes() == (release / "telegram.db").read_bytes()
    assert not (before / "archive.db").exists()
    info = restore_info(runner)
    assert info["sources"] == {"telegram.db": "GitHub release example/telegram-data@data", "archive.db": "fresh"}
    assert info["allowed_fresh"] == ["archive.db"]
    # The new archive numbers its fetches after the last one telegram.db cites.
    cited = last_fetch_id(release / "telegram.db")
    assert cited >= 5
    assert rows(data / "archive.db", "select count(*) from fetches") == {(0,)}
    assert next_archive_id(data / "archive.db") == cited + 1
    assert f"numbered after {cited}" in output


def test_a_damaged_telegram_db_is_taken_from_the_site_and_the_archive_from_the_release(release, runner, good_site):
    truncate(release / "telegram.db")
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site)
    assert code == 0, output
    assert "telegram.db downloaded, but broken" in output and not errors(output)
    assert f"published site {good_site}/telegram.db: found" in output
    data = runner.work / "data"
    assert (data / "archive.db").read_bytes() == (release / "archive.db").read_bytes()
    assert rows(data / "telegram.db", "select count(*) from posts") == {(70,)}
    assert restore_info(runner)["sources"] == {"telegram.db": f"published site {good_site}/telegram.db",
                                               "archive.db": "GitHub release example/telegram-data@data"}


@pytest.mark.parametrize("damage", [truncate, overwrite])
def test_a_damaged_telegram_db_with_no_other_source_stops_restore_and_keeps_the_archive(release, runner, damage):
    damage(release / "telegram.db")
    code, output = restore(runner, "--release-repo", REPO)
    assert code == 1, output
    (error,) = errors(output)
    assert error.startswith("::error title=Restore failed::No sound telegram.db could be restored: ")
    assert "archive.db is sound in GitHub release" in error
    assert data_files(runner) == set()

    code, output = restore(runner, "--release-repo", REPO, "--allow-fresh", "true")
    assert code == 0, output
    assert "::warning title=Fresh start::No sound telegram.db could be restored" in output
    assert "archive.db was restored from GitHub release example/telegram-data@data and is kept" in output
    data = runner.work / "data"
    assert data_files(runner) == {"archive.db"}
    assert (data / "archive.db").read_bytes() == (release / "archive.db").read_bytes()
    assert (runner.work / "before" / "archive.db").read_bytes() == (release / "archive.db").read_bytes()
    assert restore_info(runner)["sources"] == {"telegram.db": "fresh",
                                               "archive.db": "GitHub release example/telegram-data@data"}


def test_both_files_damaged_stops_restore_even_with_the_site_up(release, runner, good_site):
    truncate(release / "telegram.db")
    overwrite(release / "archive.db")
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site)
    assert code == 1, output
    (error,) = errors(output)
    assert "No sound archive.db could be restored" in error  # the site gave a sound telegram.db
    assert f"telegram.db is sound in published site {good_site}/telegram.db" in error
    assert data_files(runner) == set()

    code, output = restore(runner, "--release-repo", REPO)  # and without the site, both are missing
    assert code == 1
    (error,) = errors(output)
    assert "No sound telegram.db or archive.db could be restored" in error
    assert "telegram.db downloaded, but broken" in error and "archive.db downloaded, but broken" in error

    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site, "--allow-fresh", "true")
    assert code == 0, output
    data = runner.work / "data"
    assert rows(data / "telegram.db", "select count(*) from posts") == {(70,)}  # still never thrown away
    assert next_archive_id(data / "archive.db") == last_fetch_id(data / "telegram.db") + 1


def test_a_release_that_lost_its_telegram_db_is_not_a_first_run(release, runner, good_site):
    """An upload that died after archive.db (`gh release upload` goes in name order)."""
    (release / "telegram.db").unlink()
    code, output = restore(runner, "--release-repo", REPO)
    assert code == 1, output
    (error,) = errors(output)
    assert "GitHub release example/telegram-data@data exists but has no telegram.db" in error
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site)
    assert code == 0, output
    assert data_files(runner) == {"telegram.db", "archive.db"}


def test_a_release_of_the_older_layout_without_archive_starts_the_archive_after_telegram_db(release, runner):
    (release / "archive.db").unlink()
    code, output = restore(runner, "--release-repo", REPO)
    assert code == 0, output
    assert "::warning title=No archive restored::GitHub release example/telegram-data@data had no archive.db" in output
    data = runner.work / "data"
    assert next_archive_id(data / "archive.db") == last_fetch_id(data / "telegram.db") + 1


# ---------------------------------------------------------------- no release: first run, or a source down


def test_no_release_and_no_site_is_the_first_run(runner):
    code, output = restore(runner, "--release-repo", REPO)
    assert code == 0, output
    assert "GitHub release example/telegram-data@data: absent: no release tagged data" in output
    assert "::warning title=Fresh start::No previous telegram.db was found" in output
    assert data_files(runner) == set() and restore_info(runner)["source"] == "fresh"


def test_no_release_and_a_site_without_a_database_is_the_first_run(runner, site_server):
    _, url = site_server  # answers 404 for /telegram.db: nothing was ever published there
    code, output = restore(runner, "--release-repo", REPO, "--site-url", url)
    assert code == 0, output
    assert f"published site {url}/telegram.db: absent: HTTP 404" in output
    assert "::warning title=Fresh start::" in output


def test_no_release_and_the_site_down_stops_restore(runner):
    code, output = restore(runner, "--release-repo", REPO, "--site-url", DOWN)
    assert code == 1, output
    (error,) = errors(output)
    assert f"published site {DOWN}/telegram.db could not be read (ConnectError" in error
    assert data_files(runner) == set() and not (runner.work / "before" / "restore.json").exists()
    code, output = restore(runner, "--release-repo", REPO, "--site-url", DOWN, "--allow-fresh", "true")
    assert code == 0, output
    assert "::warning title=Fresh start::No sound telegram.db could be restored" in output


def test_no_release_and_a_site_answering_html_stops_restore(runner, html_site):
    code, output = restore(runner, "--release-repo", REPO, "--site-url", html_site)
    assert code == 1, output
    assert "text/html" in output
    (error,) = errors(output)
    assert "telegram.db downloaded, but broken" in error and "not an SQLite database" in error
    assert data_files(runner) == set()


def test_the_release_down_and_the_site_sound_still_stops_restore_for_the_archive(first_run, runner, good_site):
    """The site has telegram.db; the archive may be in the release that did not answer."""
    code, output = restore(runner, "--release-repo", REPO, "--site-url", good_site, FAKE_GH_FAIL="1")
    assert code == 1, output
    (error,) = errors(output)
    assert error.startswith("::error title=Restore failed::No sound archive.db could be restored: "
                            "GitHub release example/telegram-data@data could not be read")


# ---------------------------------------------------------------- --release-dir


@pytest.mark.parametrize("name", ["telegram.db", "archive.db"])
@pytest.mark.parametrize("damage", [truncate, overwrite])
def test_a_release_folder_with_a_damaged_file_stops_restore_and_keeps_the_other(release, runner, name, damage):
    folder = runner.tmp / "folder"
    shutil.copytree(release, folder)
    damage(folder / name)
    other = "archive.db" if name == "telegram.db" else "telegram.db"
    code, output = restore(runner, "--release-dir", str(folder))
    assert code == 1, output
    (error,) = errors(output)
    assert f"release folder {folder}: {name} copied, but broken" in error
    assert data_files(runner) == set()
    code, output = restore(runner, "--release-dir", str(folder), "--allow-fresh", "true")
    assert code == 0, output
    data = runner.work / "data"
    assert (data / other).read_bytes() == (release / other).read_bytes()
    if name == "telegram.db":
        assert data_files(runner) == {"archive.db"}
    else:  # a fresh archive, numbered after telegram.db's fetches
        assert rows(data / "archive.db", "select count(*) from fetches") == {(0,)}
        assert next_archive_id(data / "archive.db") == last_fetch_id(data / "telegram.db") + 1


def test_a_release_folder_that_is_missing_or_empty_stops_restore(runner):
    empty = runner.tmp / "empty"
    empty.mkdir()
    for folder in (runner.tmp / "nowhere", empty):
        code, output = restore(runner, "--release-dir", str(folder))
        assert code == 1, output
        assert len(errors(output)) == 1 and data_files(runner) == set()


def test_a_damaged_release_folder_falls_back_to_the_release(release, runner):
    folder = runner.tmp / "folder"
    shutil.copytree(release, folder)
    truncate(folder / "archive.db")
    code, output = restore(runner, "--release-dir", str(folder), "--release-repo", REPO)
    assert code == 0, output
    assert (runner.work / "data" / "archive.db").read_bytes() == (release / "archive.db").read_bytes()
    assert restore_info(runner)["sources"] == {"telegram.db": f"release folder {folder}",
                                               "archive.db": "GitHub release example/telegram-data@data"}


# ---------------------------------------------------------------- fetch ids


def test_an_archive_behind_telegram_db_numbers_new_fetches_after_what_telegram_db_cites(release, runner):
    """archive.db from an earlier run than telegram.db: the archive keeps its rows, and new
    fetches do not take ids telegram.db already cites."""
    conn = sqlite3.connect(release / "archive.db")
    with conn:
        conn.execute("delete from fetches where id > 2")
    conn.execute("vacuum")
    conn.close()
    code, output = restore(runner, "--release-repo", REPO)
    assert code == 0, output
    assert "::warning title=Archive behind telegram.db::archive.db ends at fetch 2" in output
    data = runner.work / "data"
    assert rows(data / "archive.db", "select id from fetches") == {(1,), (2,)}
    assert rows(data / "archive.db", "select id, url, sha256 from fetches") == rows(
        release / "archive.db", "select id, url, sha256 from fetches")
    assert next_archive_id(data / "archive.db") == last_fetch_id(data / "telegram.db") + 1
    assert rows(data / "archive.db", "pragma integrity_check") == {("ok",)}
    assert {r[0] for r in rows(data / "archive.db", "select name from sqlite_master where type = 'index'")} >= {
        "idx_fetches_channel_fetched_at"}
