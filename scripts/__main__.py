"""Command line: `python -m scripts COMMAND`. Each command wires modules together."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import build

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


db_option = click.option(
    "--db", "db_path", type=click.Path(path_type=Path), default=ROOT / "telegram.db",
    show_default=True, help="The published database.",
)
archive_option = click.option(
    "--archive", "archive_path", type=click.Path(path_type=Path), default=ROOT / "archive.db",
    show_default=True, help="The raw page archive.",
)


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


if __name__ == "__main__":
    cli()
