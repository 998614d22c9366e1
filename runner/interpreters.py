"""Find a Python interpreter for an environment: a version range (PEP 440, e.g. ">=3.10,<3.14") or a plain X.Y.

The host's own interpreter comes first when it fits (what a user with Ubuntu 24.04's Python 3.12 has), then
`python3` on PATH, then `pythonX.Y` on PATH and pyenv's versions, newest first.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

PLAIN = re.compile(r"^\d+\.\d+(\.\d+)?$")


class InterpreterNotFound(RuntimeError):
    """No interpreter of the version an environment asks for; the message says what to do."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # X.Y.Z

    @property
    def xy(self) -> str:
        return ".".join(self.version.split(".")[:2])


def specifier(wanted: str) -> SpecifierSet:
    """'3.6' means any 3.6.x, '3.6.9' exactly that one; anything else is a PEP 440 specifier set."""
    if PLAIN.match(wanted):
        return SpecifierSet(f"=={wanted}.*" if wanted.count(".") == 1 else f"=={wanted}")
    try:
        return SpecifierSet(wanted)
    except InvalidSpecifier as exc:
        raise ValueError(f"{wanted!r} is neither X.Y nor a version range like '>=3.10,<3.14' ({exc})") from None


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


def _key(version: str) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in version.split(".")]


def _pyenv_candidates() -> list[str]:
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT") or (str(Path.home() / ".pyenv"))
    versions: list[str] = []
    if pyenv:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30)
        versions = out.stdout.split() if out.returncode == 0 else []
    elif Path(root, "versions").is_dir():
        versions = [p.name for p in Path(root, "versions").iterdir()]
    versions = sorted((v for v in versions if re.match(r"^\d+\.\d+\.\d+$", v)), key=_key, reverse=True)
    return [str(Path(root, "versions", v, "bin", "python")) for v in versions]


def pyenv_interpreter(wanted: str) -> Interpreter | None:
    """pyenv's newest interpreter satisfying `wanted`, or None: a Python whose whole prefix can be copied (the
    local Python base image of runner/pybase.py), which a distribution's python3 is not."""
    spec = specifier(wanted)
    for exe in _pyenv_candidates():
        version = _version_of(exe)
        if version is not None and spec.contains(version, prereleases=True):
            return Interpreter(exe, version)
    return None


def _candidates(wanted: str) -> list[str]:
    """Where to look, in order of preference: the host's interpreter first."""
    names = [f"python{'.'.join(wanted.split('.')[:2])}"] if PLAIN.match(wanted) else []
    names += ["python3"] + [f"python3.{minor}" for minor in range(20, 5, -1)]
    found = [sys.executable] + [p for p in (shutil.which(n) for n in names) if p] + _pyenv_candidates()
    return list(dict.fromkeys(found))


@functools.cache
def resolve(wanted: str) -> Interpreter:
    """The preferred interpreter whose version satisfies `wanted` (cached: one lookup per process and range)."""
    spec = specifier(wanted)
    for exe in _candidates(wanted):
        version = _version_of(exe)
        if version is not None and spec.contains(version, prereleases=True):
            return Interpreter(exe, version)
    example, what = (wanted, f"Python {wanted}") if PLAIN.match(wanted) else ("3.12", f"Python in {wanted!r}")
    raise InterpreterNotFound(
        f"no {what} interpreter found (looked at this Python, python3 and pythonX.Y on PATH, and pyenv). "
        f"Install one (e.g. `pyenv install {example}`), or run this environment with the Docker executor."
    )


def built_version(wanted: str) -> str:
    """The Python an environment is built with, for its cache key: a plain version as written (existing
    environments keep their hash), a range as the X.Y it resolves to on this host (the range when none fits)."""
    if PLAIN.match(wanted):
        return wanted
    try:
        return resolve(wanted).xy
    except InterpreterNotFound:
        return wanted


def find_python(wanted: str) -> tuple[str, str]:
    """(path, full version) of an interpreter for `wanted` ('3.11', '3.11.7' or a range)."""
    found = resolve(wanted)
    return found.path, found.version
