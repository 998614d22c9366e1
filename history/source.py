"""Run folders as rows for the store: the only module of history/ that imports the rest of the project.

Results are read through `reports.load.load_runs` (which validates each result against the contract and leaves
out, with a problem line, whatever it cannot read) and flattened here into three lists of plain dicts, one per
table: runs, cells (one row per result, i.e. per repeat) and epochs (the steady samples behind each interval).
The GPU count of the fingerprint (and the spec hash, where the loader's frame does not carry it) is read from
the same validated file through `reports.load.load_raw`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.load import load_raw, load_runs, run_folders  # noqa: F401 (run_folders: one rule, reports' own)

# Columns of reports.load's cells frame the store keeps as they are (identity, provenance, headline figures).
CELL_COLUMNS = (
    "cell_id", "model", "backend", "environment", "variant", "profile", "data_source", "repeat", "seed", "status",
    "error", "executor", "device_kind", "device", "keras", "framework", "git_commit", "git_dirty", "started_at",
    "busy", "other_cpu_share", "steady_epoch_s", "article_epoch_s", "first_epoch_s", "compile_s", "test_accuracy",
)
# Figures newer results carry (schema 2: inference and memory), as the loader's frame names them; absent columns
# stay null, so older results and older loaders fit the same store.


def _latency_s(row: pd.Series) -> float | None:
    """Batch-1 latency, the median of predict_on_batch calls (the loader gives milliseconds)."""
    ms = _plain(row.get("latency_p50_ms"))
    return ms / 1000 if ms is not None else _plain(row.get("latency_s"))


def _throughput(row: pd.Series) -> float | None:
    """Inference samples/s at the largest batch size measured (the loader gives {batch size: samples/s})."""
    per_batch = row.get("throughput")
    if isinstance(per_batch, dict) and per_batch:
        return float(per_batch[max(per_batch, key=int)])
    return _plain(row.get("throughput_per_s"))


OPTIONAL_FIGURES = {
    "latency_s": _latency_s,
    "throughput_per_s": _throughput,
    "peak_rss_mb": lambda row: _plain(row.get("peak_rss_mb")),
    "gpu_peak_mb": lambda row: _plain(row.get("gpu_peak_mb")),
}


@dataclass
class Batch:
    """What a set of run folders contributes to the store, and what could not be read."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """pandas' NaN/NA and numpy scalars as what a database driver takes."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def _gpu_count(raw: dict[str, Any]) -> int:
    gpu = (raw.get("host") or {}).get("gpu") or {}
    return len(gpu.get("devices") or []) if gpu.get("used") else 0


def fingerprint(device: str | None, gpus: int) -> str:
    """The hardware a figure is comparable on: CPU model and usable cores, or GPU name and count."""
    device = device or "unknown device"
    return f"{device} x {gpus}" if device.startswith("GPU") else device


def _run_row(run_id: str, run_dir: Path, manifest: dict[str, Any], cells: pd.DataFrame) -> dict[str, Any]:
    starts = sorted(str(s) for s in cells.get("started_at", pd.Series(dtype=object)).dropna())
    return {
        "run_id": run_id,
        "started_at": manifest.get("started_at") or (starts[0] if starts else None),
        "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"),
        "argv": json.dumps(manifest.get("argv") or []),
        "node": (manifest.get("host") or {}).get("node"),
        "data": manifest.get("data"),
        "source": str(run_dir),
    }


def _cell_row(row: pd.Series, raw: dict[str, Any]) -> dict[str, Any]:
    spec_hash = _plain(row.get("spec_hash")) or raw.get("spec_hash") or row["cell_id"]
    out = {"run_id": row["run_id"], "spec_hash": spec_hash}
    for name in CELL_COLUMNS:
        out[name] = _plain(row.get(name))
    for name, read in OPTIONAL_FIGURES.items():
        out[name] = read(row)
    out["fingerprint"] = fingerprint(out["device"], _gpu_count(raw))
    out["busy"] = bool(out["busy"])
    return out


def read_runs(run_dirs: list[Path]) -> Batch:
    """Every readable result of the run folders as rows; a folder without results is a problem, not an error."""
    unique = list(dict.fromkeys(Path(d).resolve() for d in run_dirs))  # results/latest and its target: one run
    batch = Batch(problems=[f"{d}: not a run folder" for d in unique if not d.is_dir()])
    run_dirs = [d for d in unique if d.is_dir()]
    loaded = load_runs(run_dirs)
    batch.problems += loaded.problems
    cells, epochs = loaded.cells, loaded.epochs
    for run_dir, run_id in zip(run_dirs, loaded.run_ids, strict=True):
        mine = cells[cells["run_id"] == run_id] if not cells.empty else cells
        if mine.empty:
            batch.problems.append(f"{run_dir}: no readable result.json (nothing added)")
            continue
        batch.runs.append(_run_row(run_id, Path(run_dir), loaded.runs.get(run_id) or {}, mine))
        hashes = {}
        for _, row in mine.iterrows():
            cell = _cell_row(row, load_raw(loaded.raw[row["result_key"]]))
            hashes[row["cell_id"]] = cell["spec_hash"]
            batch.cells.append(cell)
        for _, e in epochs[epochs["run_id"] == run_id].iterrows():
            batch.epochs.append({"run_id": run_id, "spec_hash": hashes[e["cell_id"]], "epoch": int(e["epoch"]),
                                 "wall_s": float(e["wall_s"]), "steady": bool(e["steady"])})
    return batch


def backend_key(backend: str) -> tuple:
    """The run report's column order (Keras 3 backends, native twins, 2017 stacks), so history lists alike."""
    from common.display import display_key

    return display_key(backend)


def model_key(model: str) -> tuple:
    """The run report's order of tests (matrix.yaml's)."""
    from common.display import model_key

    return model_key(model)


def backend_color(backend: str) -> str:
    """The run report's colour for a backend, so a backend looks the same on every page."""
    from reports.plots import color

    return color(backend)


def color_of(backend: str) -> str:
    """A backend's colour, the run report's (common/display.py: matrix.yaml's), so it looks the same everywhere."""
    from common.display import color_of

    return color_of(backend)
