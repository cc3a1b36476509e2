"""Publish: serve telegram.db with Datasette, on this machine (`serve`) or as a site (`publish`).

Both use the same options: `metadata.yml`, `templates/` and the settings below. The
project's plugins come from the installed package (its `datasette` entry points), as any
Datasette plugin does: the site installs the package (`--install`, from the commit's
source archive) and serves no source files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click
import yaml

ROOT = Path(__file__).resolve().parent.parent  # the checkout: metadata.yml, templates/
METADATA = ROOT / "metadata.yml"
TEMPLATES = ROOT / "templates"
SERVE_SETTINGS = {"sql_time_limit_ms": "3000", "max_returned_rows": "1000", "suggest_facets": "off"}
# Installed on the site beside the package, pinned as requirements.txt pins them.
SITE_PLUGINS = ("datasette", "datasette-cluster-map", "datasette-search-all", "datasette-atom",
                "datasette-dashboards", "datasette-media", "pillow")


def site_metadata() -> dict:
    if not METADATA.exists():
        raise click.ClickException(f"{METADATA} is missing: serve and publish run from a checkout of the project")
    return yaml.safe_load(METADATA.read_text()) or {}


def settings_args() -> list[str]:
    return [part for name, value in SERVE_SETTINGS.items() for part in ("--setting", name, value)]


def served_files(db_path: Path) -> list[Path]:
    """telegram.db, and the media store beside it when there is one (media.db: the files
    that datasette-media serves, metadata.yml)."""
    from .schema import media_beside

    media = media_beside(db_path)
    return [Path(db_path)] + ([media] if media.exists() else [])


# The release carries media.db in parts (GitHub refuses assets of 2 GiB or more):
# media.db.001, media.db.002, ... in order; `cat media.db.* > media.db` joins them.
PART_BYTES = 1_900_000_000


def split_file(path: Path, out_dir: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """`path` as `<name>.001`, `<name>.002`, ... in `out_dir` (earlier parts removed)."""
    for old in out_dir.glob(f"{path.name}.[0-9][0-9][0-9]"):
        old.unlink()
    parts = []
    with path.open("rb") as source:
        while True:
            part = out_dir / f"{path.name}.{len(parts) + 1:03d}"
            with part.open("wb") as target:
                copied = 0
                while copied < part_bytes:
                    chunk = source.read(min(1 << 20, part_bytes - copied))
                    if not chunk:
                        break
                    target.write(chunk)
                    copied += len(chunk)
            if copied == 0 and parts:
                part.unlink()
                return parts
            parts.append(part)
            if copied < part_bytes:
                return parts


def file_parts(folder: Path, name: str) -> list[Path]:
    return sorted(Path(folder).glob(f"{name}.[0-9][0-9][0-9]"))


def join_parts(parts: list[Path], target: Path) -> Path:
    tmp = target.with_name(target.name + ".joining")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    os.replace(tmp, target)
    return target


@contextmanager
def with_media_beside(db_path: Path):
    """The database to publish with media.db beside it: as it is, or (an export folder,
    which holds media.db in parts) a copy of both in a temporary folder."""
    from .schema import media_beside

    parts = file_parts(Path(db_path).parent, "media.db")
    if media_beside(db_path).exists() or not parts:
        yield Path(db_path)
        return
    with tempfile.TemporaryDirectory(dir=Path(db_path).parent) as tmp:
        shutil.copyfile(db_path, Path(tmp) / Path(db_path).name)
        join_parts(parts, Path(tmp) / "media.db")
        yield Path(tmp) / Path(db_path).name


def serve_command(db_path: Path, host: str = "127.0.0.1", port: int = 8001) -> list[str]:
    """`datasette serve` as this project serves a database. Not --immutable: a crawl may
    write the file while it is served (WAL keeps readers consistent)."""
    return [sys.executable, "-m", "datasette", "serve", *map(str, served_files(db_path)), "--metadata", str(METADATA),
            "--template-dir", str(TEMPLATES), *settings_args(), "--host", host, "--port", str(port)]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            found[line.split("==")[0].strip().lower()] = line
    return found


def package_source(repository: str | None = None, commit: str | None = None) -> str:
    """Where the site installs this project from: the commit's source archive on GitHub."""
    repository = repository or os.environ.get("GITHUB_REPOSITORY")
    commit = commit or os.environ.get("GITHUB_SHA")
    if not repository or not commit:
        raise click.ClickException("name the package to install on the site: --package URL "
                                   "(in GitHub Actions it is the commit's source archive)")
    return f"https://github.com/{repository}/archive/{commit}.tar.gz"


def site_installs(package: str) -> list[str]:
    """What the site's Dockerfile installs: pinned Datasette and plugins, then the project
    (whose own requirements bring the rest)."""
    pinned = pins()
    return [pinned.get(name, name) for name in SITE_PLUGINS] + [package]


def publish_options(package: str) -> dict:
    """The options of `datasette publish` (as keyword arguments of Datasette's own
    temporary_docker_directory, which every publisher uses to build what it uploads)."""
    return {
        "metadata": METADATA,
        "template_dir": TEMPLATES,
        "install": site_installs(package),
        "extra_options": " ".join(settings_args()),
    }


def publish_command(target: str, db_path: Path, package: str, app: str, version_note: str | None) -> list[str]:
    options = publish_options(package)
    command = ["datasette", "publish", target, *map(str, served_files(db_path)), "--metadata", str(options["metadata"]),
               "--template-dir", str(options["template_dir"])]
    for item in options["install"]:
        command += ["--install", item]
    command += ["--extra-options", options["extra_options"]]
    command += ["--app" if target == "fly" else "--service", app]
    if version_note:
        command += ["--version-note", version_note]
    return command


def build_site_folder(folder: Path, db_path: Path, package: str, version_note: str | None = None) -> Path:
    """The exact folder `datasette publish` would upload (Dockerfile included), copied to `folder`."""
    from datasette.utils import temporary_docker_directory

    options = publish_options(package)
    db_path = db_path.resolve()
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    saved = Path.cwd()
    os.chdir(db_path.parent)  # temporary_docker_directory resolves files against the cwd
    try:
        with open(options["metadata"]) as metadata, temporary_docker_directory(
            files=[path.name for path in served_files(db_path)], name="telegram-datasette", metadata=metadata,
            extra_options=options["extra_options"], branch=None, template_dir=str(options["template_dir"]),
            plugins_dir=None, static=[], install=options["install"], spatialite=False,
            version_note=version_note, secret="not-a-secret-in-a-folder", port=8001,
        ) as built:
            shutil.copytree(built, staging)
    finally:
        os.chdir(saved)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return folder


TARGETS = {
    # target: (the secret that enables it, the variable naming the app or service)
    "fly": ("FLY_API_TOKEN", "FLY_APP"),
    "cloudrun": ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDRUN_SERVICE"),
}


@click.command()
@click.option("--target", required=True,
              help="fly (needs FLY_API_TOKEN, FLY_APP), cloudrun (needs Google credentials, "
                   "CLOUDRUN_SERVICE), or folder:PATH (what would be uploaded, Dockerfile included).")
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("telegram.db"), show_default=True)
@click.option("--package", help="What the site installs for the project's plugins  "
              "[default: https://github.com/$GITHUB_REPOSITORY/archive/$GITHUB_SHA.tar.gz]")
@click.option("--version-note", default=lambda: os.environ.get("GITHUB_SHA", "")[:12] or None,
              help="Shown on /-/versions (default: the commit).")
def publish(target, db_path, package, version_note):
    """Publish telegram.db with Datasette; skipped with a notice when the secret is absent."""
    from .workflow import annotate

    if target.startswith("folder:"):
        with with_media_beside(db_path) as served:
            folder = build_site_folder(Path(target[len("folder:"):]), served, package or package_source(), version_note)
        click.echo(f"published to {folder}")
        return
    if target not in TARGETS:
        raise click.BadParameter(f"expected fly, cloudrun or folder:PATH, got {target!r}", param_hint="--target")
    secret, app_variable = TARGETS[target]
    if not os.environ.get(secret):
        annotate("notice", f"{secret} is not set, so the site was not published to {target}; the release "
                 "files are the published data. See the README, 'Deploy your own copy'.", "Publish skipped")
        return
    app = os.environ.get(app_variable)
    if not app:
        raise click.ClickException(f"{secret} is set but {app_variable} is not: name the {target} app to publish to")
    with with_media_beside(db_path) as served:
        command = publish_command(target, served, package or package_source(), app, version_note)
        click.echo("$ " + " ".join(command))
        status = subprocess.run(command).returncode
    sys.exit(status)
