"""What a finished run calls to add itself to the history (runner/cli.py `close_run`, skipped with --no-history).

A history that cannot be written (a locked or unreachable database, a full disk, a bug here) is a warning with the
command that adds the run later: the run's results stand, and the result files remain the source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Printer(Protocol):
    def print(self, *objects: object, highlight: bool = ..., markup: bool = ...) -> None: ...


def add_after_run(run_dir: Path, target: str | None, results_root: Path, console: Printer) -> bool:
    """Add the run to `target` (default: $KBM_HISTORY, else RESULTS/history.sqlite); True when it landed."""
    where = target or "the history"
    try:
        from history.source import read_runs
        from history.store import Store, default_target

        where = target or default_target(results_root)
        batch = read_runs([run_dir])
        if not batch.runs:
            return False  # nothing readable: nothing to remember
        with Store(where) as store:
            added = store.add(batch)
            where = store.where
    except Exception as exc:  # noqa: BLE001 - the history must never turn a finished run into a failure
        console.print(f"warning: the run was not added to the history ({where}): {exc!r}; add it later with "
                      f"`./kbm history add {run_dir}`", highlight=False, markup=False)
        return False
    console.print(f"history: {where} ({added.new} new result(s))", highlight=False, markup=False)
    return True
