"""Read run folders into two tidy pandas frames: one row per cell result, one row per epoch of every cell.

Results are read through runner.results, so the contract is checked on the way in; a corrupt or foreign file is
listed as a problem and left out, never fatal. Each result is joined with its spec.json (what the worker was told:
batch size, FLOP per sample, validation split), so the report needs no matrix.yaml of the day it was run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.hardware import cpu_peak_method, describe
from runner.results import ResultError, Status, iter_results

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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _framework_version(versions: dict[str, str]) -> str:
    for name in ("tensorflow", "jax", "torch", "cntk", "theano", "mxnet"):
        if name in versions:
            return f"{name} {versions[name]}"
    return ""


def article_epoch_s(result: dict[str, Any]) -> float | None:
    """Wall time around the whole fit call / epochs (2017's way). Results written before the field existed
    carry the same measurement as timeline.fit_s."""
    if result.get("article_epoch_s") is not None:
        return float(result["article_epoch_s"])
    fit_s, epochs = (result.get("timeline") or {}).get("fit_s"), result.get("epochs") or []
    return fit_s / len(epochs) if fit_s and epochs else None


def cell_row(run_id: str, result: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """One result as a flat row: identity, how it ran, the headline figures and the work per epoch."""
    cell = result["cell"]
    data = result.get("data") or {}
    host = result.get("host") or {}
    model_spec = spec.get("model") or {}
    versions = result.get("versions") or {}
    epochs = result.get("epochs") or []
    kind, device, peak = describe(host) if host else ("", "", None)
    n_fit = epochs[-1]["samples"] if epochs else None
    split = model_spec.get("validation_split")
    if n_fit is None or not data:
        n_val = None
    elif split:
        n_val = int(data["train_samples"]) - int(n_fit)
    else:
        n_val = int(data["test_samples"])
    flop = model_spec.get("flop_per_sample")
    flop_epoch = 3 * flop * n_fit + flop * n_val if flop and n_fit is not None and n_val is not None else None
    batch = model_spec.get("batch_size")
    settings = result.get("settings") or {}
    backend_title = settings.get("title") or (spec.get("backend") or {}).get("title") or cell["backend"]
    load = host.get("load") or {}
    return {
        "run_id": run_id,
        "cell_id": result["cell_id"],
        "result_key": f"{run_id}/{result['cell_id']}",
        "model": cell["model"],
        "model_title": model_spec.get("title") or cell["model"],
        "backend": cell["backend"],
        "backend_title": backend_title,
        "environment": cell["environment"],
        "variant": cell.get("variant", "default"),
        # whether this was its environment's default variant when it ran (results before variants: it was)
        "variant_default": bool((spec.get("variant") or {}).get("is_default", cell.get("variant", "default")
                                                                == "default")),
        "changes_numerics": bool(settings.get("variant_changes_numerics")),
        "profile": cell["profile"],
        "repeat": cell["repeat"],
        "seed": cell["seed"],
        "status": result["status"],
        "error": result.get("error"),
        "data_source": data.get("source") or (spec.get("data") or {}).get("source") or "unknown",
        "executor": (result.get("executor") or {}).get("name", ""),
        "device_kind": kind,
        "device": device,
        "peak_tflops": peak,
        "keras": versions.get("keras", ""),
        "framework": _framework_version(versions),
        "params": result.get("params"),
        "first_epoch_s": result.get("first_epoch_s"),
        "compile_s": result.get("compile_s"),
        "steady_epoch_s": result.get("steady_epoch_s"),
        "article_epoch_s": article_epoch_s(result),
        "build_fn_s": result.get("build_fn_s"),
        "cpu_peak_method": cpu_peak_method(host) if kind == "cpu" else None,
        "test_accuracy": (result.get("test") or {}).get("accuracy"),
        "batch_size": batch,
        "train_samples": n_fit,
        "val_samples": n_val,
        "steps_per_epoch": math.ceil(n_fit / batch) if batch and n_fit else None,
        "flop_per_epoch": flop_epoch,
        "busy": bool(load.get("busy")),
        "version_warnings": "; ".join((result.get("executor") or {}).get("version_warnings") or []),
        "other_cpu_share": load.get("other_cpu_share"),
        "git_commit": result.get("git_commit"),
        "git_dirty": result.get("git_dirty"),
        "started_at": result.get("started_at"),
    }


def epoch_rows(row: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    ident = {k: row[k] for k in ("run_id", "cell_id", "repeat", "seed", *CELL_KEYS)}
    out, total = [], 0.0
    for e in result.get("epochs") or []:
        total += e["wall_s"]
        out.append({
            **ident,
            "epoch": e["epoch"],
            "steady": e["epoch"] > 1,
            "wall_s": e["wall_s"],
            "cum_wall_s": total,
            "cpu_s": e["cpu_s"],
            "val_s": e.get("val_s"),
            "samples": e["samples"],
            "loss": e.get("loss"),
            "accuracy": e.get("accuracy"),
            "val_loss": e.get("val_loss"),
            "val_accuracy": e.get("val_accuracy"),
        })
    return out


EPOCH_COLUMNS = ["run_id", "cell_id", "repeat", "seed", *CELL_KEYS, "epoch", "steady", "wall_s", "cum_wall_s",
                 "cpu_s", "val_s", "samples", "loss", "accuracy", "val_loss", "val_accuracy"]


def load_runs(run_dirs: list[Path]) -> Loaded:
    run_ids, runs, rows, epochs, raw, problems = [], {}, [], [], {}, []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            problems.append(f"{run_dir}: not a folder")
            continue
        run_id = run_id_of(run_dir)
        run_ids.append(run_id)
        runs[run_id] = _read_json(run_dir / "run.json")
        for path, outcome in iter_results(run_dir):
            if isinstance(outcome, ResultError):
                problems.append(str(outcome))
                continue
            result = outcome.model_dump(mode="json")
            row = cell_row(run_id, result, _read_json(path.parent / "spec.json"))
            rows.append(row)
            raw[row["result_key"]] = path
            if outcome.status is Status.ok:
                epochs.extend(epoch_rows(row, result))
    cells = pd.DataFrame(rows)
    return Loaded(run_ids, runs, cells, pd.DataFrame(epochs, columns=EPOCH_COLUMNS), raw, problems)


def load_raw(path: Path) -> dict[str, Any]:
    return _read_json(path)
