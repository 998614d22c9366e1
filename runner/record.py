"""Recording a cell on the host: what the worker left (or did not) becomes the cell's validated result.json.

The contract itself lives in common/results.py. Here: read the worker's JSON, complete it with what only the host
knows (the executor's facts, the machine's load, git state, the wall time of the whole cell), validate it, and
write it atomically. A worker result that breaks the contract is never written as if it were fine: the cell
becomes `failed` with the validation error, and the worker's file is kept beside it as `worker-result.invalid.json`.
"""

from __future__ import annotations

import json
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.results import (
    RESULT_FILE,
    WORKER_RESULT_FILE,
    CellResult,
    Status,
    new_result,
    problems_of,
    write_result,
)

LOG_TAIL_LINES = 20
INVALID_WORKER_RESULT = "worker-result.invalid.json"


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    return events


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    if not path.exists():
        return []
    with open(path, errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _worker_payload(cell_dir: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads((cell_dir / WORKER_RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _last_stage(cell_dir: Path, payload: dict[str, Any] | None) -> str:
    stages = [e["stage"] for e in read_events(cell_dir / "events.jsonl") if e.get("kind") == "stage"]
    return (payload or {}).get("stage") or (stages[-1] if stages else "start")


def _unfinished(spec: dict[str, Any], cell_dir: Path, payload: dict[str, Any] | None, returncode: int | None,
                timed_out: bool, executor: dict[str, Any], provenance: dict[str, Any],
                launched_at: float) -> CellResult:
    """A worker that timed out or died without a result: a result all the same, with what it had measured."""
    stage = _last_stage(cell_dir, payload)
    if timed_out:
        status, error = Status.timeout, f"timed out after {spec['timeout_s']:.0f} s in stage {stage}"
    else:
        status, error = Status.failed, f"worker {describe_exit(returncode)} in stage {stage} without writing a result"
    result = new_result(spec, status, stage, error, executor, provenance, started_at=launched_at)
    if payload:  # the epochs and parameter count a timed-out worker had written are kept
        kept = {k: payload[k] for k in ("params", "epochs") if payload.get(k)}
        try:
            result = CellResult.model_validate({**result.dump(), **kept})
        except ValidationError:
            pass
    return result


def _host_facts(completed: dict[str, Any], cell_dir: Path, returncode: int | None, host_load: dict[str, Any],
                launched_at: float, warnings: list[str], reason: str | None) -> dict[str, Any]:
    """What only the host knows, added to a result's JSON: the machine's load, the exit status, the cell's wall
    time, the executor's warnings; for a cell that did not end ok, the log's tail and the scheduler's reason."""
    completed = dict(completed)
    completed["host"] = {**(completed.get("host") or {}), "load": host_load}
    completed["returncode"] = returncode
    completed["cell_wall_s"] = round(time.time() - launched_at, 3)
    completed["warnings"] = [*(completed.get("warnings") or []), *warnings]
    if completed["status"] != Status.ok.value:
        completed["log_tail"] = log_tail(cell_dir / "worker.log")
        if reason:
            completed["error"] = f"{completed['error']}; {reason}"
    return completed


def finalize(cell_dir: Path, spec: dict[str, Any], *, returncode: int | None, timed_out: bool,
             executor: dict[str, Any], host_load: dict[str, Any], provenance: dict[str, Any],
             launched_at: float, warnings: list[str] | None = None, reason: str | None = None) -> CellResult:
    """Turn what the worker left into the cell's result.json, validated; a worker that died gets a result all the
    same. `warnings` (an interpreter's versions against the pins) are added; `reason` (what a scheduler said of an
    unhappy end) is appended to the error of a cell that did not end ok."""
    worker_path = cell_dir / WORKER_RESULT_FILE
    payload = _worker_payload(cell_dir)
    facts = (cell_dir, returncode, host_load, launched_at, warnings or [], reason)
    if payload is None or timed_out:
        completed = _unfinished(spec, cell_dir, payload, returncode, timed_out, executor, provenance,
                                launched_at).dump()
    else:
        completed = dict(payload, executor=executor, **provenance)
    try:
        result = CellResult.model_validate(_host_facts(completed, *facts))
    except ValidationError as exc:
        worker_path.replace(cell_dir / INVALID_WORKER_RESULT)
        error = (f"the worker's result breaks the result contract ({problems_of(exc)}); its file is kept as "
                 f"{INVALID_WORKER_RESULT}")
        bad = new_result(spec, Status.failed, completed.get("stage") or "start", error, executor, provenance,
                         started_at=launched_at)
        result = CellResult.model_validate(_host_facts(bad.dump(), *facts))
    write_result(cell_dir / RESULT_FILE, result)
    worker_path.unlink(missing_ok=True)
    return result
