"""Compile the parser's fast path, scripts/_fastparse.pyx, into an extension module beside it.

Optional by design: where there is no C compiler or no Python headers, `compile_fast_parser`
says so and scripts/parse.py runs alone (the same records, several times slower).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("_fastparse.pyx")


def extension_path() -> Path:
    return SOURCE.with_name("_fastparse" + sysconfig.get_config_var("EXT_SUFFIX"))


def compile_commands(c_file: Path, target: Path) -> list[list[str]]:
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    return [
        [sys.executable, "-m", "cython", "-3", "--fast-fail", "-o", str(c_file), str(SOURCE)],
        [*compiler, "-O2", "-shared", "-fPIC", "-w", f"-I{include}", str(c_file), "-o", str(target)],
    ]


def compile_fast_parser(work_dir: Path, force: bool = False) -> str:
    """Build the module unless it is newer than its source; returns a line saying what happened."""
    target = extension_path()
    if not force and target.exists() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return f"{target.name} is up to date"
    work_dir.mkdir(parents=True, exist_ok=True)
    for command in compile_commands(work_dir / "_fastparse.c", target):
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:
            return f"fast parser not compiled ({command[0]}: {error.strerror}); parsing runs in pure Python"
        if result.returncode != 0:
            if target.exists() and target.stat().st_mtime < SOURCE.stat().st_mtime:
                target.unlink()  # built from an older source: it must not be loaded
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"fast parser not compiled ({Path(command[0]).name}: {detail[0]}); parsing runs in pure Python"
    return f"compiled {target.relative_to(SOURCE.parent.parent)}"
