"""Command line: `python -m scripts COMMAND`. Each command wires modules together."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import archive, build, store

ROOT = Path(__file__).resolve().parent.parent


@click.group()
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


db_option = click.option(
    "--db", "db_path", type=click.Path(path_type=Path), default=ROOT / "telegram.db",
    show_default=True, help="The published database.",
)
archive_option = click.option(
    "--archive", "archive_path", type=click.Path(path_type=Path), default=ROOT / "archive.db",
    show_default=True, help="The raw page archive.",
)


@cli.command("build-parser")
@click.option("--force", is_flag=True, help="Compile even when the module is up to date.")
def build_parser(force):
    """Compile the parser's fast path (optional: without a C compiler, parsing runs in pure Python)."""
    from .compile import compile_fast_parser

    click.echo(compile_fast_parser(ROOT / "build", force=force))


@cli.command("import-pages")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@db_option
@archive_option
def import_pages(paths, db_path, archive_path):
    """Import saved t.me/s or embed pages (files or folders)."""
    totals = build.import_pages(paths, db_path, archive_path)
    click.echo(
        f"imported {totals['files']} files: {totals['posts']} posts ({totals['new']} new), "
        f"{totals['unknown']} of unknown kind, {totals['problems']} problems, "
        f"{totals['unchanged']} files already imported"
    )


@cli.command()
@db_option
@archive_option
def rebuild(db_path, archive_path):
    """Re-create telegram.db from archive.db alone, with no network."""
    if not archive_path.exists():
        raise click.ClickException(f"{archive_path} does not exist: nothing to rebuild from")
    totals = build.rebuild(archive_path, db_path)
    click.echo(f"rebuilt {db_path} from {totals['fetches']} archived fetches ({totals['posts']} posts)")


@cli.command("build")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=ROOT / "channels.yml", show_default=True)
@click.option("--demo", is_flag=True, default=None, help="Build from the fake Telegram's demo channel.")
@click.option("--metadata-out", type=click.Path(path_type=Path), default=ROOT / "build" / "metadata.json", show_default=True)
@db_option
@archive_option
def build_command(config_path, demo, metadata_out, db_path, archive_path):
    """The main job: crawl, build telegram.db, write the metadata Datasette serves."""
    sys.exit(build.build_dataset(config_path, db_path, archive_path, metadata_out, demo=demo))


@cli.command("crawl")
@click.option("--channel", "channels", multiple=True, help="Crawl this channel (repeatable); default: channels.yml.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=ROOT / "channels.yml", show_default=True)
@click.option("--base-url", help="Fetch from here instead of https://t.me (a mirror or the fake Telegram).")
@click.option("--requests-per-second", type=float, help="Rate limit per host (0: none).")
@click.option("--refresh-days", type=float, help="Re-fetch the posts of the last N days.")
@db_option
@archive_option
def crawl_command(channels, config_path, base_url, requests_per_second, refresh_days, db_path, archive_path):
    """Crawl channels from t.me into archive.db and telegram.db."""
    from .crawl import crawl, load_config
    from .progress import CrawlProgress, summary_table

    config = load_config(config_path)
    for key, value in (("base_url", base_url), ("requests_per_second", requests_per_second),
                       ("refresh_days", refresh_days)):
        if value is not None:
            config[key] = value
    names = list(channels) or config["channels"]
    db, adb = store.open_db(db_path), archive.open_archive(archive_path)
    with CrawlProgress() as progress:
        results = crawl(names, db, adb, config, report=progress.report)
    progress.console.print(summary_table(results))
    build.finish(db)
    failed = [r for r in results if r.failed]
    for result in failed:
        click.echo(f"FAILED {result.error}", err=True)
    if failed:
        sys.exit(1)


# The scheduled update's steps (.github/workflows/update.yml): restore, check, export, publish, summary.
from . import workflow  # noqa: E402

for command in workflow.COMMANDS:
    cli.add_command(command)


from .fake_telegram import cli as fake_telegram  # noqa: E402

cli.add_command(fake_telegram, "fake-telegram")

if __name__ == "__main__":
    cli()
