"""Paths a user types, made absolute once, where a command line reads them.

A relative path means "relative to the folder I ran the command in"; every later step (the model probe, workers
started in another folder, containers, Slurm and Kubernetes jobs, run.json) must see the same file, so the command
lines turn each path into an absolute one before anything else reads it, and record what was typed beside it.
Symlinks are kept as named (`Path.absolute`, not `resolve`): a virtualenv's `bin/python` is a symlink whose own
location decides which environment it runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any


def absolute(path: str | os.PathLike[str]) -> Path:
    """`~` expanded and made absolute against the current folder; symlinks kept as named, `..` folded away
    where that names the same file (not after a symlinked folder, where the kernel's `..` goes elsewhere)."""
    exact = Path(os.path.expanduser(os.fspath(path))).absolute()
    folded = os.path.normpath(exact)
    return Path(folded) if os.path.realpath(folded) == os.path.realpath(exact) else exact


def absolute_target(target: str) -> str:
    """A database target: a URL (`postgresql://...`) as typed, a file path made absolute."""
    return target if "://" in target else str(absolute(target))


def interpreter(name: str) -> str:
    """An interpreter: a bare name (`python3`) is looked up on PATH as a shell would, a path made absolute; a bare
    name PATH lacks stays as typed, for the executor's own "no such file" error."""
    given = os.path.expanduser(name)
    if os.sep not in given:
        return shutil.which(given) or given
    return str(absolute(given))


def make_absolute(args: argparse.Namespace, kinds: dict[str, str]) -> dict[str, Any]:
    """Replace each option named in `kinds` (dest -> "path", "target" or "interpreter") by its absolute form, in
    place, keeping its type (Path or str); return what was typed for each option that had a value (lists stay
    lists), for the run's record."""
    convert = {"path": absolute, "target": absolute_target, "interpreter": interpreter}
    typed: dict[str, Any] = {}
    for dest, kind in kinds.items():
        value = getattr(args, dest, None)
        if value is None or value == []:
            continue

        def one(v: Any, kind: str = kind) -> Any:
            done = convert[kind](v)
            return Path(done) if isinstance(v, Path) else str(done)

        if isinstance(value, list):
            typed[dest] = [str(v) for v in value]
            setattr(args, dest, [one(v) for v in value])
        else:
            typed[dest] = str(value)
            setattr(args, dest, one(value))
    return typed
