"""What the user sees while the matrix runs: environment builds, cell x of y, the stage and epoch of the current
cell with its live epoch times. On a terminal a rich progress bar (refreshed twice a second from the host
process, which does no other work while a cell trains); elsewhere (CI, a pipe) one plain line per event.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from common.results import CellResult, Status
from runner.cells import Cell


def make_console(stderr: bool = False) -> Console:
    """A console that keeps tables readable when output goes to a file or CI log (no terminal width there)."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


class Display:
    def __init__(self, console: Console | None = None):
        self.console = console or make_console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None
        self.cell: Cell | None = None
        self.epoch_times: list[float] = []

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def note(self, message: str, style: str = "") -> None:
        """A message as written: paths, pip's `jax[cuda13]` and errors are never read as rich markup."""
        self.console.print(message, style=style, highlight=False, markup=False)

    def start_cells(self, total: int) -> None:
        if self.live:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                refresh_per_second=2,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("starting", total=total)

    def cell_started(self, index: int, total: int, cell: Cell) -> None:
        self.cell, self.epoch_times = cell, []
        self._show(f"[{index}/{total}] {cell.model} x {cell.backend} ({cell.environment}): starting")

    def cell_event(self, event: dict[str, Any]) -> None:
        cell = self.cell
        assert cell is not None
        head = f"{cell.model} x {cell.backend}"
        if event.get("kind") == "epoch":
            self.epoch_times.append(event["wall_s"])
            times = ", ".join(f"{t:.2f}" for t in self.epoch_times[-4:])
            acc = event.get("accuracy")
            acc_s = f", acc {acc:.3f}" if acc is not None else ""
            self._show(f"{head}: epoch {event['epoch']}/{event.get('of')} ({times} s/epoch{acc_s})")
        elif event.get("kind") == "stage":
            self._show(f"{head}: {event['stage']}")

    def cell_finished(self, result: CellResult, reused: bool = False) -> None:
        cell = self.cell
        status = result.status
        steady = result.steady_epoch_s
        detail = f"steady {steady:.3f} s/epoch" if steady is not None else (result.error or "")
        style = {Status.ok: "green", Status.skipped: "yellow"}.get(status, "red")
        line = f"{cell.model} x {cell.backend} ({cell.environment}): [{style}]{status.value}[/] {escape(detail)}"
        if reused:
            line += " (kept from the earlier attempt)"
        if result.busy:
            share = result.host.load.other_cpu_share or 0.0
            line += f" [yellow](machine busy: {share:.0%} of CPU used by other processes)[/]"
        self.console.print(line, highlight=False)
        if self.progress is not None:
            self.progress.advance(self.task)

    def _show(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)
        else:
            self.console.print(text, highlight=False, markup=False)
