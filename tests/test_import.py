"""import-pages and rebuild, through the command line, over real captures and bad input."""

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from telegram_datasette.cli import cli

SHARED = Path(__file__).resolve().parents[2] / "shared" / "telegram-pages" / "real"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pages"

needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason=f"real captures not available at {SHARED}"
)


def logical_dump(path):
    """Every row of every table, FTS internals aside (they are rebuilt, not compared)."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table' order by name")]
    return {
        t: sorted(map(repr, conn.execute(f"select * from [{t}]")))
        for t in tables
        if not t.startswith(("posts_fts", "sqlite_", "_sqlite_migrations"))
    }


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@needs_shared
def test_import_real_pages_twice_then_rebuild(tmp_path):
    db, archive = tmp_path / "telegram.db", tmp_path / "archive.db"
    first = run("import-pages", SHARED, "--db", db, "--archive", archive)
    assert first.exit_code == 0, first.output
    assert "imported 39 files" in first.output
    dump = logical_dump(db)
    conn = sqlite3.connect(db)
    assert conn.execute("select count(*) from posts").fetchone()[0] > 100
    assert conn.execute("select count(*) from posts where channel = 'durov'").fetchone()[0] == 20
    # The truncated capture: its readable posts are stored and the problem named.
    assert conn.execute("select count(*) from posts where channel = 'solokumi'").fetchone()[0] >= 5
    problems = [r[0] for r in conn.execute("select message from problems")]
    assert any("solokumi" in p and "truncated" in p for p in problems)
    assert any("not-found" in p and "does not exist" in p for p in problems)

    again = run("import-pages", SHARED, "--db", db, "--archive", archive)
    assert "39 files already imported" in again.output
    assert logical_dump(db) == dump

    rebuilt = run("rebuild", "--db", db, "--archive", archive)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert logical_dump(db) == dump


def test_bad_input_is_named_kept_and_the_run_goes_on(tmp_path, caplog):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "empty.html").write_bytes(b"")
    (pages / "garbage.html").write_bytes(bytes(range(256)) * 8)
    (pages / "other-site.html").write_text(
        "<!DOCTYPE html><html><head><title>Village bakery</title></head>"
        "<body><h1>Fresh bread every morning</h1><p>Open from seven.</p></body></html>"
    )
    good = sorted(FIXTURES.glob("*.html"))
    assert good, "the project's own fixture pages are missing"
    for path in good:
        (pages / path.name).write_bytes(path.read_bytes())
    db, archive = tmp_path / "telegram.db", tmp_path / "archive.db"
    result = run("import-pages", pages, "--db", db, "--archive", archive)
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(db)
    problems = "\n".join(r[0] for r in conn.execute("select message from problems"))
    for name in ("empty.html", "garbage.html", "other-site.html"):
        assert name in problems
    assert conn.execute("select count(*) from posts").fetchone()[0] > 10
    # Every input, bad ones included, is kept in the archive for later.
    archived = sqlite3.connect(archive).execute("select count(*) from fetches").fetchone()[0]
    assert archived == len(good) + 3
    unknown = conn.execute("select count(*) from posts where kind = 'unknown'").fetchone()[0]
    assert f"{unknown} of unknown kind" in result.output
