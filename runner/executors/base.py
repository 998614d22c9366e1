"""The executor interface every way of running a cell implements (venv, Docker, Slurm, Kubernetes), and the
handles they share: a scheduler's polled handle, a launch that failed, the `128 + signal` exit-code decoder.

An executor turns an environment declared in the matrix into something that can run the worker (`prepare`),
says what it would do without doing it (`plan`), and starts one worker process/container/job per cell
(`launch`). The orchestrator owns timing of the wait loop, timeouts, progress and results, so every executor
gets the same contract: the worker reads `spec.json` from the cell folder and writes `worker-result.json` and
`events.jsonl` beside it. Never imports the orchestration loop (runner.orchestrate), which imports executors.
"""

from __future__ import annotations

import abc
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.cells import Cell
from runner.matrix import Environment, Matrix


class EnvironmentBuildError(RuntimeError):
    """An environment could not be built; `log` holds the installer's output."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


class EnvironmentUnavailable(EnvironmentBuildError):
    """What the machine lacks and the user must provide (an interpreter, a host tool): its cells are skipped,
    with the fix, where a build that failed makes them fail."""


@dataclass
class PreparedEnv:
    name: str
    spec: Environment
    location: str  # venv folder, image tag, ...
    reused: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellJob:
    """What launch needs: the cell folder (spec in, result and events out), its log, extra variables, and the
    in-environment entry point (the worker; the overhead benchmark runs its bare baseline the same way)."""

    cell_dir: Path
    spec_path: Path
    log_path: Path
    env: dict[str, str]
    module: str = "models.worker"
    extra_args: tuple[str, ...] = ()


class CellHandle(abc.ABC):
    """A running cell. The orchestrator polls `wait`, and calls `kill` on timeout or interrupt."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> int | None:
        """Exit status (negative: killed by that signal), or None if still running after `timeout` seconds."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the cell and everything it started."""

    def info(self) -> dict[str, Any]:
        """Executor-specific facts for the result (pid, container id, job id, node)."""
        return {}

    def orphan_cleanup(self) -> dict[str, Any] | None:
        """How runner/watchdog.py stops this cell if the runner dies without doing it (None: it dies with the
        runner by itself, like a local process)."""
        return None


def signal_exit_status(code: int) -> int:
    """A container or shell reports a signal death as 128 + signal: negative, as Popen reports it."""
    if 128 < code < 128 + 32 and (code - 128) in {s.value for s in signal.Signals}:
        return -(code - 128)
    return code


class LaunchFailed(CellHandle):
    """A launch that was refused (the engine, sbatch, the API server): the cell fails alone, with why; the matrix
    goes on. `log` is appended to the cell's worker.log, `info` goes into the result's executor facts."""

    def __init__(self, code: int, info: dict[str, Any], log_path: Path | None = None, log: str = ""):
        if log_path is not None and log:
            with open(log_path, "a") as handle:
                handle.write(log if log.endswith("\n") else log + "\n")
        self.code, self._info = code, dict(info)

    def wait(self, timeout: float) -> int | None:
        return self.code

    def kill(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return dict(self._info)


class PolledHandle(CellHandle):
    """A cell whose state is asked of a scheduler (Slurm, Kubernetes) at most every `poll_s` seconds.

    `_poll` reads the state and sets `code` once the job has ended; `wait` throttles it, so the orchestrator's
    short waits over several cells never flood the scheduler with queries.
    """

    poll_s: float = 1.0
    code: int | None = None
    state: str = ""
    timed_out: bool = False
    reason: str | None = None  # what the scheduler said about an unhappy end (out of memory, deadline, ...)
    _next_poll: float = 0.0

    @abc.abstractmethod
    def _poll(self) -> None:
        """Ask the scheduler once; set `code` when the job has ended."""

    @abc.abstractmethod
    def _facts(self) -> dict[str, Any]:
        """The scheduler's facts about the job (id, node, state, times) for the result."""

    def info(self) -> dict[str, Any]:
        out = self._facts()
        if self.reason:
            out["reason"] = self.reason
        if self.timed_out:
            out["timed_out"] = True
        return out

    def wait(self, timeout: float) -> int | None:
        end = time.monotonic() + timeout
        while True:
            if self.code is None and time.monotonic() >= self._next_poll:
                self._poll()
                self._next_poll = time.monotonic() + self.poll_s
            left = end - time.monotonic()
            if self.code is not None or left <= 0:
                return self.code
            time.sleep(min(left, max(self._next_poll - time.monotonic(), 0.05)))


class Executor(abc.ABC):
    name: str

    @abc.abstractmethod
    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        """What prepare would do, for --dry-run: where, whether cached, what it installs."""

    @abc.abstractmethod
    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        """Build or reuse the environment; raise EnvironmentBuildError with its log on failure."""

    @abc.abstractmethod
    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        """Start the worker for one cell and return at once."""

    def write_manifests(
        self, matrix: Matrix, cells: list[Cell], data: str, timeout: float | None, results_root: Path
    ) -> Path | None:
        """--dry-run: write the jobs a scheduler would get as files and return their folder; None where an
        executor submits nothing a person could read (the default)."""
        return None
