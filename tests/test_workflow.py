"""The scheduled update (.github/workflows/update.yml), played locally.

The steps are read from the workflow file itself and run as it runs them (bash, the same
`python -m scripts` commands, the same environment variables), against the fake Telegram
over loopback HTTP. The release lives in a folder, served by a stand-in for the GitHub
CLI (`gh release view/create/upload/download/edit`); the site is published to a folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from devtools.fake_telegram import FakeChannel, FakeTelegram
from telegram_datasette.publish import SERVE_SETTINGS
from telegram_datasette.workflow import hidden_tables

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "update.yml"
RUN_STEPS = ["restore", "crawl", "check", "export", "release", "publish", "summary"]
REPO = "example/telegram-data"

FAKE_GH = r'''
"""A stand-in for the GitHub CLI's `gh release` commands, on a folder per release."""
import argparse, os, shutil, sys
from fnmatch import fnmatch
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("group"); parser.add_argument("action"); parser.add_argument("tag")
parser.add_argument("files", nargs="*")
parser.add_argument("--repo", required=True)
for flag in ("--json", "--jq", "--dir", "--title", "--notes", "--notes-file"):
    parser.add_argument(flag)
parser.add_argument("--pattern", action="append", default=[])
parser.add_argument("--clobber", action="store_true"); parser.add_argument("--latest", action="store_true")
args = parser.parse_args()
log = Path(os.environ["FAKE_GH_LOG"])
with log.open("a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if os.environ.get("FAKE_GH_FAIL"):
    sys.exit("HTTP 502: Bad Gateway (https://api.github.com/graphql)")
release = Path(os.environ["FAKE_GH_RELEASES"]) / args.repo.replace("/", "__") / args.tag
if args.action == "create":
    release.mkdir(parents=True)
    sys.exit(0)
if not release.is_dir():
    sys.exit("release not found")
if args.action == "view":
    if args.jq == ".assets[].name":
        print("\n".join(sorted(p.name for p in release.iterdir() if p.name != "NOTES.md")))
elif args.action == "upload":
    for name in args.files:
        if (release / Path(name).name).exists() and not args.clobber:
            sys.exit(f"asset {name} already exists")
        shutil.copyfile(name, release / Path(name).name)
elif args.action == "download":
    for path in release.iterdir():
        if not args.pattern or any(fnmatch(path.name, p) for p in args.pattern):
            shutil.copyfile(path, Path(args.dir) / path.name)
elif args.action == "edit":
    shutil.copyfile(args.notes_file, release / "NOTES.md")
'''


def workflow_steps() -> dict[str, dict]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return {step["id"]: step for step in jobs["update"]["steps"] if "id" in step}


class Runner:
    """Plays the workflow's `run:` steps in one work folder, as a fresh runner would."""

    def __init__(self, tmp: Path, base_url: str, name: str):
        self.tmp = tmp
        self.work = tmp / name
        self.work.mkdir()
        # A fresh checkout has channels.yml; this one points at the fake Telegram.
        (self.work / "channels.yml").write_text(textwrap.dedent(f"""\
            channels: [alpha, beta]
            base_url: {base_url}
            requests_per_second: 0
            refresh_days: 100000
            timeout_seconds: 10
            max_retries: 1
            media_requests_per_second: 0
        """))
        bin_dir = tmp / "bin"
        if not bin_dir.exists():
            bin_dir.mkdir()
            gh = bin_dir / "gh"
            gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
            gh.chmod(0o755)
        self.summary = self.work / "step-summary.md"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "FAKE_GH_RELEASES": str(tmp / "releases"),
            "FAKE_GH_LOG": str(tmp / "gh.log"),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_SHA": "0123456789abcdef",
            "DATA_DIR": "data", "BEFORE_DIR": "before", "EXPORT_DIR": "export", "RELEASE_TAG": "data",
            "PUBLISH_TARGET": f"folder:{tmp / 'site'}", "SITE_URL": "",
            "FULL_BACKFILL": "false", "ALLOW_FRESH": "false",
            "FLY_API_TOKEN": "", "FLY_APP": "",
        }
        self.outputs: dict[str, subprocess.CompletedProcess] = {}

    def play(self, steps=RUN_STEPS, replace: dict[str, str] | None = None) -> str | None:
        """Run the steps in order; stop at the first that fails, as Actions does (the
        summary step runs anyway, like its `if: always()`). Returns the failed step."""
        defined = workflow_steps()
        failed = None
        for step_id in steps:
            if failed and step_id != "summary":
                continue
            script = (replace or {}).get(step_id, defined[step_id]["run"])
            result = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=self.work, env=self.env,
                                    capture_output=True, text=True, timeout=120)
            self.outputs[step_id] = result
            if result.returncode != 0 and failed is None:
                failed = step_id
        return failed

    def output(self, step_id: str) -> str:
        result = self.outputs[step_id]
        return result.stdout + result.stderr


def release_dir(tmp: Path) -> Path:
    return tmp / "releases" / REPO.replace("/", "__") / "data"


def rows(db: Path, sql: str) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute(sql).fetchall())
    finally:
        conn.close()


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def fake_telegram() -> FakeTelegram:
    return FakeTelegram([FakeChannel.demo("alpha", 45, seed=1), FakeChannel.demo("beta", 25, seed=2)])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One scheduled run from nothing; later tests start from its release."""
    tmp = tmp_path_factory.mktemp("first")
    fake = fake_telegram()
    with fake.serve() as url:
        runner = Runner(tmp, url, "run1")
        failed = runner.play()
    assert failed is None, runner.output(failed)
    return tmp, fake, runner


def continue_from(first, tmp: Path) -> Path:
    """A copy of the first run's release and site, for a test of its own."""
    first_tmp = first[0]
    shutil.copytree(first_tmp / "releases", tmp / "releases")
    shutil.copytree(first_tmp / "site", tmp / "site")
    return release_dir(tmp)


# ---------------------------------------------------------------- the workflow files


def actionlint() -> str | None:
    return shutil.which("actionlint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.skipif(actionlint() is None, reason="actionlint is not installed (pip install -r requirements-dev.txt)")
def test_actionlint_passes_on_the_workflows(tmp_path):
    result = subprocess.run([actionlint(), "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and it is a real lint: a broken workflow fails.
    broken = tmp_path / "bad.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                                    "      - run: echo ${{ github.nope }}\n")
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "nope" in result.stdout


def test_the_workflow_runs_only_these_commands_in_plain_shell():
    steps = workflow_steps()
    assert set(RUN_STEPS) <= set(steps)
    for step_id in RUN_STEPS:
        assert "${{" not in steps[step_id]["run"], f"step {step_id}: pass values through env:, not ${{{{ }}}}"
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {} and workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["jobs"]["update"]["permissions"] == {"contents": "write"}
    assert all(step_id in steps[step_id]["run"] for step_id in ("restore", "crawl", "check", "export", "publish"))


def test_serve_and_publish_use_the_same_options():
    from telegram_datasette.publish import publish_command, serve_command

    serve = " ".join(serve_command(Path("telegram.db")))
    publish = publish_command("fly", Path("telegram.db"), "PKG", "app", None)
    for name, value in SERVE_SETTINGS.items():
        assert f"--setting {name} {value}" in serve
    for option in ("--metadata", "--template-dir"):
        assert publish[publish.index(option) + 1] in serve
    assert "--plugins-dir" not in serve and "--plugins-dir" not in publish and "--static" not in publish


# ---------------------------------------------------------------- two scheduled runs


def test_first_run_starts_fresh_and_publishes_release_and_site(first_run):
    tmp, _, runner = first_run
    assert "::warning title=Fresh start::" in runner.output("restore")
    release = release_dir(tmp)
    names = {p.name for p in release.iterdir()}
    assert {"telegram.db", "archive.db", "posts.csv.gz", "post_versions.csv.gz", "channels.csv.gz",
            "SHA256SUMS", "manifest.json", "NOTES.md"} <= names
    assert hidden_tables() and not {f"{t}.csv.gz" for t in hidden_tables()} & names
    assert not any("_fts" in name for name in names)
    assert rows(release / "telegram.db", "pragma journal_mode") == {("delete",)}  # Datasette Lite can open it
    assert rows(release / "telegram.db", "select channel, count(*) from posts group by channel") == {
        ("alpha", 45), ("beta", 25)}
    site = tmp / "site"
    assert rows(site / "telegram.db", "select count(*) from posts") == {(70,)}
    dockerfile = (site / "Dockerfile").read_text()
    assert f"https://github.com/{REPO}/archive/0123456789abcdef.tar.gz" in dockerfile  # the project, installed
    assert not (site / "plugins").exists() and not (site / "scripts").exists()
    assert (site / "media.db").exists() and not list(site.glob("media.db.*"))
    assert (site / "metadata.json").exists() and "datasette serve" in dockerfile
    summary = runner.summary.read_text()
    assert "started fresh" in summary and "| alpha | 45 | 45 |" in summary


def test_second_run_keeps_all_of_the_first_runs_history(first_run, tmp_path):
    _, fake, _ = first_run
    release = continue_from(first_run, tmp_path)
    before = tmp_path / "release1.db"
    shutil.copyfile(release / "telegram.db", before)
    alpha = fake.channel("alpha")
    messages = [p for p in alpha.posts if p.kind == "message"]
    edited, deleted = messages[-1].id, messages[-2].id
    fake.edit_post("alpha", edited, "A new text for this post.")
    fake.delete_post("alpha", deleted)
    added = [p.id for p in fake.add_posts("beta", 2)]
    fake.grow_views("alpha", 2.0, add=10)
    with fake.serve() as url:
        runner = Runner(tmp_path, url, "run2")
        failed = runner.play()
    assert failed is None, runner.output(failed)
    assert "GitHub release example/telegram-data@data: found" in runner.output("restore")
    assert "check passed" in runner.output("check")
    after = release / "telegram.db"
    # Every row the first run had is still there, unchanged where it must be.
    for sql in (
        "select channel, id, first_seen_at from posts",
        "select channel, post_id, version, text_sha256 from post_versions",
        "select channel, post_id, fetched_at, views from view_snapshots",
        "select username, fetched_at from channel_stats",
    ):
        assert rows(before, sql) <= rows(after, sql), sql
    assert rows(after, f"select deleted_at is not null from posts where channel = 'alpha' and id = {deleted}") == {(1,)}
    assert (2, "A new text for this post.") in rows(
        after, f"select version, text from post_versions where channel = 'alpha' and post_id = {edited}")
    assert set(added) <= {r[0] for r in rows(after, "select id from posts where channel = 'beta'")}
    assert len(rows(after, "select * from view_snapshots")) > len(rows(before, "select * from view_snapshots"))
    assert rows(tmp_path / "site" / "telegram.db", "select count(*) from posts") == rows(after, "select count(*) from posts")
    summary = runner.summary.read_text()
    assert "**2 new, 1 edited, 1 deleted, 0 restored** posts" in summary
    assert "| alpha | 45 | 0 | 1 | 1 | 0 | 1 |" in summary and "| beta | 27 | 2 | 0 | 0 | 0 | 0 |" in summary
    assert "Started from GitHub release" in summary


# ---------------------------------------------------------------- runs that must not publish


def test_a_crawl_whose_parser_finds_nothing_fails_and_publishes_nothing(first_run, tmp_path):
    _, fake, _ = first_run
    release = continue_from(first_run, tmp_path)
    release_before, site_before = digests(release), digests(tmp_path / "site")
    fake.change_layout(times=None)  # t.me renamed its classes: no page yields posts
    try:
        with fake.serve() as url:
            runner = Runner(tmp_path, url, "broken")
            failed = runner.play()
    finally:
        fake.clear_faults()
    assert failed == "crawl", runner.outputs
    assert "has t.me changed its layout?" in runner.output("crawl")
    assert set(runner.outputs) == {"restore", "crawl", "summary"}
    assert digests(release) == release_before and digests(tmp_path / "site") == site_before


LOSE_ROWS = """python - <<'EOF'
import sqlite3
db = sqlite3.connect("data/telegram.db")
with db:  # a crawl that lost posts: a store bug, or a restore of an older file
    db.execute("delete from posts where channel = 'beta' and id in (select id from posts where channel = 'beta' order by id limit 3)")
    db.execute("delete from post_versions where channel = 'alpha' and post_id = (select min(post_id) from post_versions where channel = 'alpha')")
EOF"""


def test_a_run_that_lost_rows_fails_the_check_and_leaves_the_release_untouched(first_run, tmp_path):
    _, fake, _ = first_run
    release = continue_from(first_run, tmp_path)
    release_before, site_before = digests(release), digests(tmp_path / "site")
    with fake.serve() as url:
        runner = Runner(tmp_path, url, "lossy")
        failed = runner.play(replace={"crawl": LOSE_ROWS})
    assert failed == "check"
    output = runner.output("check")
    assert "::error title=Check failed::lost: 3 rows of telegram.db posts" in output
    assert "rows of telegram.db post_versions" in output and "('alpha', " in output
    assert set(runner.outputs) == {"restore", "crawl", "check", "summary"}
    assert digests(release) == release_before and digests(tmp_path / "site") == site_before


# ---------------------------------------------------------------- the media store across runs


def media_files(path: Path) -> dict[str, bytes]:
    return dict(rows(path, "select sha256, content from files"))


def joined_media(release: Path, tmp: Path) -> Path:
    target = tmp / "joined-media.db"
    target.write_bytes(b"".join(p.read_bytes() for p in sorted(release.glob("media.db.[0-9][0-9][0-9]"))))
    return target


def test_the_media_store_travels_in_the_release_and_the_site(first_run, tmp_path):
    tmp, fake, _ = first_run
    release = release_dir(tmp)
    assert (release / "media.db.001").exists() and not (release / "media.db").exists()
    first = media_files(joined_media(release, tmp_path))
    assert len(first) > 10
    assert set(media_files(tmp / "site" / "media.db")) == set(first)  # the site serves them
    assert "-i media.db" in (tmp / "site" / "Dockerfile").read_text()
    stored = rows(release / "telegram.db", "select sha256 from media_files where status = 'stored'")
    assert {r[0] for r in stored} == set(first)

    continue_from(first_run, tmp_path)
    added = fake.add_posts("beta", 3, kinds=["photo"])
    try:
        with fake.serve() as url:
            runner = Runner(tmp_path, url, "media2")
            failed = runner.play()
    finally:
        fake.delete_post("beta", added[0].id), fake.delete_post("beta", added[1].id), fake.delete_post("beta", added[2].id)
    assert failed is None, runner.output(failed)
    assert "media.db: found: downloaded 1 parts of media.db" in runner.output("restore")
    assert "media: 3 stored" in runner.output("crawl")  # only the new posts' photos
    second = media_files(joined_media(release_dir(tmp_path), tmp_path))
    assert first.items() <= second.items() and len(second) == len(first) + 3


LOSE_A_FILE = """python - <<'EOF'
import sqlite3
db = sqlite3.connect("data/media.db")
with db:
    db.execute("delete from files where sha256 = (select min(sha256) from files)")
EOF"""
CHANGE_A_FILE = """python - <<'EOF'
import sqlite3
db = sqlite3.connect("data/media.db")
with db:
    db.execute("update files set content = content || x'00' where sha256 = (select min(sha256) from files)")
EOF"""


@pytest.mark.parametrize("script, message", [
    (LOSE_A_FILE, "lost: 1 rows of media.db files that the previous run had"),
    (CHANGE_A_FILE, "changed: 1 files of media.db no longer hash to their sha256"),
])
def test_check_fails_a_run_that_lost_or_changed_a_stored_file(first_run, tmp_path, script, message):
    _, fake, _ = first_run
    release = continue_from(first_run, tmp_path)
    release_before = digests(release)
    with fake.serve() as url:
        runner = Runner(tmp_path, url, "media-lossy")
        failed = runner.play(replace={"crawl": script})
    assert failed == "check"
    assert f"::error title=Check failed::{message}" in runner.output("check")
    assert digests(release) == release_before


def test_a_truncated_archive_in_the_release_stops_the_run_and_allow_fresh_keeps_telegram_db(
        first_run, tmp_path, site_server):
    """The finding: restore threw the release away for its truncated archive.db, took the
    site's telegram.db beside an empty archive whose ids restarted at 1, and every later
    check failed ("lost: N rows of telegram.db fetches": new fetches took cited ids)."""
    _, fake, _ = first_run
    release = continue_from(first_run, tmp_path)
    www, site_url = site_server  # the published site, answering with its telegram.db
    shutil.copyfile(tmp_path / "site" / "telegram.db", www / "telegram.db")
    first_db = tmp_path / "release1.db"
    shutil.copyfile(release / "telegram.db", first_db)
    archive = (release / "archive.db").read_bytes()
    (release / "archive.db").write_bytes(archive[: len(archive) // 2])
    release_before, site_before = digests(release), digests(tmp_path / "site")
    with fake.serve() as url:
        runner = Runner(tmp_path, url, "stopped")
        runner.env["SITE_URL"] = site_url
        assert runner.play() == "restore"
        (error,) = [line for line in runner.output("restore").splitlines() if line.startswith("::error")]
        assert error.startswith("::error title=Restore failed::No sound archive.db could be restored")
        assert "crawl" not in runner.outputs and not (runner.work / "data" / "telegram.db").exists()
        assert digests(release) == release_before and digests(tmp_path / "site") == site_before

        runner = Runner(tmp_path, url, "allowed")
        runner.env.update(SITE_URL=site_url, ALLOW_FRESH="true")
        failed = runner.play()
        assert failed is None, runner.output(failed)
        assert "::warning title=No archive restored::" in runner.output("restore")
        assert "No previous archive.db was restored" in runner.summary.read_text()
        cited = max(r[0] for r in rows(first_db, "select id from fetches"))
        new_ids = {r[0] for r in rows(release / "archive.db", "select id from fetches")}
        assert new_ids and min(new_ids) > cited  # never an id the kept telegram.db cites
        sql = "select id, url, sha256 from fetches"
        assert rows(first_db, sql) <= rows(release / "telegram.db", sql)
        assert rows(first_db, "select channel, id from posts") <= rows(release / "telegram.db", "select channel, id from posts")

        runner = Runner(tmp_path, url, "later")  # and the runs after it pass their check
        failed = runner.play()
        assert failed is None, runner.output(failed)
        assert "check passed" in runner.output("check")
        assert min(new_ids) == min(r[0] for r in rows(release / "archive.db", "select id from fetches"))


def damage_file(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"<html>not a database</html>\n" * 100)


@pytest.mark.parametrize("how", ["truncated", "overwritten"])
@pytest.mark.parametrize("name", ["telegram.db", "archive.db"])
def test_check_with_a_damaged_previous_database_fails_in_one_line(first_run, tmp_path, name, how):
    runner = Runner(tmp_path, "http://127.0.0.1:9", "check")
    result = scripts_command(runner, "restore", "--release-dir", str(release_dir(first_run[0])))
    assert result.returncode == 0, result.stdout + result.stderr
    damage_file(runner.work / "before" / name, how)
    result = scripts_command(runner, "check", "--before", "before", "--db", "data/telegram.db",
                             "--archive", "data/archive.db", "--no-smoke")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    (error,) = [line for line in output.splitlines() if line.startswith("::error")]
    assert error.startswith(f"::error title=Check failed::the previous {name} cannot be read")


# ---------------------------------------------------------------- restore and publish, one by one


def scripts_command(runner: Runner, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "telegram_datasette", *args], cwd=runner.work, env={**runner.env, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def site_server(tmp_path):
    """A static web server on loopback standing in for the published site."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_restore_falls_back_to_the_site_when_there_is_no_release(first_run, tmp_path, site_server):
    root, url = site_server
    shutil.copyfile(release_dir(first_run[0]) / "telegram.db", root / "telegram.db")
    runner = Runner(tmp_path, "http://127.0.0.1:9", "site")
    result = scripts_command(runner, "restore", "--release-repo", REPO, "--site-url", url)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "GitHub release example/telegram-data@data: absent: no release tagged data" in output
    assert f"published site {url}/telegram.db: found" in output
    assert "::warning title=No archive restored::" in output
    assert rows(runner.work / "data" / "telegram.db", "select count(*) from posts") == {(70,)}
    assert (runner.work / "before" / "telegram.db").read_bytes() == (root / "telegram.db").read_bytes()


def test_restore_refuses_a_fresh_start_when_the_release_cannot_be_read(first_run, tmp_path, site_server):
    _, url = site_server  # the site has no telegram.db either: 404
    continue_from(first_run, tmp_path)
    runner = Runner(tmp_path, "http://127.0.0.1:9", "outage")
    result = scripts_command(runner, "restore", "--release-repo", REPO, "--site-url", url, FAKE_GH_FAIL="1")
    assert result.returncode == 1
    assert ("::error title=Restore failed::No sound telegram.db or archive.db could be restored: "
            "GitHub release example/telegram-data@data could not be read") in result.stdout
    assert "HTTP 502" in result.stdout and not (runner.work / "data" / "telegram.db").exists()
    result = scripts_command(runner, "restore", "--release-repo", REPO, "--allow-fresh", "true", FAKE_GH_FAIL="1")
    assert result.returncode == 0 and "::warning title=Fresh start::" in result.stdout


def test_restore_treats_a_broken_download_as_an_error(first_run, tmp_path):
    release = continue_from(first_run, tmp_path)
    (release / "telegram.db").write_bytes((release / "telegram.db").read_bytes()[:5000])
    runner = Runner(tmp_path, "http://127.0.0.1:9", "broken")
    result = scripts_command(runner, "restore", "--release-repo", REPO)
    assert result.returncode == 1 and "downloaded, but broken" in result.stdout


def test_full_backfill_forgets_crawl_positions_and_keeps_the_data(first_run, tmp_path):
    release = release_dir(first_run[0])
    runner = Runner(tmp_path, "http://127.0.0.1:9", "backfill")
    result = scripts_command(runner, "restore", "--release-dir", str(release), "--full-backfill", "true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "forgot the crawl position of 2 channels" in result.stdout
    data = runner.work / "data" / "telegram.db"
    assert rows(data, "select count(*) from crawl_state") == {(0,)}
    assert rows(data, "select count(*) from posts") == {(70,)}
    assert rows(runner.work / "before" / "telegram.db", "select count(*) from crawl_state") == {(2,)}


def test_publish_is_skipped_with_a_notice_without_its_secret(first_run, tmp_path):
    runner = Runner(tmp_path, "http://127.0.0.1:9", "publish")
    db = str(release_dir(first_run[0]) / "telegram.db")
    result = scripts_command(runner, "publish", "--target", "fly", "--db", db)
    assert result.returncode == 0 and "::notice title=Publish skipped::FLY_API_TOKEN is not set" in result.stdout
    result = scripts_command(runner, "publish", "--target", "fly", "--db", db, FLY_API_TOKEN="x")
    assert result.returncode == 1 and "FLY_APP is not" in result.stderr


def test_the_publish_command_carries_the_pins_and_serve_options(first_run):
    from telegram_datasette.publish import publish_command

    command = publish_command("fly", Path("telegram.db"), "https://example.org/pkg.tar.gz", "my-app", "abc")
    assert command[:4] == ["datasette", "publish", "fly", "telegram.db"]
    installs = [command[i + 1] for i, arg in enumerate(command) if arg == "--install"]
    requirements = (ROOT / "requirements.txt").read_text()
    assert "datasette==0.65.5" in installs and all(pin in requirements for pin in installs[:-1])
    assert installs[-1] == "https://example.org/pkg.tar.gz"
    extra = command[command.index("--extra-options") + 1]
    assert all(f"--setting {k} {v}" in extra for k, v in SERVE_SETTINGS.items())
    assert command[command.index("--app") + 1] == "my-app"


def test_the_published_database_download_sends_cors_headers_for_datasette_lite(first_run):
    """`datasette publish` serves the files immutable with --cors; Datasette Lite needs both."""
    import asyncio

    from datasette.app import Datasette

    ds = Datasette(immutables=[str(release_dir(first_run[0]) / "telegram.db")], cors=True)
    response = asyncio.run(ds.client.get("/telegram.db"))
    assert response.status_code == 200 and response.content.startswith(b"SQLite format 3\x00")
    assert response.headers["access-control-allow-origin"] == "*"


