"""The parts of a cell's spec that belong to one run, not to the experiment (so never in its hash): where the
worker writes, the data caches, and the run's own copy of a model file of the user's own."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from common.results import WORKER_RESULT_FILE
from runner.datafetch import data_cache


def add_runtime(spec: dict[str, Any], cell_dir: Path, wheel: Path | None) -> None:
    """The parts of a spec that belong to this run, not to the experiment (so not in its hash): paths, caches,
    and the run's own copy of a model file (every executor reads that one: Slurm from the shared results folder,
    Docker mounted read-only, Kubernetes in the cell's ConfigMap)."""
    spec["paths"] = {"result": str(cell_dir / WORKER_RESULT_FILE), "events": str(cell_dir / "events.jsonl")}
    spec["data"].update(offline_wheel=str(wheel) if wheel else None, cache_dir=str(data_cache()))
    if spec["model"].get("module"):
        spec["model"]["module"] = str(ship_model_file(Path(spec["model"]["module"]), cell_dir.parent,
                                                      spec["model"]["module_sha256"]))


class ModelFileChanged(RuntimeError):
    """A model file changed after the run began: its cells would not be the experiment the spec hash names."""


def ship_model_file(source: Path, run_dir: Path, sha256: str) -> Path:
    """The run's copy of a model file (`model-files/<name>-<sha>.py`), made once and checked against its hash."""
    copy = run_dir / "model-files" / f"{source.stem}-{sha256[:12]}.py"
    if not copy.exists():
        data = source.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ModelFileChanged(f"{source} changed after the run began (its sha256 is not the one planned); "
                                   "start a new run")
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(data)
    return copy
