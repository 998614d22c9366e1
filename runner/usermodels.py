"""Your own model (`--model-file PATH`): a Keras 3 file in, models of the matrix out, checked before any cell.

The host checks what it can without Keras (the file exists, an .npz holds the four arrays); a short probe in the
keras3-jax environment (models/probe_model.py) does the rest: the file imports, build() returns a keras.Model,
the data fits its inputs and labels its classes, and XLA's cost analysis gives its FLOPs per sample (no hand
count). The probe's answer is cached by the file's (and the data file's) sha256, so a second run asks nothing.
Every problem is a ModelFileError (exit status 2) naming the file and the fix. A model file becomes a model of
the matrix named after the file, running on every Keras 3 backend through Keras (never a native twin, never a
2017 stack); its bytes' hash is part of each cell's spec hash, so a changed file is a new experiment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import BadInput
from runner import paths
from runner.executors.base import CellJob
from runner.matrix import Matrix, ModelSpec, Optimizer

PROBE_ENVIRONMENT = "keras3-jax"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
KERAS_PREFIX = "3."
DEFAULT_OPTIMIZER = Optimizer(name="adam", learning_rate=1.0e-3, beta_1=0.9, beta_2=0.999, epsilon=1.0e-7)
PROBE_TIMEOUT_S = 600


class ModelFileError(BadInput):
    """A model file (or its data file) that cannot run: the message names the file and the fix."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_name(path: Path, taken: set[str]) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", path.stem.lower()).strip("-_.") or "model"
    if name in taken:
        raise ModelFileError(f"{path}: a model called {name!r} exists already; rename the file")
    return name


def check_data_file(path: Path) -> str:
    """The .npz's sha256, once it is known to hold x_train, y_train, x_test, y_test of matching lengths."""
    if not path.is_file():
        raise ModelFileError(f"--data-file {path}: no such file; pass an .npz with {', '.join(NPZ_KEYS)}")
    try:
        with np.load(path) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise ModelFileError(f"--data-file {path}: no {', '.join(missing)} in it (it holds "
                                     f"{', '.join(npz.files) or 'nothing'}); save it with np.savez(path, "
                                     "x_train=..., y_train=..., x_test=..., y_test=...)")
            for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
                if len(npz[x]) != len(npz[y]):
                    raise ModelFileError(f"--data-file {path}: {x} has {len(npz[x])} samples, {y} {len(npz[y])}")
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"--data-file {path}: not an .npz NumPy can read ({exc})") from None
    return sha256_of(path)


def run_probe(module_path: Path, data_file: Path | None, out: Path) -> dict[str, Any]:
    """The probe in the keras3-jax environment (built if it is not yet): the file's facts, or its problem."""
    from runner.executors.venv import VenvExecutor, launch_worker
    from runner.matrix import load_matrix

    matrix = load_matrix(paths.DEFAULT_MATRIX)
    env = VenvExecutor().prepare(PROBE_ENVIRONMENT, matrix.environments[PROBE_ENVIRONMENT], lambda msg: None)
    extra = ("--file", str(module_path), *(("--data-file", str(data_file)) if data_file else ()))
    log = out.with_suffix(".log")
    job = CellJob(out.parent, out, log, {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
                  "models.probe_model", extra)
    handle = launch_worker(str(Path(env.location) / "bin" / "python"), env.location, job)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while (code := handle.wait(0.5)) is None:
        if time.monotonic() > deadline:
            handle.kill()
            raise ModelFileError(f"{module_path}: the probe did not finish in {PROBE_TIMEOUT_S} s (log: {log})")
    if code != 0 or not out.exists():
        raise ModelFileError(f"{module_path}: the probe died ({code}); its log: {log}")
    return json.loads(out.read_text())


def probe(module_path: Path, data_file: Path | None) -> dict[str, Any]:
    """The probe's answer for these exact bytes, from the cache or fresh."""
    key = sha256_of(module_path)[:16] + ("-" + sha256_of(data_file)[:16] if data_file else "")
    cached = paths.cache_dir() / "model-probes" / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    cached.parent.mkdir(parents=True, exist_ok=True)
    facts = run_probe(module_path, data_file, cached.with_suffix(".tmp.json"))
    if not facts.get("problem"):
        cached.with_suffix(".tmp.json").replace(cached)
    return facts


def model_spec(path: Path, facts: dict[str, Any], data_file: Path | None, data_sha: str | None) -> ModelSpec:
    from models.user_model import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS

    loops = " (the model loops: XLA counted the loop body once, so FLOPs and share of peak are omitted)"
    flop = None if facts.get("loops") else facts.get("flop_per_sample")
    return ModelSpec(
        title=facts.get("title") or path.stem, dataset="user",
        batch_size=int(facts.get("batch_size") or DEFAULT_BATCH_SIZE), epochs=int(facts.get("epochs") or
                                                                                  DEFAULT_EPOCHS),
        optimizer=DEFAULT_OPTIMIZER, expected_params=facts.get("params"), flop_per_sample=flop or None,
        flop_method=(facts.get("flop_method") or "") + (loops if facts.get("loops") else ""),
        module=str(path.resolve()), module_sha256=sha256_of(path), keras=KERAS_PREFIX,
        data_file=str(data_file.resolve()) if data_file else None, data_sha256=data_sha,
    )


def add_model_files(matrix: Matrix, args: argparse.Namespace, warnings: list[str] | None = None) -> Matrix:
    """The matrix with a model per --model-file; without --model, a run takes only those models. What the probe
    found that does not stop the run (build() failing on JAX alone) goes into `warnings`."""
    warnings = [] if warnings is None else warnings
    files = [Path(p) for p in getattr(args, "model_file", None) or []]
    data_file = Path(args.data_file) if getattr(args, "data_file", None) else None
    if data_file is not None and not files:
        raise ModelFileError("--data-file feeds a model file: add --model-file PATH")
    if not files:
        return matrix
    data_sha = check_data_file(data_file) if data_file else None
    models = dict(matrix.models)
    added = []
    for path in files:
        if not path.is_file() or path.suffix != ".py":
            raise ModelFileError(f"--model-file {path}: no such Python file; pass a .py file with build() "
                                 "(docs/how-to/own-model.md)")
        facts = probe(path, data_file)
        if facts.get("problem"):
            raise ModelFileError(f"{facts['problem']}" + (f"; {facts['fix']}" if facts.get("fix") else ""))
        name = model_name(path, set(models))
        models[name] = model_spec(path, facts, data_file, data_sha)
        added.append(name)
        if facts.get("backend_error"):  # said before anything runs: that backend's cell will fail the same way
            warnings.append(f"{path}: {facts['backend_error']}; the JAX cell will fail with it, the others run. "
                            "A model file runs on every backend only through keras.layers and keras.ops")
    if not args.model:
        args.model = added
    return matrix.model_copy(update={"models": models})
