"""The published site is self-contained: it installs the project as Datasette deployments
install plugins, and serves nothing of the checkout.

What `datasette publish` uploads is built here exactly as the `publish` command builds it
(`telegram_datasette.publish.build_site_folder`, i.e. Datasette's own
`temporary_docker_directory` with the same options), with the project given as a source
archive shaped like GitHub's `archive/<sha>.tar.gz` (one top folder holding the working
tree's files, uncommitted changes included). Then the folder's Dockerfile is played without
Docker: its `RUN pip install -U ...` packages go into a fresh virtual environment (no
system site-packages), its `RUN datasette inspect ...` runs in the folder, and its
`CMD datasette serve ...` is started from the folder on a free loopback port, with no
PYTHONPATH, so nothing of the checkout can be imported. The live site must then:

- load the project's plugins through the installed package's `datasette` entry points,
  beside datasette-cluster-map and datasette-search-all;
- search posts with Russian stemming (`Россия` finds a post that only says `России`);
- show a post's page;
- serve no Python source (not the pipeline's, not the plugins', not devtools');
- and the environment must not carry the development tools (`devtools`).

One virtual environment is installed for the whole module (a minute or so, offline from
the machine's package mirror); the server is stopped when the module ends.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port, stop, wait_for_http

# Installing the site's packages takes most of the module's time; give the first test
# (whose setup does it) room beyond pytest.ini's 300 s.
pytestmark = pytest.mark.timeout(900)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY_POINTS = PYPROJECT["project"]["entry-points"]["datasette"]
PLUGIN_NAMES = {"telegram_search", "telegram_render", "telegram_search_all_menu",
                "telegram_static_metadata", "telegram_site"}
THIRD_PARTY_PLUGINS = {"datasette-cluster-map", "datasette-search-all"}
# published_db (conftest.py): post TestEmb/1 says "Посол России в Норвегии ...". The search
# is for the nominative, which no post contains: only the stemmed index can find it.
SEARCH_WORD, FOUND_FORM = "Россия", "России"
POST_CHANNEL, POST_ID = "TestEmb", 1
POST_TEXT = "Посол России в Норвегии"
SOURCE_PATHS = ("/scripts/store.py", "/plugins/search.py", "/telegram_datasette/store.py",
                "/devtools/fake_telegram.py", "/static/scripts/store.py")
PIP_TIMEOUT = 300
SERVE_TIMEOUT = 60


@dataclass
class Site:
    folder: Path
    venv: Path
    env: dict
    base: str
    dockerfile: str
    installs: list[str]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout.decode()


def source_archive(dest: Path) -> Path:
    """The working tree as GitHub's archive/<sha>.tar.gz: one top folder, every tracked
    or untracked-but-not-ignored file as it is now on disk."""
    try:
        sha = _git("rev-parse", "HEAD").strip()
    except subprocess.CalledProcessError:  # a repository without commits yet
        sha = "0" * 40
    top = f"telegram-datasette-{sha}"
    names = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    archive = dest / f"{sha}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(set(filter(None, names))):
            path = ROOT / name
            if path.is_file():  # skips deleted files and nested repositories
                tar.add(path, arcname=f"{top}/{name}", recursive=False)
    with tarfile.open(archive) as tar:
        tops = {member.name.split("/")[0] for member in tar.getmembers()}
    assert tops == {top}, tops
    return archive


def dockerfile_line(dockerfile: str, prefix: str) -> str:
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, f"expected one {prefix!r} line in the Dockerfile:\n{dockerfile}"
    return lines[0][len(prefix):].strip()


def clean_env(venv: Path) -> dict:
    """The environment the site runs in: the venv first in PATH, nothing that would make
    the checkout (or another environment) importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV",
                        "PYTHONSAFEPATH"} and not k.startswith("PYTEST")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def venv_command(command: str, venv: Path, port: int | None = None) -> list[str]:
    """A Dockerfile command as argv, run with the venv's datasette ($PORT filled in)."""
    argv = shlex.split(command)
    assert argv[0] == "datasette", command
    argv[0] = str(venv / "bin" / "datasette")
    if port is not None:
        assert "$PORT" in argv, command
        argv = [str(port) if part == "$PORT" else part for part in argv]
        argv = ["127.0.0.1" if part == "0.0.0.0" else part for part in argv]
    return argv


def run(argv: list[str], *, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{shlex.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def site(published_db, tmp_path_factory):
    """The published folder, installed and served as its Dockerfile says, without Docker."""
    if shutil.which("git") is None:
        pytest.skip("git is missing: the site's source archive is made from `git ls-files`")
    from telegram_datasette.publish import build_site_folder

    tmp = tmp_path_factory.mktemp("site")
    archive = source_archive(tmp)
    folder = build_site_folder(tmp / "folder", published_db, str(archive.resolve()))
    dockerfile = (folder / "Dockerfile").read_text()
    installs = shlex.split(dockerfile_line(dockerfile, "RUN pip install -U"))
    inspect = dockerfile_line(dockerfile, "RUN datasette inspect")
    inspect = "datasette inspect " + inspect
    serve = dockerfile_line(dockerfile, "CMD")
    assert str(archive.resolve()) in installs, installs

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    env = clean_env(venv)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-U", *installs],
        cwd=folder, env=env, timeout=PIP_TIMEOUT)
    run(venv_command(inspect, venv), cwd=folder, env=env, timeout=120)
    assert (folder / "inspect-data.json").is_file()

    port = free_port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(venv_command(serve, venv, port), cwd=folder, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/-/versions.json", process, timeout=SERVE_TIMEOUT, log=log)
        yield Site(folder=folder, venv=venv, env=env, base=base, dockerfile=dockerfile, installs=installs)
    finally:
        stop(process)


def venv_python(site: Site, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(site.venv / "bin" / "python"), "-c", code], cwd=site.folder, env=site.env,
                          capture_output=True, text=True, timeout=60)


def hooks_of(module_name: str) -> list[str]:
    """The Datasette hooks a plugin module implements (as /-/plugins.json lists them)."""
    import importlib

    module = importlib.import_module(module_name)
    hooks = []
    for name in dir(module):
        opts = getattr(getattr(module, name), "datasette_impl", None)
        if isinstance(opts, dict):
            hooks.append(opts.get("specname") or name)
    return sorted(hooks)


def test_folder_is_what_publish_uploads(site):
    names = sorted(p.name for p in site.folder.iterdir())
    assert "Dockerfile" in names and "telegram.db" in names and "metadata.json" in names
    # Only data, metadata and templates: no source of the project travels in the folder.
    assert not [p for p in site.folder.rglob("*.py")], names
    assert "--plugins-dir" not in site.dockerfile and "--static" not in site.dockerfile


def test_plugins_come_from_the_installed_package(site):
    assert PLUGIN_NAMES <= set(ENTRY_POINTS), ENTRY_POINTS
    plugins = httpx.get(site.base + "/-/plugins.json", timeout=10).json()
    names = {p["name"] for p in plugins}
    assert THIRD_PARTY_PLUGINS <= names, names
    # Datasette 0.65 names an entry-point plugin after its distribution, not after the
    # entry point: the project's modules are each a "telegram-datasette" plugin, told
    # apart by their hooks. Each of them must be there, loaded with the package version.
    ours = [p for p in plugins if p["name"] == PYPROJECT["project"]["name"]]
    assert {p.get("version") for p in ours} == {PYPROJECT["project"]["version"]}, ours
    expected = sorted(hooks_of(module) for module in ENTRY_POINTS.values())
    assert sorted(sorted(p["hooks"]) for p in ours) == expected, (ours, expected)
    # And under their entry-point names, in the site's own Datasette plugin manager.
    result = venv_python(site, "import json; from datasette.plugins import pm; "
                               "print(json.dumps({n: getattr(p, '__name__', '') for n, p in pm.list_name_plugin()}))")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    for name in PLUGIN_NAMES | set(ENTRY_POINTS):
        assert loaded.get(name) == ENTRY_POINTS[name], (name, loaded)


def test_stemmed_russian_search(site):
    response = httpx.get(site.base + "/telegram/posts.json",
                         params={"_search": SEARCH_WORD, "_shape": "array"}, timeout=10)
    assert response.status_code == 200, response.text[:2000]
    rows = response.json()
    found = [row for row in rows if (row["channel"], row["id"]) == (POST_CHANNEL, POST_ID)]
    assert found, rows
    assert FOUND_FORM in found[0]["text"] and SEARCH_WORD not in found[0]["text"]
    assert all(SEARCH_WORD not in (row.get("text") or "") for row in rows)  # found by stem only


def test_post_page(site):
    response = httpx.get(f"{site.base}/telegram/posts/{POST_CHANNEL}~2F{POST_ID}", timeout=10)
    assert response.status_code == 200
    assert POST_TEXT in response.text


@pytest.mark.parametrize("path", SOURCE_PATHS)
def test_no_source_is_served(site, path):
    response = httpx.get(site.base + path, timeout=10)
    python = re.search(r"^\s*(import |from \S+ import |def |class |\"\"\")", response.text, re.M)
    assert response.status_code != 200 or not python, (path, response.status_code, response.text[:500])
    assert response.status_code == 404, (path, response.status_code)


def test_environment_has_the_package_but_no_devtools(site):
    result = venv_python(site, "import devtools")
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (result.stdout, result.stderr)
    result = venv_python(site, "import json, sys, telegram_datasette.plugins.search as m; "
                               "print(json.dumps([m.__file__, sys.path]))")
    assert result.returncode == 0, result.stderr
    module_file, path = json.loads(result.stdout)
    assert Path(module_file).resolve().is_relative_to(site.venv.resolve()), module_file
    # "" is the working directory (the folder); nothing on the path is in the checkout.
    entries = [(site.folder / p).resolve() for p in path]
    assert not any(e == ROOT or e.is_relative_to(ROOT) for e in entries), path
