"""Read run folders into two tidy pandas frames: one row per cell result, one row per epoch of every cell.

Results are read through common.results (typed; schema 1 files migrated), so the contract is checked on the way
in; a corrupt or foreign file is listed as a problem and left out, never fatal. Each result is joined with its
spec.json (what the worker was told: batch size, FLOP per sample, validation split), so the report needs no
matrix.yaml of the day it was run. Each row carries its work (common/work.py): comparisons group by it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.results import STOCK_VARIANT, CellResult, ResultError, Status, iter_results, read_json
from common.work import describe, train_us_per_sample, work_key
from reports.hardware import cpu_peak_method
from reports.hardware import describe as describe_host

CELL_KEYS = ["model", "backend", "environment", "variant", "profile", "data_source"]


@dataclass
class Loaded:
    run_ids: list[str]
    runs: dict[str, dict[str, Any]]  # run.json of each run
    cells: pd.DataFrame
    epochs: pd.DataFrame
    raw: dict[str, Path] = field(default_factory=dict)  # result key "<run-id>/<cell-id>" -> result.json
    problems: list[str] = field(default_factory=list)


def run_id_of(run_dir: Path) -> str:
    """`results/latest` names the run it points at."""
    return Path(run_dir).resolve().name


def _framework_version(result: CellResult) -> str:
    """The cell's framework and its version. The result names its framework (matrix.yaml `backends.<name>.framework`,
    else the Keras backend), so a new framework needs no entry here."""
    name = (result.backend.framework if result.backend else None) or result.versions.get("keras_backend")
    return f"{name} {result.versions[name]}" if name in result.versions else ""


def _inference_columns(result: CellResult) -> dict[str, Any]:
    """The batch-1 latency percentiles of predict_on_batch (and predict), throughput per batch size."""
    out: dict[str, Any] = {"latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None,
                           "latency_first_ms": None, "predict_p50_ms": None, "throughput": {},
                           "inference_error": None, "latency_samples_ms": []}
    inference = result.inference
    if inference is None:
        return out
    primary, predict = inference.latency_of("predict_on_batch"), inference.latency_of("predict")
    if primary is not None:
        out.update(latency_p50_ms=primary.p50_ms, latency_p90_ms=primary.p90_ms, latency_p99_ms=primary.p99_ms,
                   latency_first_ms=primary.first_call_ms, latency_samples_ms=list(primary.samples_ms))
    if predict is not None:
        out["predict_p50_ms"] = predict.p50_ms
    out["throughput"] = {t.batch_size: t.samples_per_s for t in inference.throughput}
    out["inference_error"] = inference.error
    return out


def _memory_columns(result: CellResult) -> dict[str, Any]:
    memory = result.memory
    return {
        "rss_before_build_mb": memory.rss_before_build_mb if memory else None,
        "peak_rss_train_mb": memory.peak_rss_after_train_mb if memory else None,
        "peak_rss_mb": memory.peak_rss_mb if memory else None,
        "gpu_peak_mb": memory.gpu_peak_mb if memory else None,
        "gpu_memory_note": (memory.gpu_note or memory.gpu_method) if memory else None,
    }


def _work_columns(result: CellResult, spec: dict[str, Any]) -> dict[str, Any]:
    """The work behind the figures: what an epoch trained and validated (common/work.py)."""
    work = result.work.model_dump() if result.work else None
    batch = (spec.get("model") or {}).get("batch_size") or (work or {}).get("batch_size")
    n_fit = result.epochs[-1].samples if result.epochs else (work or {}).get("train_samples")
    n_val = (work or {}).get("val_samples")
    flop = (spec.get("model") or {}).get("flop_per_sample")
    train_flop = (spec.get("model") or {}).get("train_flop_per_sample") or (3 * flop if flop else None)
    steady_val = [e.val_s for e in result.epochs[1:] if e.val_s is not None]
    val_s = statistics.median(steady_val) if steady_val else None
    return {
        "work": work,
        "work_key": work_key(work),
        "work_text": describe(work),
        "batch_size": batch,
        "train_samples": n_fit,
        "val_samples": n_val,
        "steps_per_epoch": math.ceil(n_fit / batch) if batch and n_fit else None,
        "flop_per_epoch": train_flop * n_fit + flop * n_val if flop and n_fit is not None and n_val is not None
        else None,
        "val_s": val_s,
        "train_us_per_sample": train_us_per_sample(result.steady_epoch_s, val_s, work),
    }


def cell_row(run_id: str, result: CellResult, spec: dict[str, Any]) -> dict[str, Any]:
    """One result as a flat row: identity, how it ran, the headline figures and the work per epoch."""
    cell, data, host = result.cell, result.data, result.host.model_dump()
    model_spec = spec.get("model") or {}
    precision = result.settings.precision if result.settings else None
    arithmetic = precision.effective if precision else None
    kind, device, peak = describe_host(host, arithmetic)
    backend_title = (result.backend.title if result.backend else None) or (spec.get("backend") or {}).get(
        "title") or cell.backend
    load = result.host.load
    return {
        "run_id": run_id,
        "cell_id": result.cell_id,
        "result_key": f"{run_id}/{result.cell_id}",
        "spec_hash": result.spec_hash,
        "model": cell.model,
        "model_title": model_spec.get("title") or cell.model,
        "backend": cell.backend,
        "backend_title": backend_title,
        "family": (result.backend.family if result.backend else None) or cell.backend,
        "driver": result.backend.driver if result.backend else "keras",
        "environment": cell.environment,
        "variant": cell.variant,
        # whether this was its environment's default variant when it ran (results before variants: it was)
        "variant_default": bool((spec.get("variant") or {}).get("is_default", cell.variant == STOCK_VARIANT)),
        "changes_numerics": bool(result.settings and result.settings.variant_changes_numerics),
        # a native twin fed per step from the host, as Keras feeds arrays (variant native-host-feed)
        "twin_feed": (spec.get("variant") or {}).get("twin_feed") or "device",
        "jit_compile": result.settings.jit_compile_resolved if result.settings else None,
        "profile": cell.profile,
        "repeat": cell.repeat,
        "seed": cell.seed,
        "status": result.status.value,
        "error": result.error,
        "data_source": (data.source if data else None) or (spec.get("data") or {}).get("source") or "unknown",
        "executor": result.executor.name,
        "device_kind": kind,
        "device": device,
        "peak_tflops": peak,
        "precision": arithmetic or "float32",  # what the peak is of: float32, tf32, mixed_bfloat16, mixed_float16
        "keras": result.versions.get("keras", ""),
        "framework": _framework_version(result),
        "params": result.params,
        "first_epoch_s": result.first_epoch_s,
        "compile_s": result.compile_s,
        "steady_epoch_s": result.steady_epoch_s,
        "article_epoch_s": result.article_epoch_s,
        "build_fn_s": result.build_fn_s,
        "cpu_peak_method": cpu_peak_method(host) if kind == "cpu" else None,
        "test_accuracy": result.test.accuracy if result.test else None,
        **_work_columns(result, spec),
        **_inference_columns(result),
        **_memory_columns(result),
        "busy": result.busy,
        "version_warnings": "; ".join(result.executor.version_warnings or []),
        "other_cpu_share": load.other_cpu_share if load else None,
        "git_commit": result.git_commit,
        "git_dirty": result.git_dirty,
        "started_at": result.started_at,
    }


def epoch_rows(row: dict[str, Any], result: CellResult) -> list[dict[str, Any]]:
    ident = {k: row[k] for k in ("run_id", "cell_id", "repeat", "seed", *CELL_KEYS)}
    out, total = [], 0.0
    for e in result.epochs:
        total += e.wall_s
        out.append({
            **ident,
            "epoch": e.epoch,
            "steady": e.epoch > 1,
            "wall_s": e.wall_s,
            "cum_wall_s": total,
            "cpu_s": e.cpu_s,
            "val_s": e.val_s,
            "samples": e.samples,
            "loss": e.loss,
            "accuracy": e.accuracy,
            "val_loss": e.val_loss,
            "val_accuracy": e.val_accuracy,
        })
    return out


EPOCH_COLUMNS = ["run_id", "cell_id", "repeat", "seed", *CELL_KEYS, "epoch", "steady", "wall_s", "cum_wall_s",
                 "cpu_s", "val_s", "samples", "loss", "accuracy", "val_loss", "val_accuracy"]


def is_run_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "run.json").is_file()


def run_folders(results_dir: Path) -> list[Path]:
    """The run folders of a results folder, oldest first (run ids start with their time); `latest` is a link to one
    of them and reports/ holds no run."""
    return sorted(p for p in Path(results_dir).iterdir() if not p.is_symlink() and is_run_folder(p))


def load_runs(run_dirs: list[Path]) -> Loaded:
    run_ids, runs, rows, epochs, raw, problems = [], {}, [], [], {}, []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            problems.append(f"{run_dir}: not a folder")
            continue
        run_id = run_id_of(run_dir)
        run_ids.append(run_id)
        runs[run_id] = read_json(run_dir / "run.json")
        for path, outcome in iter_results(run_dir):
            if isinstance(outcome, ResultError):
                problems.append(str(outcome))
                continue
            row = cell_row(run_id, outcome, read_json(path.parent / "spec.json"))
            rows.append(row)
            raw[row["result_key"]] = path
            if outcome.status is Status.ok:
                epochs.extend(epoch_rows(row, outcome))
    cells = pd.DataFrame(rows)
    return Loaded(run_ids, runs, cells, pd.DataFrame(epochs, columns=EPOCH_COLUMNS), raw, problems)


def load_raw(path: Path) -> dict[str, Any]:
    return read_json(path)
