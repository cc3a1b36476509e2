"""The scheduled update, one command per step: restore, check, export, summary (and
`crawl`, `publish` of their own modules).

`.github/workflows/update.yml` runs these commands (and `crawl`) and nothing of substance
besides, so what the schedule does can be played locally and in the tests:

    telegram-datasette restore --data-dir data --before-dir before --release-repo OWNER/REPO
    telegram-datasette crawl --db data/telegram.db --archive data/archive.db
    telegram-datasette check --before before --db data/telegram.db --archive data/archive.db
    telegram-datasette export --db data/telegram.db --archive data/archive.db --out export
    telegram-datasette publish --target fly --db export/telegram.db
    telegram-datasette summary --before before --db data/telegram.db

History lives in the databases themselves (versions, snapshots, deletions), so every run
must start from everything the previous runs saw: `restore` fetches the previous
databases and keeps an untouched copy in the "before" folder, and `check` refuses a run
that lost any row of that copy.

Messages for GitHub Actions use its workflow commands (`::warning::`, `::error::`,
`::notice::`), which read as plain lines anywhere else.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import click

from .parquet import write_parquet
from .schema import archive_beside, media_beside
from .publish import PART_BYTES, SERVE_SETTINGS, TEMPLATES, file_parts, join_parts, site_metadata, split_file

DATABASES = ("telegram.db", "archive.db")
SQLITE_MAGIC = b"SQLite format 3\x00"

# What must survive from one run to the next: table -> the columns that identify a row,
# plus columns whose value must not change. Tables missing from the previous database
# are skipped (older schema).
KEPT_ROWS = {
    "telegram.db": {
        "posts": (("channel", "id"), ()),
        "post_versions": (("channel", "post_id", "version"), ("text_sha256",)),
        "post_events": (("channel", "post_id", "at", "event"), ()),
        "view_snapshots": (("channel", "post_id", "fetched_at"), ("views",)),
        "reaction_snapshots": (("channel", "post_id", "fetched_at", "reaction"), ("count",)),
        "channels": (("username",), ()),
        "channel_stats": (("username", "fetched_at"), ()),
        "fetches": (("id",), ("sha256",)),
    },
    "archive.db": {
        "fetches": (("id",), ("url", "sha256")),
        "bodies": (("sha256",), ()),
    },
}


# The media store (scripts/media.py): released in parts (media.db.001, ...), restored
# from the release only (the site serves its files, not the database for restore), and
# kept in `before` as a slim copy (no content): what `check` compares with. Every file
# must stay, unchanged: its content must hash to its sha256.
MEDIA = "media.db"
KEPT_MEDIA = {
    "files": (("sha256",), ("bytes",)),
    "fetches": (("id",), ("item", "sha256")),
}


def annotate(kind: str, message: str, title: str | None = None) -> None:
    """A GitHub Actions annotation (error, warning, notice) on stdout."""
    props = f" title={title}" if title else ""
    click.echo(f"::{kind}{props}::{message}")


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` says is wrong (empty when the file is sound)."""
    if not is_sqlite(path):
        return [f"{path}: not an SQLite database"]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute("pragma integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        return [f"{path}: {error}"]
    return [] if rows == ["ok"] else [f"{path}: {row}" for row in rows]


def copy_database(source: Path, target: Path) -> None:
    """A consistent standalone copy (WAL content included) in rollback-journal mode,
    which read-only readers such as Datasette Lite's sql.js can open."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        dst.execute("pragma journal_mode=delete")
    finally:
        dst.close()
        src.close()
    os.replace(tmp, target)


def one_line(problems: list[str], shown: int = 3) -> list[str]:
    """A file's problems as at most one line (integrity_check can list thousands)."""
    if not problems:
        return []
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return ["; ".join(problems[:shown]) + more]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- restore
#
# Each file is restored on its own, from the first source that has it sound: the release
# folder given (--release-dir), else the GitHub release, else the published site (which
# serves telegram.db only). A damaged copy of one file never costs the other file: a
# truncated archive.db does not throw away a sound telegram.db, nor the reverse.
#
# A file that no source could give starts fresh only when nothing was ever there to lose:
# the sources that were asked say they do not exist (gh: "release not found"; the site:
# HTTP 404), or a release that exists never had the file (archive.db of an older
# release). When a source exists but could not be read (an outage, an HTML page instead
# of a database, a truncated download), restore fails, unless the run says --allow-fresh
# true; even then every sound file is kept. A fresh archive.db beside a restored
# telegram.db numbers its fetches after the last one telegram.db cites.


@dataclass
class Attempt:
    """What one source said: it exists (`found`: `files` holds what it gave, `damaged`
    which of those are broken, and why), it does not exist at all (`absent`: nothing was
    ever published there), or it could not be read (`error`)."""

    source: str
    outcome: str  # found | absent | error
    detail: str
    files: dict[str, Path] = field(default_factory=dict)
    offers: tuple[str, ...] = DATABASES  # the files this kind of source can hold
    damaged: dict[str, str] = field(default_factory=dict)
    got: str = "downloaded"  # how the files came: for messages


def from_release_dir(release_dir: Path, workdir: Path) -> Attempt:
    """A folder named on the command line: it must hold the files (it is never a first run)."""
    source = f"release folder {release_dir}"
    if not release_dir.is_dir():
        return Attempt(source, "error", f"{release_dir} is not a folder")
    present = [name for name in DATABASES if (release_dir / name).is_file()]
    if not present:
        return Attempt(source, "error", f"neither {' nor '.join(DATABASES)} is in {release_dir}")
    files = {}
    for name in present:
        shutil.copyfile(release_dir / name, workdir / name)
        files[name] = workdir / name
    return Attempt(source, "found", f"copied {', '.join(files)}", files, got="copied")


def from_github_release(repo: str, tag: str, workdir: Path) -> Attempt:
    """The release assets, through the GitHub CLI (on every Actions runner; GH_TOKEN)."""
    source = f"GitHub release {repo}@{tag}"
    if shutil.which("gh") is None:
        return Attempt(source, "error", "the GitHub CLI `gh` is not installed (or use --release-dir)")
    view = subprocess.run(
        ["gh", "release", "view", tag, "--repo", repo, "--json", "assets", "--jq", ".assets[].name"],
        capture_output=True, text=True,
    )
    if view.returncode != 0:
        message = (view.stderr or view.stdout).strip()
        if "release not found" in message.lower():
            return Attempt(source, "absent", f"no release tagged {tag} ({message})")
        return Attempt(source, "error", f"gh release view failed: {message}")
    assets = view.stdout.split()
    if not assets:
        # Created, but the first run's upload never put a file in it: nothing to lose.
        return Attempt(source, "absent", f"the release tagged {tag} has no files")
    wanted = [name for name in DATABASES if name in assets]
    if not wanted:
        return Attempt(source, "found", f"the release has neither {' nor '.join(DATABASES)} "
                       f"(assets: {', '.join(assets)})")
    command = ["gh", "release", "download", tag, "--repo", repo, "--dir", str(workdir), "--clobber"]
    for name in wanted:
        command += ["--pattern", name]
    download = subprocess.run(command, capture_output=True, text=True)
    if download.returncode != 0:
        return Attempt(source, "error", f"gh release download failed: {(download.stderr or download.stdout).strip()}")
    attempt = Attempt(source, "found", f"downloaded {', '.join(wanted)}",
                      {name: workdir / name for name in wanted if (workdir / name).exists()})
    for name in wanted:
        if name not in attempt.files:
            attempt.damaged[name] = "listed in the release, but the download did not give it"
    return attempt


def from_site(site_url: str, workdir: Path, timeout: float = 600.0) -> Attempt:
    """The published site's database download (`/telegram.db`). The archive is not on it."""
    import httpx

    url = site_url.rstrip("/") + "/telegram.db"
    source = f"published site {url}"
    target = workdir / "telegram.db"
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code in (404, 410):
                return Attempt(source, "absent", f"HTTP {response.status_code}: the site has no telegram.db",
                               offers=("telegram.db",))
            if response.status_code != 200:
                return Attempt(source, "error", f"HTTP {response.status_code}", offers=("telegram.db",))
            with target.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
            kind = response.headers.get("content-type", "no content-type")
    except httpx.HTTPError as error:
        return Attempt(source, "error", f"{type(error).__name__}: {error}", offers=("telegram.db",))
    return Attempt(source, "found", f"downloaded telegram.db ({target.stat().st_size} bytes, {kind}; "
                   "the site has no archive.db)", {"telegram.db": target}, offers=("telegram.db",))


def media_from_release_dir(release_dir: Path, workdir: Path) -> Attempt:
    source = f"release folder {release_dir}"
    parts = file_parts(release_dir, MEDIA) if release_dir.is_dir() else []
    if not parts:
        return Attempt(source, "found", f"no {MEDIA} parts in {release_dir}", offers=(MEDIA,))
    join_parts(parts, workdir / MEDIA)
    return Attempt(source, "found", f"joined {len(parts)} parts of {MEDIA}", {MEDIA: workdir / MEDIA},
                   offers=(MEDIA,), got="copied")


def media_from_github_release(repo: str, tag: str, workdir: Path) -> Attempt:
    """media.db from the release's parts (none: a release from before the media store)."""
    source = f"GitHub release {repo}@{tag}"
    if shutil.which("gh") is None:
        return Attempt(source, "error", "the GitHub CLI `gh` is not installed (or use --release-dir)", offers=(MEDIA,))
    view = subprocess.run(["gh", "release", "view", tag, "--repo", repo, "--json", "assets", "--jq", ".assets[].name"],
                          capture_output=True, text=True)
    if view.returncode != 0:
        message = (view.stderr or view.stdout).strip()
        outcome = "absent" if "release not found" in message.lower() else "error"
        return Attempt(source, outcome, f"gh release view: {message}", offers=(MEDIA,))
    parts = sorted(a for a in view.stdout.split() if re.fullmatch(re.escape(MEDIA) + r"\.\d{3}", a))
    if not parts:
        return Attempt(source, "found", f"the release has no {MEDIA} parts", offers=(MEDIA,))
    download = subprocess.run(["gh", "release", "download", tag, "--repo", repo, "--dir", str(workdir), "--clobber",
                               "--pattern", f"{MEDIA}.*"], capture_output=True, text=True)
    if download.returncode != 0:
        return Attempt(source, "error", f"gh release download failed: {(download.stderr or download.stdout).strip()}",
                       offers=(MEDIA,))
    attempt = Attempt(source, "found", f"downloaded {len(parts)} parts of {MEDIA}", offers=(MEDIA,))
    got = [p.name for p in file_parts(workdir, MEDIA)]
    if got != parts:
        attempt.damaged[MEDIA] = f"listed in {len(parts)} parts, but the download gave {len(got)}"
    else:
        attempt.files[MEDIA] = join_parts(file_parts(workdir, MEDIA), workdir / MEDIA)
    return attempt


def slim_copy(media_path: Path, target: Path) -> None:
    """What `check` needs of the previous media.db: its files (without content) and downloads."""
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    try:
        conn.execute("attach database ? as source", [f"file:{media_path}?mode=ro"])
        with conn:
            conn.execute("create table files as select sha256, bytes from source.files")
            conn.execute("create table fetches as select id, item, sha256 from source.fetches")
    finally:
        conn.close()


def verified(attempt: Attempt) -> Attempt:
    """Each file a source gave is checked on its own; a broken one is set aside in
    `damaged` and the others stay usable."""
    for name, path in list(attempt.files.items()):
        problems = [p.removeprefix(f"{path}: ") for p in integrity_problems(path)]
        if problems:
            del attempt.files[name]
            attempt.damaged[name] = f"{attempt.got}, but broken: " + one_line(problems)[0]
    return attempt


def unreadable(name: str, attempts: list[Attempt]) -> list[str]:
    """Why `name` may exist somewhere though no source gave it sound (empty: it was
    never published anywhere that was asked)."""
    reasons = []
    for attempt in attempts:
        if name not in attempt.offers:
            continue
        if attempt.outcome == "error":
            reasons.append(f"{attempt.source} could not be read ({attempt.detail})")
        elif name in attempt.damaged:
            reasons.append(f"{attempt.source}: {name} {attempt.damaged[name]}")
        elif attempt.outcome == "found" and name == "telegram.db" and name not in attempt.files:
            reasons.append(f"{attempt.source} exists but has no telegram.db ({attempt.detail})")
    return reasons


def last_cited_fetch_id(db_path: Path) -> int:
    """The highest archive fetch id telegram.db cites (`fetches.id`, any `fetch_id`)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        last = 0
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")]
        for table in tables:
            columns = {r[1] for r in conn.execute(f"pragma table_info([{table}])")}
            citing = ["fetch_id"] if "fetch_id" in columns else []
            if table == "fetches" and "id" in columns:
                citing.append("id")
            for column in citing:
                value = conn.execute(f"select max([{column}]) from [{table}]").fetchone()[0]
                if isinstance(value, int):
                    last = max(last, value)
        return last
    finally:
        conn.close()


def archive_last_id(archive_path: Path) -> int:
    conn = sqlite3.connect(f"file:{archive_path}?mode=ro", uri=True)
    try:
        return conn.execute("select coalesce(max(id), 0) from fetches").fetchone()[0]
    finally:
        conn.close()


def reserve_archive_ids(archive_path: Path, above: int) -> int:
    """Make archive.db number its next fetches after `above` (creating the file if need
    be), so that no new fetch takes an id telegram.db already cites (its ids are
    AUTOINCREMENT: see schema.a002). Returns the last fetch id the archive had."""
    from .schema import open_archive

    adb = open_archive(archive_path)
    try:
        last = adb.execute("select coalesce(max(id), 0) from fetches").fetchone()[0]
        if last < above:
            with adb.atomic():
                adb.execute("delete from sqlite_sequence where name = 'fetches'")
                adb.execute("insert into sqlite_sequence (name, seq) values ('fetches', ?)", [above])
        return last
    finally:
        adb.close()


def forget_crawl_positions(db_path: Path) -> int:
    """Make the next crawl walk every channel back to its first post; data is kept."""
    conn = sqlite3.connect(db_path)
    try:
        exists = conn.execute("select 1 from sqlite_master where name = 'crawl_state'").fetchone()
        if not exists:
            return 0
        with conn:
            return conn.execute("delete from crawl_state").rowcount
    finally:
        conn.close()


def restore_media(release_dir, release_repo, release_tag, tmp: Path, attempts: list) -> Attempt | None:
    """media.db from the first release source that has it sound (None: none had it);
    every attempt is added to `attempts`, for `unreadable`."""
    sources = []
    if release_dir:
        sources.append(lambda w: media_from_release_dir(release_dir, w))
    if release_repo:
        sources.append(lambda w: media_from_github_release(release_repo, release_tag, w))
    for index, fetch in enumerate(sources):
        workdir = tmp / f"media{index}"
        workdir.mkdir()
        attempt = verified(fetch(workdir))
        attempts.append(attempt)
        click.echo(f"{attempt.source}: {MEDIA}: {attempt.outcome}: {attempt.detail}")
        for name, why in attempt.damaged.items():
            click.echo(f"{attempt.source}: {name} {why}")
        if MEDIA in attempt.files:
            return attempt
    return None


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              help="Where the crawl will find telegram.db and archive.db.")
@click.option("--before-dir", type=click.Path(path_type=Path), default=Path("before"), show_default=True,
              help="An untouched copy of what was restored, for `check` and `summary`.")
@click.option("--release-dir", type=click.Path(path_type=Path), help="A folder holding the previous release's files.")
@click.option("--release-repo", default="", help="OWNER/REPO whose release holds the previous databases.")
@click.option("--release-tag", default="data", show_default=True)
@click.option("--site-url", default="", help="The published Datasette, whose /telegram.db is the fallback.")
@click.option("--full-backfill", type=click.BOOL, default=False,
              help="Forget where crawls stopped, so this run walks every channel back to its first post.")
@click.option("--allow-fresh", type=click.BOOL, default=False,
              help="Start a file fresh even when a source that may hold it could not be read "
                   "(sound files are kept all the same).")
def restore(data_dir, before_dir, release_dir, release_repo, release_tag, site_url, full_backfill, allow_fresh):
    """Fetch the previous telegram.db and archive.db, each from the first source that has
    it sound: the release folder, the release, the site (telegram.db only)."""
    existing = [data_dir / name for name in (*DATABASES, MEDIA) if (data_dir / name).exists()]
    if existing:
        raise click.ClickException(f"{existing[0]} already exists: restore only fills an empty data folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    before_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    if release_dir:
        sources.append((DATABASES, lambda w: from_release_dir(release_dir, w)))
    if release_repo:
        sources.append((DATABASES, lambda w: from_github_release(release_repo, release_tag, w)))
    if site_url:
        sources.append((("telegram.db",), lambda w: from_site(site_url, w)))
    attempts: list[Attempt] = []
    chosen: dict[str, Attempt] = {}
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        for index, (offers, fetch) in enumerate(sources):
            if all(name in chosen for name in offers):
                continue  # everything this source could give is already restored
            workdir = Path(tmp) / str(index)
            workdir.mkdir()
            attempt = verified(fetch(workdir))
            attempts.append(attempt)
            click.echo(f"{attempt.source}: {attempt.outcome}: {attempt.detail}")
            for name, why in attempt.damaged.items():
                click.echo(f"{attempt.source}: {name} {why}")
            for name in attempt.files:
                chosen.setdefault(name, attempt)
        blocked = {name: unreadable(name, attempts) for name in DATABASES if name not in chosen}
        blocked = {name: reasons for name, reasons in blocked.items() if reasons}
        media = restore_media(release_dir, release_repo, release_tag, Path(tmp), attempts)
        if media is None and not blocked and unreadable(MEDIA, attempts):  # else the run stops anyway
            blocked[MEDIA] = unreadable(MEDIA, attempts)
        if blocked and not allow_fresh:
            reasons: dict[str, list[str]] = {}  # one reason may stand for both files
            for name, why in blocked.items():
                for reason in why:
                    reasons.setdefault(reason, []).append(name)
            kept = ", ".join(f"{name} is sound in {attempt.source}" for name, attempt in chosen.items())
            annotate("error", f"No sound {' or '.join(blocked)} could be restored: "
                     + "; ".join(reason + (f" [{', '.join(names)}]" if len(blocked) > 1 else "")
                                 for reason, names in reasons.items())
                     + (f" ({kept})" if kept else "")
                     + ". Refusing to start without history: that would publish the dataset without what "
                     "earlier runs saw. Re-run later or repair the source; or run with --allow-fresh true to "
                     "start only what could not be read fresh (sound files are kept).", "Restore failed")
            sys.exit(1)
        for name, attempt in chosen.items():
            shutil.copyfile(attempt.files[name], before_dir / name)
            os.replace(attempt.files[name], data_dir / name)
        if media is not None:
            slim_copy(media.files[MEDIA], before_dir / MEDIA)
            os.replace(media.files[MEDIA], data_dir / MEDIA)
    db_path, archive_path = data_dir / "telegram.db", data_dir / "archive.db"
    tried = "; ".join(f"{a.source}: {a.detail}" for a in attempts) or "no source was configured"
    if "telegram.db" not in chosen:
        why = (f"No sound telegram.db could be restored ({', '.join(blocked['telegram.db'])}) and the run "
               "allows a fresh start (--allow-fresh)" if "telegram.db" in blocked
               else f"No previous telegram.db was found ({tried})")
        kept = (f" archive.db was restored from {chosen['archive.db'].source} and is kept: every page earlier "
                "runs fetched is in it, and `telegram-datasette rebuild` can rebuild telegram.db from it."
                if "archive.db" in chosen else "")
        annotate("warning", f"{why}. STARTING A FRESH DATASET: the crawl goes back to each channel's first "
                 "post, but edits, deletions and view counts seen by earlier runs (if there were any) are not "
                 f"in it.{kept}", "Fresh start")
    elif "archive.db" not in chosen:
        source = chosen["telegram.db"].source
        why = (f"No sound archive.db could be restored ({', '.join(blocked['archive.db'])}) and the run allows "
               "a fresh start (--allow-fresh)" if "archive.db" in blocked
               else f"{source} had no archive.db" if source.startswith(("GitHub release", "release folder"))
               else f"no source had an archive.db ({tried})")
        annotate("warning", f"{why}: this run's archive starts empty (telegram.db, restored from {source}, "
                 "still holds all the history)", "No archive restored")
    if "telegram.db" in chosen:
        cited = last_cited_fetch_id(db_path)
        if cited and ("archive.db" not in chosen or archive_last_id(archive_path) < cited):
            last = reserve_archive_ids(archive_path, cited)
            if "archive.db" in chosen:
                annotate("warning", f"archive.db ends at fetch {last} but telegram.db cites fetches up to "
                         f"{cited}: the two come from different runs. New fetches are numbered after {cited}, "
                         "so none takes an id telegram.db already cites.", "Archive behind telegram.db")
            else:
                click.echo(f"archive.db starts fresh, its fetches numbered after {cited} (the last telegram.db cites)")
    if full_backfill and db_path.exists():
        forgotten = forget_crawl_positions(db_path)
        click.echo(f"full backfill: forgot the crawl position of {forgotten} channels")
    telegram = chosen.get("telegram.db")
    info = {
        "source": telegram.source if telegram else "fresh",
        "detail": telegram.detail if telegram else None,
        "files": sorted(chosen),
        "sources": {name: chosen[name].source if name in chosen else "fresh" for name in DATABASES},
        "allowed_fresh": sorted(blocked),
        "attempts": [{"source": a.source, "outcome": a.outcome, "detail": a.detail,
                      **({"damaged": a.damaged} if a.damaged else {})} for a in attempts],
        "full_backfill": bool(full_backfill),
        "media": media.source if media is not None else "fresh",
        "restored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (before_dir / "restore.json").write_text(json.dumps(info, indent=2))
    click.echo("restored " + ", ".join(f"{name} from {source}" if source != "fresh" else f"{name} fresh"
                                       for name, source in info["sources"].items())
               + f" into {data_dir}")


# ---------------------------------------------------------------- check


def lost_rows(before: Path, after: Path, tables: dict) -> dict[str, tuple[int, list[tuple]]]:
    """Rows of `before` that `after` no longer has (or has with changed kept values):
    table -> (how many, a few examples)."""
    conn = sqlite3.connect(f"file:{after}?mode=ro", uri=True)
    lost = {}
    try:
        conn.execute("attach database ? as before", [f"file:{before}?mode=ro"])
        for table, (key, kept) in tables.items():
            if not _has_table(conn, "before", table):
                continue
            columns = ", ".join(f"[{c}]" for c in key + kept)
            if not _has_table(conn, "main", table):
                sql = f"select {columns} from before.[{table}]"
            else:
                sql = f"select {columns} from before.[{table}] except select {columns} from main.[{table}]"
            count = conn.execute(f"select count(*) from ({sql})").fetchone()[0]
            if count:
                lost[table] = (count, conn.execute(f"{sql} limit 5").fetchall())
    finally:
        conn.close()
    return lost


def _has_table(conn, schema: str, table: str) -> bool:
    return conn.execute(f"select 1 from {schema}.sqlite_master where type = 'table' and name = ?", [table]).fetchone() is not None


def smoke_paths(db_path: Path) -> list[str]:
    """The home page, the database, every public table, the JSON API and a post's page."""
    paths = ["/", "/telegram", "/-/metadata.json", "/telegram/posts.json?_size=5&_shape=array"]
    paths += [f"/telegram/{table}?_size=5" for table in public_tables(db_path)]
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        newest = conn.execute("select channel, id from posts order by date desc limit 1").fetchone()
    finally:
        conn.close()
    if newest:
        paths.append(f"/telegram/posts/{newest[0]}~2F{newest[1]}")
    return paths


def smoke(db_path: Path) -> list[str]:
    """Serve the database as the site does (metadata, plugins, templates) and fetch the
    key pages through Datasette's client. Returns what failed."""
    import asyncio

    from datasette.app import Datasette

    ds = Datasette(
        [str(db_path)], metadata=site_metadata(), template_dir=str(TEMPLATES),
        settings={k: (v == "on") if v in ("on", "off") else int(v) for k, v in SERVE_SETTINGS.items()},
    )

    async def fetch_all():
        failures = []
        for path in smoke_paths(db_path):
            response = await ds.client.get(path)
            if response.status_code != 200:
                failures.append(f"GET {path}: HTTP {response.status_code}")
            elif path.startswith("/telegram/posts.json") and not isinstance(response.json(), list):
                failures.append(f"GET {path}: not a JSON list")
        return failures

    return asyncio.run(fetch_all())


def media_problems(db_path: Path, media_path: Path, before: Path | None) -> list[str]:
    """What is wrong with the media store: files of the previous run lost or changed
    (`before`: its slim copy), files whose content no longer hashes to their sha256, and
    files telegram.db says are stored that media.db does not hold."""
    import hashlib

    problems = []
    if before is not None and before.exists():
        for table, (count, examples) in lost_rows(before, media_path, KEPT_MEDIA).items():
            key, kept = KEPT_MEDIA[table]
            problems.append(f"lost: {count} rows of {MEDIA} {table} that the previous run had "
                            f"({', '.join(key + kept)}), e.g. {'; '.join(map(str, examples))}")
    conn = sqlite3.connect(f"file:{media_path}?mode=ro", uri=True)
    try:
        changed = [sha for sha, content in conn.execute("select sha256, cast(content as blob) from files")
                   if hashlib.sha256(content or b"").hexdigest() != sha]
        conn.execute("attach database ? as telegram", [f"file:{db_path}?mode=ro"])
        missing = [] if not _has_table(conn, "telegram", "media_files") else [r[0] for r in conn.execute(
            "select item from telegram.media_files where status = 'stored' "
            "and sha256 not in (select sha256 from main.files)")]
    finally:
        conn.close()
    if changed:
        problems.append(f"changed: {len(changed)} files of {MEDIA} no longer hash to their sha256, "
                        f"e.g. {', '.join(changed[:3])}")
    if missing:
        problems.append(f"lost: {len(missing)} files telegram.db media_files says are stored are not in "
                        f"{MEDIA}, e.g. {', '.join(missing[:3])}")
    return problems


@click.command()
@click.option("--before", "before_dir", type=click.Path(path_type=Path), default=Path("before"), show_default=True,
              help="The folder `restore` filled with the previous databases.")
@click.option("--db", "db_path", type=click.Path(exists=True, path_type=Path), default=Path("telegram.db"), show_default=True)
@click.option("--archive", "archive_path", type=click.Path(path_type=Path), default=None, help="The raw page archive  [default: archive.db beside --db]")
@click.option("--smoke/--no-smoke", "run_smoke", default=True, show_default=True, help="Fetch the key pages through Datasette.")
def check(before_dir, db_path, archive_path, run_smoke):
    """Fail unless the databases are sound and hold everything the previous run had."""
    archive_path = archive_path or archive_beside(db_path)
    media_path = media_beside(db_path)
    problems = []
    for path in (db_path, archive_path, media_path):
        if path.exists():
            problems += [f"integrity: {p}" for p in one_line(integrity_problems(path))]
        elif path == db_path or (before_dir / path.name).exists():
            problems.append(f"{path} is missing")
    # The previous files passed `integrity_check` when restore took them; here a damaged
    # one (changed since, or not put there by restore) is one clear line, not a traceback.
    def unreadable_previous(name: str, previous: Path, why: str) -> str:
        return (f"the previous {name} cannot be read ({previous}: {why}), so nothing can be checked "
                f"against it; restore leaves only sound copies in {before_dir}: was it changed since?")

    for name in (*DATABASES, MEDIA):
        previous = before_dir / name
        if previous.exists() and not is_sqlite(previous):
            problems.append(unreadable_previous(name, previous, "not an SQLite database"))
    if not problems:
        for name, current in (("telegram.db", db_path), ("archive.db", archive_path)):
            previous = before_dir / name
            if not previous.exists():
                continue
            try:
                lost = lost_rows(previous, current, KEPT_ROWS[name])
            except sqlite3.DatabaseError as error:  # `current` just passed integrity_check
                problems.append(unreadable_previous(name, previous, str(error)))
                continue
            for table, (count, examples) in lost.items():
                key, kept = KEPT_ROWS[name][table]
                problems.append(
                    f"lost: {count} rows of {name} {table} that the previous run had "
                    f"({', '.join(key + kept)}), e.g. {'; '.join(map(str, examples))}"
                )
    if not problems and media_path.exists():
        try:
            problems += media_problems(db_path, media_path, before_dir / MEDIA)
        except sqlite3.DatabaseError as error:
            problems.append(f"{media_path} or the previous {MEDIA} cannot be read: {error}")
    if not problems and run_smoke:
        problems += [f"smoke: {p}" for p in smoke(db_path)]
    for problem in problems:
        annotate("error", problem, "Check failed")
    if problems:
        click.echo(f"check failed: {len(problems)} problems; nothing may be published from this run", err=True)
        sys.exit(1)
    click.echo(f"check passed: {db_path} and {archive_path} are sound and keep every row of {before_dir}"
               + (", and the site answers" if run_smoke else ""))


# ---------------------------------------------------------------- export


def hidden_tables() -> set[str]:
    metadata = site_metadata()
    tables = metadata.get("databases", {}).get("telegram", {}).get("tables", {}) or {}
    return {name for name, options in tables.items() if (options or {}).get("hidden")}


def public_tables(db_path: Path) -> list[str]:
    """Tables people browse and download: all but the hidden ones and full-text indexes."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")]
    finally:
        conn.close()
    fts = {n for n in names if re.search(r"_fts(_|$)", n)}
    return [n for n in names if n not in fts and n not in hidden_tables()]


def write_csv(db_path: Path, table: str, out: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        cursor = conn.execute(f"select * from [{table}] order by rowid")
        with gzip.open(out, "wt", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([d[0] for d in cursor.description])
            rows = 0
            for row in cursor:
                writer.writerow(row)
                rows += 1
    finally:
        conn.close()
    return rows


@click.command()
@click.option("--db", "db_path", type=click.Path(exists=True, path_type=Path), default=Path("telegram.db"), show_default=True)
@click.option("--archive", "archive_path", type=click.Path(path_type=Path), default=None, help="The raw page archive  [default: archive.db beside --db]")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("export"), show_default=True)
@click.option("--part-bytes", type=click.IntRange(min=1), default=PART_BYTES, show_default=True,
              help="media.db goes into the release in parts of at most this size (GitHub's limit is 2 GiB).")
def export(db_path, archive_path, out_dir, part_bytes):
    """The release files: the databases (media.db in parts), a gzipped CSV and a Parquet file per
    public table, SHA256SUMS."""
    archive_path = archive_path or archive_beside(db_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tables": {}}
    copy_database(db_path, out_dir / "telegram.db")
    if archive_path.exists():
        copy_database(archive_path, out_dir / "archive.db")
    if media_beside(db_path).exists():
        copy_database(media_beside(db_path), out_dir / MEDIA)
        manifest[MEDIA] = [p.name for p in split_file(out_dir / MEDIA, out_dir, part_bytes)]
        (out_dir / MEDIA).unlink()
    for table in public_tables(out_dir / "telegram.db"):
        manifest["tables"][table] = write_csv(out_dir / "telegram.db", table, out_dir / f"{table}.csv.gz")
    write_parquet(out_dir / "telegram.db", out_dir, list(manifest["tables"]), site_metadata())  # <table>.parquet
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    files = sorted(p for p in out_dir.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    (out_dir / "SHA256SUMS").write_text("".join(f"{sha256_file(p)}  {p.name}\n" for p in files))
    click.echo(f"exported {len(files)} files to {out_dir}: "
               + ", ".join(f"{t} ({n} rows)" for t, n in manifest["tables"].items()))


# ---------------------------------------------------------------- summary


def changes(before: Path | None, after: Path) -> dict[str, dict[str, int]]:
    """Per channel: posts now, and new / edited / deleted / restored since `before`."""
    conn = sqlite3.connect(f"file:{after}?mode=ro", uri=True)
    try:
        rows = {}
        for channel, total, deleted in conn.execute(
            "select channel, count(*), sum(deleted_at is not null) from posts group by channel order by channel"
        ):
            rows[channel] = {"posts": total, "deleted_total": deleted or 0,
                             "new": 0, "edited": 0, "deleted": 0, "restored": 0}
        for username, subscribers in conn.execute("select username, subscribers from channels"):
            if username in rows:
                rows[username]["subscribers"] = subscribers
        if before is None or not before.exists():
            for row in rows.values():
                row["new"] = row["posts"]
            return rows
        conn.execute("attach database ? as before", [f"file:{before}?mode=ro"])
        queries = {
            "new": "select channel, count(*) from posts p where not exists "
                   "(select 1 from before.posts b where b.channel = p.channel and b.id = p.id) group by channel",
            "edited": "select channel, count(distinct post_id) from post_versions v where version > 1 and not exists "
                      "(select 1 from before.post_versions b where b.channel = v.channel and b.post_id = v.post_id "
                      "and b.version = v.version) group by channel",
            "deleted": "select p.channel, count(*) from posts p join before.posts b on b.channel = p.channel "
                       "and b.id = p.id where p.deleted_at is not null and b.deleted_at is null group by p.channel",
            "restored": "select p.channel, count(*) from posts p join before.posts b on b.channel = p.channel "
                        "and b.id = p.id where p.deleted_at is null and b.deleted_at is not null group by p.channel",
        }
        for key, sql in queries.items():
            for channel, count in conn.execute(sql):
                rows.setdefault(channel, {"posts": 0, "deleted_total": 0, "new": 0, "edited": 0, "deleted": 0, "restored": 0})[key] = count
    finally:
        conn.close()
    return rows


def summary_markdown(before_dir: Path, db_path: Path) -> str:
    info_path = before_dir / "restore.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {"source": "unknown"}
    lines = ["## Telegram dataset update", ""]
    try:
        rows = changes(before_dir / "telegram.db", db_path) if db_path.exists() else {}
    except sqlite3.DatabaseError as error:
        return "\n".join(lines + [f"The databases could not be read: {error}.", ""])
    if info.get("source") == "fresh":
        lines += ["> [!WARNING]", "> No previous dataset was found: this run started fresh.", ""]
    else:
        lines += [f"Started from {info.get('source')}" + (" (full backfill)" if info.get("full_backfill") else "") + ".", ""]
        if info.get("sources", {}).get("archive.db") == "fresh":
            lines += ["> [!WARNING]", "> No previous archive.db was restored: this run's archive started empty.", ""]
    if not rows:
        return "\n".join(lines + ["No posts in the database.", ""])
    totals = {k: sum(r.get(k, 0) for r in rows.values()) for k in ("posts", "new", "edited", "deleted", "restored")}
    lines += [
        f"**{totals['new']} new, {totals['edited']} edited, {totals['deleted']} deleted, "
        f"{totals['restored']} restored** posts; {totals['posts']} posts in {len(rows)} channels.", "",
        "| channel | posts | new | edited | deleted | restored | deleted in all | subscribers |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for channel, r in rows.items():
        lines.append(f"| {channel} | {r['posts']} | {r['new']} | {r['edited']} | {r['deleted']} | "
                     f"{r['restored']} | {r['deleted_total']} | {r.get('subscribers') if r.get('subscribers') is not None else ''} |")
    return "\n".join(lines + [""])


@click.command()
@click.option("--before", "before_dir", type=click.Path(path_type=Path), default=Path("before"), show_default=True)
@click.option("--db", "db_path", type=click.Path(path_type=Path), default=Path("telegram.db"), show_default=True)
def summary(before_dir, db_path):
    """Markdown for $GITHUB_STEP_SUMMARY: new, edited, deleted posts; per channel counts."""
    click.echo(summary_markdown(before_dir, db_path))


COMMANDS = (restore, check, export, summary)
