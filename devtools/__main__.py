"""`python -m devtools fake-telegram ...` from the checkout."""

import click

from .fake_telegram import cli as fake_telegram


@click.group()
def cli():
    """Development tools of telegram-datasette."""


cli.add_command(fake_telegram, "fake-telegram")
cli(prog_name="python -m devtools")
