"""The result contract: one JSON file per cell, written atomically, validated on load.

Layout of a run (one run = one new folder, nothing overwritten):
    RESULTS/<run-id>/run.json                 what was asked, the host, the git state
    RESULTS/<run-id>/<cell-id>/spec.json      what the worker was told
    RESULTS/<run-id>/<cell-id>/worker.log     everything the worker and its framework printed
    RESULTS/<run-id>/<cell-id>/events.jsonl   stage and epoch events (progress, and the stage a crash reached)
    RESULTS/<run-id>/<cell-id>/result.json    the result (README, "Result files", documents every field)
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections import deque
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
WORKER_RESULT_FILE = "worker-result.json"
LOG_TAIL_LINES = 20


class Status(str, Enum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"
    timeout = "timeout"


class ResultError(ValueError):
    """A result file that is missing, unreadable or breaks the contract; the message names file and field."""


class CellKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: str
    backend: str
    model: str
    profile: str
    repeat: int = Field(ge=0)
    seed: int
    variant: str = "default"  # results written before variants existed ran what `default` names


class Epoch(BaseModel):
    model_config = ConfigDict(extra="allow")
    epoch: int = Field(ge=1)
    wall_s: float = Field(ge=0)
    cpu_s: float = Field(ge=0)
    samples: int = Field(ge=0)
    loss: float
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_s: float | None = None


class DataInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str
    sha256: str
    dataset: str
    train_samples: int
    test_samples: int


class CellResult(BaseModel):
    """What a report may rely on. Unknown extra fields are kept (newer workers may add facts)."""

    model_config = ConfigDict(extra="allow")
    schema_version: Literal[1]
    status: Status
    error: str | None
    stage: str
    cell: CellKey
    cell_id: str
    spec_hash: str
    executor: dict[str, Any]
    params: int | None
    epochs: list[Epoch]
    first_epoch_s: float | None = None
    compile_s: float | None = None
    steady_epoch_s: float | None = None
    # wall time around the whole fit call / epochs (2017's way: function build and compilation included)
    article_epoch_s: float | None = Field(None, gt=0)
    # fit's work before on_train_begin (Keras 2.0.8/1.2.2 build the training function there; ~0 on Keras 3)
    build_fn_s: float | None = Field(None, ge=0)
    data: DataInfo | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    host: dict[str, Any]
    git_commit: str | None
    started_at: str
    finished_at: str

    @model_validator(mode="after")
    def _complete_when_ok(self) -> CellResult:
        if self.status is Status.ok:
            missing = [f for f in ("params", "data", "first_epoch_s") if getattr(self, f) is None]
            if not self.epochs:
                missing.append("epochs")
            if missing:
                raise ValueError(f"status ok but missing {', '.join(missing)}")
            # the whole fit holds every epoch: an article_epoch_s below the epochs' mean was not timed around fit
            mean_epoch = sum(e.wall_s for e in self.epochs) / len(self.epochs)
            if self.article_epoch_s is not None and self.article_epoch_s < mean_epoch * 0.999:
                raise ValueError(f"article_epoch_s {self.article_epoch_s:.4g} is below the mean epoch "
                                 f"{mean_epoch:.4g}: it must be timed around the whole fit call")
        elif not self.error:
            raise ValueError(f"status {self.status.value} needs an `error` saying why")
        return self


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, fsync, rename: a reader sees all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def validate(payload: Any, source: str) -> CellResult:
    if not isinstance(payload, dict):
        raise ResultError(f"{source}: not a JSON object")
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultError(f"{source}: schema_version {version!r} is not {SCHEMA_VERSION}; this runner cannot read it")
    try:
        return CellResult.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(result)'}: {e['msg']}" for e in exc.errors())
        raise ResultError(f"{source}: {problems}") from None


def load_result(path: Path) -> CellResult:
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: unreadable ({exc})") from None
    return validate(payload, str(path))


def iter_results(run_dir: Path) -> Iterator[tuple[Path, CellResult | ResultError]]:
    """Every result in a run, valid or not: a corrupt file is reported, never fatal."""
    for path in sorted(Path(run_dir).glob(f"*/{RESULT_FILE}")):
        try:
            yield path, load_result(path)
        except ResultError as exc:
            yield path, exc


def new_run_dir(results_root: Path) -> Path:
    """A fresh folder per run; `latest` points at it."""
    results_root.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    run_dir = results_root / run_id
    run_dir.mkdir()
    latest = results_root / "latest"
    try:
        if latest.is_symlink() or not latest.exists():
            tmp = results_root / f".latest.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(run_id)
            tmp.replace(latest)
    except OSError:
        pass
    return run_dir


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


def finalize(
    cell_dir: Path,
    spec: dict[str, Any],
    *,
    returncode: int | None,
    timed_out: bool,
    executor: dict[str, Any],
    host_load: dict[str, Any],
    provenance: dict[str, Any],
    launched_at: float,
) -> dict[str, Any]:
    """Turn what the worker left into the cell's result.json; a worker that died gets a result all the same."""
    worker_path = cell_dir / WORKER_RESULT_FILE
    events = read_events(cell_dir / "events.jsonl")
    stages = [e["stage"] for e in events if e.get("kind") == "stage"]
    result: dict[str, Any] | None = None
    if worker_path.exists():
        try:
            result = json.loads(worker_path.read_text())
        except (OSError, json.JSONDecodeError):
            result = None
    if result is None or timed_out:
        stage = (result or {}).get("stage") or (stages[-1] if stages else "start")
        if timed_out:
            error = f"timed out after {spec['timeout_s']:.0f} s in stage {stage}"
        else:
            error = f"worker {describe_exit(returncode)} in stage {stage} without writing a result"
        result = {
            **(result or {}),
            "schema_version": SCHEMA_VERSION,
            "status": Status.timeout.value if timed_out else Status.failed.value,
            "error": error,
            "stage": stage,
            "cell": spec["cell"],
            "cell_id": spec["cell_id"],
            "spec_hash": spec["spec_hash"],
            "params": (result or {}).get("params"),
            "epochs": (result or {}).get("epochs", []),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(launched_at)),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    if result["status"] != Status.ok.value:
        result["log_tail"] = log_tail(cell_dir / "worker.log")
    result["returncode"] = returncode
    result["executor"] = executor
    result.setdefault("host", {})["load"] = host_load
    result["cell_wall_s"] = round(time.time() - launched_at, 3)
    result.update(provenance)
    write_json_atomic(cell_dir / RESULT_FILE, result)
    worker_path.unlink(missing_ok=True)
    return result
