"""The executor interface every way of running a cell implements (venv today; Docker, Slurm, Kubernetes next).

An executor turns an environment declared in the matrix into something that can run the worker (`prepare`),
says what it would do without doing it (`plan`), and starts one worker process/container/job per cell
(`launch`). The orchestrator owns timing of the wait loop, timeouts, progress and results, so every executor
gets the same contract: the worker reads `spec.json` from the cell folder and writes `worker-result.json` and
`events.jsonl` beside it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.matrix import Environment


class EnvironmentBuildError(RuntimeError):
    """An environment could not be built; `log` holds the installer's output."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


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


class PolledHandle(CellHandle):
    """A cell whose state is asked of a scheduler (Slurm, Kubernetes) at most every `poll_s` seconds.

    `_poll` reads the state and sets `code` once the job has ended; `wait` throttles it, so the orchestrator's
    short waits over several cells never flood the scheduler with queries.
    """

    poll_s: float = 1.0
    code: int | None = None
    _next_poll: float = 0.0

    @abc.abstractmethod
    def _poll(self) -> None:
        """Ask the scheduler once; set `code` when the job has ended."""

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
