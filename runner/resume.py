"""`--resume RUN`: a run's own options from its run.json, merged with the command line's, and the check that a
resume asks for no cell the run did not plan.

The first group of options decides the experiment: a value that differs from the run's is refused; the rest
(where and how fast it runs) may differ. `--timeout` is the same experiment given more time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from runner.cells import SelectionError
from runner.options import build_parser
from runner.orchestrate import ResumeError

EXPERIMENT = ("profile", "repeats", "seed", "data")
CARRIED = ("matrix", "executor", "gpus", "parallel", "timeout", "python", "data_file")
LISTS = {"only": "--only", "model": "--model", "model_file": "--model-file", "env": "--env", "variant": "--variant"}
FLAGS = {"profile": "--profile", "repeats": "--repeats", "seed": "--seed", "data": "--data"}
PATHS = ("matrix", "data_file")


def recorded_selection(run: Path) -> tuple[dict[str, Any], list[str]]:
    """(options, planned cell ids) from a run's run.json; older runs without `selection` re-parse their argv."""
    try:
        manifest = json.loads((run / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"--resume {run}: not a run folder ({exc}); pass results/<run-id>") from None
    recorded = manifest.get("selection")
    if not recorded:
        argv = [a for a in manifest.get("argv", [])[3:] if a]
        old, _ = build_parser().parse_known_args(argv)
        recorded = {key: getattr(old, key, None) for key in (*LISTS, *EXPERIMENT, *CARRIED)}
    return recorded, list(manifest.get("cells") or [])


def merge_resume(args: argparse.Namespace, recorded: dict[str, Any]) -> None:
    """Fill what the command line left out from the run's options; refuse an option that contradicts them."""
    for key in EXPERIMENT:
        given, before = getattr(args, key), recorded.get(key)
        if given is not None and before is not None and given != before:
            raise SelectionError(
                f"{FLAGS[key]} {given}: the run being resumed used {FLAGS[key]} {before}; a resume continues the "
                "same experiment (start a new run for a different one, or leave the option out)"
            )
        if given is None:
            setattr(args, key, before)
    for key in LISTS:
        if not getattr(args, key):
            values = list(recorded.get(key) or [])
            setattr(args, key, [Path(v) for v in values] if key == "model_file" else values)
    for key in CARRIED:
        if getattr(args, key) is None and recorded.get(key) is not None:
            setattr(args, key, Path(recorded[key]) if key in PATHS else recorded[key])
    args.no_inference = args.no_inference or recorded.get("inference") is False


def _recorded_backends(matrix: Any, recorded: dict[str, Any]) -> set[str] | None:
    """The backends the run's own --only values take in today's matrix (None: the run named none)."""
    from runner.cells import _only

    values = recorded.get("only") or []
    return {b for backends, _ in _only(matrix, values) for b in backends} if values else None


def check_resumed_cells(cells: list[Any], planned: list[str], recorded: dict[str, Any], matrix: Any = None
                        ) -> list[Any]:
    """The cells a resume runs: those the run planned. A cell it did not plan is refused, naming the option that
    asks for it, unless its backend is one the run never had and its own options take in today's matrix (a
    backend added since, such as a native twin of its family): that cell was never part of the run, left out."""
    had = {cell_id.split(".")[1] for cell_id in planned}
    taken = _recorded_backends(matrix, recorded) if matrix is not None else set()
    out = []
    for cell in cells:
        if cell.id in planned:
            out.append(cell)
            continue
        if cell.backend not in had and (taken is None or cell.backend in taken):
            continue
        for key, value in (("model", cell.model), ("only", cell.backend), ("env", cell.environment),
                           ("variant", cell.variant)):
            if recorded.get(key) and value not in recorded[key] and "all" not in recorded[key]:
                raise SelectionError(
                    f"{LISTS[key]} {value}: the run being resumed has no such cells (it ran "
                    f"{' '.join(f'{LISTS[key]} {v}' for v in recorded[key])})"
                )
        raise SelectionError(f"the run being resumed planned no cell {cell.id}; leave the selection options out")
    return out
