"""Command line: `telegram-datasette COMMAND` (or `python -m telegram_datasette`).

Each command wires modules together. Every command finds telegram.db in the current
directory by default (`--db` elsewhere) and archive.db beside it.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import click

from . import workflow
from .config import ConfigError, channel_names, load_config
from .merge import merge_command
from .publish import publish, serve_command
from .schema import DEFAULT_DB, Busy, archive_beside, writing

DEFAULT_CONFIG = Path("channels.yml")


class Commands(click.Group):
    """Database and disk failures end a command in one clear line, not a traceback.
    Each page is written in one transaction, so the files stay valid either way."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Busy as error:
            raise click.ClickException(str(error))
        except sqlite3.OperationalError as error:
            if "full" in str(error):
                raise click.ClickException(f"the disk is full ({error}); everything written before "
                                           "stays valid: free some space and run again")
            if "locked" in str(error):
                raise click.ClickException(f"the database is locked by another program ({error}); "
                                           "run again when it has finished")
            raise click.ClickException(f"SQLite: {error}")
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise click.ClickException(f"the disk is full ({error}); free some space and run again")
            raise


@click.group(cls=Commands)
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
def cli(verbose):
    """Turn public Telegram channels into a Datasette-published open dataset."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # One line per request is too much; the crawl reports per page itself.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)


def data_options(command):
    """--db and --archive, the same for every command."""
    command = click.option(
        "--archive", "archive_path", type=click.Path(dir_okay=False, path_type=Path),
        help="The raw page archive  [default: archive.db beside --db]",
    )(command)
    return click.option(
        "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
        show_default=True, help="The published database.",
    )(command)


def crawl_options(command):
    for option in reversed([
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="The channels and settings  [default: channels.yml in the current directory]"),
        click.option("--channel", "channels", multiple=True,
                     help="Crawl this channel (NAME, @NAME or a t.me link; repeatable) instead of the config's."),
        click.option("--base-url", help="Fetch from here instead of https://t.me (a mirror or the fake Telegram)."),
        click.option("--requests-per-second", type=click.FloatRange(min=0), help="Rate limit per host (0: none)."),
        click.option("--refresh-days", type=click.FloatRange(min=0), help="Re-fetch the posts of the last N days."),
    ]):
        command = option(command)
    return data_options(command)


def settings(config_path, channels, base_url, requests_per_second, refresh_days) -> tuple[list[str], dict]:
    """The checked configuration and the channels to crawl; a mistake exits with status 2."""
    try:
        if config_path is None and not channels and not DEFAULT_CONFIG.exists():
            raise ConfigError(f"{DEFAULT_CONFIG}: no such file in {Path.cwd()} (pass --config with the path "
                              "of your channels.yml, or --channel NAME)")
        path = config_path or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        config = load_config(path)
        names = channel_names(list(channels)) if channels else config["channels"]
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    for key, value in (("base_url", base_url), ("requests_per_second", requests_per_second),
                       ("refresh_days", refresh_days)):
        if value is not None:
            config[key] = value
    if requests_per_second is not None:  # per host: the media CDN's hosts too
        config["media_requests_per_second"] = requests_per_second
    return names, config


def open_real(db_path: Path, archive_path: Path | None):
    """telegram.db and archive.db for real data, held for this command alone."""
    from .build import DemoDatabase, open_real

    click.get_current_context().with_resource(writing(db_path))
    try:
        return open_real(db_path, archive_path or archive_beside(db_path))
    except DemoDatabase as error:
        raise click.ClickException(str(error))


def shard_option(value):
    from .merge import parse_shard

    try:
        return parse_shard(value) if value else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@cli.command("crawl")
@crawl_options
@click.option("--shard", callback=lambda ctx, param, value: shard_option(value), metavar="I/N",
              help="Crawl only the channels of shard I of N (split by a stable hash of their names; see `merge`).")
def crawl_command(config_path, channels, base_url, requests_per_second, refresh_days, db_path, archive_path, shard):
    """Crawl channels from t.me into archive.db and telegram.db, then derive."""
    from .crawl import run_crawl
    from .merge import in_shard

    names, config = settings(config_path, channels, base_url, requests_per_second, refresh_days)
    if shard:
        names = in_shard(names, *shard)
        click.echo(f"shard {shard[0]}/{shard[1]}: {len(names)} channels", err=True)
    db, adb = open_real(db_path, archive_path)
    sys.exit(run_crawl(names, db, adb, config, echo=lambda line: click.echo(line, err=True), shard=bool(shard)))


@cli.command("follow")
@crawl_options
def follow_command(config_path, channels, base_url, requests_per_second, refresh_days, db_path, archive_path):
    """Follow the forwards of the configured channels (one hop; see channels.yml), then
    derive and store media. `crawl` does this itself; the sharded update runs it once
    after `merge`. Originals that could not be fetched are tried again next run."""
    from .crawl import follow_forwards
    from .derive import derive
    from .media import run_media

    names, config = settings(config_path, channels, base_url, requests_per_second, refresh_days)
    db, adb = open_real(db_path, archive_path)
    _, followed = follow_forwards(names, db, adb, config)
    click.echo(followed.line(), err=True)
    derive(db)
    run_media(db, config, echo=lambda line: click.echo(line, err=True))


def build_or_demo(names, config, db_path, archive_path) -> tuple[int, Path]:
    """The main job: crawl; where t.me cannot be reached, the demo in its own folder
    (`demo/` beside --db). Returns the exit status and the database built."""
    from .build import build_demo, telegram_reachable
    from .crawl import run_crawl

    def echo(line):
        click.echo(line, err=True)

    problem = telegram_reachable(config["base_url"])
    if problem is None:
        db, adb = open_real(db_path, archive_path)
        return run_crawl(names, db, adb, config, echo=echo), db_path
    demo_db = db_path.parent / "demo" / "telegram.db"
    try:
        import devtools  # noqa: F401 - the fake Telegram, in a checkout only
    except ImportError:
        echo(f"{config['base_url']} cannot be reached ({problem}); nothing was crawled")
        return 1, db_path
    echo(f"{config['base_url']} cannot be reached ({problem}); building the demo dataset from the "
         f"project's fake Telegram into {demo_db} instead")
    click.get_current_context().with_resource(writing(demo_db))
    return build_demo(demo_db, archive_beside(demo_db), echo=echo), demo_db


@cli.command("build")
@crawl_options
def build_command(config_path, channels, base_url, requests_per_second, refresh_days, db_path, archive_path):
    """The main job: crawl and derive (the demo where t.me cannot be reached)."""
    names, config = settings(config_path, channels, base_url, requests_per_second, refresh_days)
    status, built = build_or_demo(names, config, db_path, archive_path)
    click.echo(f"built {built}", err=True)
    sys.exit(status)


@cli.command("serve")
@crawl_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--no-build", is_flag=True, help="Serve what --db holds, without crawling first.")
def serve_cmd(config_path, channels, base_url, requests_per_second, refresh_days, db_path, archive_path,
              host, port, no_build):
    """Build (as `build` does), then serve the result with Datasette. Never serves an empty site."""
    from .build import has_posts

    status, built = 0, db_path
    if not no_build:
        names, config = settings(config_path, channels, base_url, requests_per_second, refresh_days)
        status, built = build_or_demo(names, config, db_path, archive_path)
    if not has_posts(built):
        click.echo(f"Error: {built} has no posts: there is nothing to serve (see the messages above)", err=True)
        sys.exit(status or 1)
    if status:
        click.echo(f"serving {built} although the build was incomplete (see above)", err=True)
    click.echo(f"serving {built} on http://{host}:{port}/", err=True)
    sys.exit(subprocess.run(serve_command(built, host, port)).returncode)


@cli.command("import-pages")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@data_options
def import_pages(paths, db_path, archive_path):
    """Import saved t.me/s or embed pages (files or folders)."""
    from .build import import_pages

    open_real(db_path, archive_path)  # locks, and refuses a demo database
    totals = import_pages(paths, db_path, archive_path or archive_beside(db_path))
    click.echo(
        f"imported {totals['files']} files: {totals['posts']} posts ({totals['new']} new), "
        f"{totals['unknown']} of unknown kind, {totals['problems']} problems, "
        f"{totals['unchanged']} files already imported"
    )
    if not totals["read"]:
        raise click.ClickException(f"none of the {totals['files']} files given could be read as a t.me page"
                                   if totals["files"] else "no .html files found in what was given")


@cli.command("import-export")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@data_options
@click.option("--channel", help="The channel's username, when the dataset does not know it by its numeric id yet.")
@click.option("--exported-at", help="When the export was taken (ISO 8601)  [default: its latest date or edit]")
def import_export_command(path, db_path, archive_path, channel, exported_at):
    """Import a Telegram Desktop export (result.json, or the folder holding it)."""
    from .derive import derive
    from .desktop_export import ExportError, import_export

    def echo(line):
        click.echo(line, err=True)

    shown = [0]

    def progress(done, total):  # a line at each tenth of a big export
        if total >= 10_000 and done * 10 // total > shown[0]:
            shown[0] = done * 10 // total
            echo(f"{done:,} of {total:,} messages")

    db, adb = open_real(db_path, archive_path)  # locks, and refuses a demo database
    try:
        totals = import_export(path, db, adb, channel=channel, exported_at=exported_at, echo=echo, progress=progress)
    except ExportError as error:
        raise click.ClickException(f"{path}: {error}") from None
    if totals["unchanged"]:
        click.echo(f"{path}: already imported, nothing changed")
        return
    derive(db)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(totals.items(), key=lambda kv: -kv[1])
                      if kind not in ("messages", "new", "edited", "restored", "skipped", "unchanged") and n)
    click.echo(f"imported {path}: {totals['messages']} messages ({totals['new']} new, {totals['edited']} with a "
               f"new text): {kinds or 'none'}; {totals['skipped']} chats skipped")


@cli.command()
@data_options
@click.option("--workers", type=click.IntRange(min=1), help="Processes that parse pages and find places  [default: one per core]")
def rebuild(db_path, archive_path, workers):
    """Re-create telegram.db from archive.db alone, with no network."""
    from .build import rebuild

    archive_path = archive_path or archive_beside(db_path)
    if not archive_path.exists():
        raise click.ClickException(f"{archive_path} does not exist: nothing to rebuild from")
    click.get_current_context().with_resource(writing(db_path))
    totals = rebuild(archive_path, db_path, workers=workers)
    click.echo(f"rebuilt {db_path} from {totals['fetches']} archived fetches ({totals['posts']} posts)")


# The scheduled update's steps (.github/workflows/update.yml): restore, check, export, publish, summary.
for command in (*workflow.COMMANDS, publish, merge_command):
    cli.add_command(command)


def main():
    cli(prog_name="telegram-datasette")
