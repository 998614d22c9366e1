"""Find a Python interpreter of a given X.Y version for an environment: PATH first, then pyenv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class InterpreterNotFound(RuntimeError):
    """No interpreter of the version an environment asks for; the message says what to do."""


def _version_of(exe: str) -> str | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _matches(found: str | None, wanted: str) -> bool:
    return found is not None and (found == wanted or found.startswith(wanted + "."))


def _pyenv_candidates(wanted: str) -> list[str]:
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT") or (str(Path.home() / ".pyenv"))
    versions: list[str] = []
    if pyenv:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30)
        versions = out.stdout.split() if out.returncode == 0 else []
    elif Path(root, "versions").is_dir():
        versions = [p.name for p in Path(root, "versions").iterdir()]
    hits = [v for v in versions if _matches(v, wanted)]
    hits.sort(key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")], reverse=True)
    return [str(Path(root, "versions", v, "bin", "python")) for v in hits]


def find_python(wanted: str) -> tuple[str, str]:
    """(path, full version) of an interpreter for `wanted` ('3.11' or '3.11.7')."""
    major_minor = ".".join(wanted.split(".")[:2])
    names = [f"python{major_minor}", "python3", "python"]
    candidates = [p for p in (shutil.which(n) for n in names) if p] + _pyenv_candidates(wanted)
    for exe in candidates:
        version = _version_of(exe)
        if _matches(version, wanted):
            return exe, version  # type: ignore[return-value]
    raise InterpreterNotFound(
        f"no Python {wanted} interpreter found (looked for python{major_minor} on PATH and in pyenv). Install "
        f"Python {wanted} (e.g. `pyenv install {wanted}`), or run this environment with the Docker executor."
    )
