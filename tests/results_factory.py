"""Format-exact schema 2 results for the tests of what reads them (rankings, tables, sweep, compare), built
through the contract's own skeleton and validated as they are made, so a test can never feed the readers a shape
the workers could not write. Training tests produce real results; these only save the training where the
figures themselves are what a test is about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.results import CellResult, Status, skeleton

TITLES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "tensorflow1": "TensorFlow 1.x",
          "cntk": "CNTK", "theano": "Theano", "mxnet": "MXNet"}


def make_result(model: str, backend: str, env: str | None = None, *, variant: str = "stock", repeat: int = 0,
                profile: str = "smoke", status: str = "ok", error: str | None = None, steady: list[float] | None = None,
                train_samples: int = 256, val_samples: int = 128, batch_size: int = 128, busy: bool = False,
                numerics: bool = False, data: str = "synthetic", accuracy: float = 0.5, val_s: float | None = 0.01,
                cpu_ratio: float = 1.0, inference: dict[str, Any] | None = None,
                memory: dict[str, Any] | None = None) -> dict[str, Any]:
    """A result whose epochs after the first take `steady` seconds (the first: 3x the first steady one)."""
    env = env or f"keras3-{backend}"
    cell = {"environment": env, "backend": backend, "model": model, "profile": profile, "repeat": repeat,
            "seed": 1337 + repeat, "variant": variant}
    spec = {"cell": cell, "cell_id": f"{model}.{backend}.{env}.{profile}.{variant}.r{repeat}",
            "spec_hash": f"hash-{model}-{backend}-{env}-{variant}-{repeat}",
            "backend": {"title": TITLES.get(backend, backend), "keras_backend": backend, "framework": backend}}
    result = skeleton(spec, Status(status), "done" if status == "ok" else "train", error,
                      {"name": "venv", "environment": env}, {"git_commit": None, "git_dirty": False})
    result["host"] = {"cpu_model": "Test CPU", "cores": 2, "usable_cores": 2,
                      "load": {"busy": busy, "other_cpu_share": 0.35 if busy else 0.01}}
    if status != "ok":
        return CellResult.model_validate(result).dump()
    steady = steady or [1.0, 1.0]
    walls = [steady[0] * 3, *steady]
    source = "synthetic" if data == "synthetic" else "keras-cache"
    result.update(
        params=669706, first_epoch_s=walls[0], steady_epoch_s=sorted(steady)[len(steady) // 2], compile_s=0.1,
        epochs=[{"epoch": i + 1, "wall_s": w, "cpu_s": w * cpu_ratio, "samples": train_samples, "loss": 1.0,
                 "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "val_s": val_s} for i, w in enumerate(walls)],
        data={"source": source, "sha256": "0" * 64, "dataset": "mnist", "train_samples": train_samples,
              "test_samples": val_samples},
        work={"train_samples": train_samples, "val_samples": val_samples, "batch_size": batch_size,
              "epochs": len(walls), "data": "synthetic" if data == "synthetic" else "real"},
        test={"loss": 1.0, "accuracy": accuracy, "samples": val_samples}, versions={"keras": "3.15.1"},
        settings={"variant": variant, "variant_changes_numerics": numerics, "data_format": "channels_last",
                  "jit_compile": "auto"},
        inference=inference, memory=memory,
    )
    return CellResult.model_validate(result).dump()


def make_spec(result: dict[str, Any], *, default: bool = True, batch_size: int = 128,
              flop_per_sample: float = 1.0e6) -> dict[str, Any]:
    """The spec.json beside a made result: what reports read of the model and the variant."""
    model = result["cell"]["model"]
    return {"model": {"title": model.upper(), "batch_size": batch_size, "flop_per_sample": flop_per_sample},
            "variant": {"name": result["cell"]["variant"], "is_default": default}}


def write_run(root: Path, cells: list[tuple[dict, dict]], name: str = "20261130-000000-test") -> Path:
    """A run folder holding each (result, spec) pair in its cell folder, and a run.json."""
    run = root / name
    for result, spec in cells:
        folder = run / result["cell_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
        (folder / "spec.json").write_text(json.dumps(spec))
    (run / "run.json").write_text(json.dumps({"schema_version": 2, "argv": ["test"], "executor": "venv"}))
    return run


def latency(p50_ms: float, p90_ms: float | None = None) -> dict[str, Any]:
    """An inference block whose batch-1 predict_on_batch latency has this median (and 90th percentile)."""
    p90_ms = p90_ms or p50_ms * 1.2
    samples = [p50_ms] * 5 + [p90_ms] * 2
    return {"settings": {"warmup": 2, "calls": len(samples), "batch_sizes": [128], "passes": 1},
            "latency": [{"method": "predict_on_batch", "batch_size": 1, "warmup": 2, "first_call_ms": p50_ms * 50,
                         "p50_ms": p50_ms, "p90_ms": p90_ms, "p99_ms": p90_ms, "mean_ms": sum(samples) / len(samples),
                         "samples_ms": samples}],
            "throughput": [{"batch_size": 128, "samples": 128, "warmup_pass_s": 0.1, "pass_s": [0.01],
                            "samples_per_s": 12800.0}]}


# The MLP row of a fresh `make matrix` (quick profile, one repeat, 2026-12-04; issue 33): JAX's epochs 0.96-1.21 s
# meet its twin's 0.88-1.63, which meet TensorFlow's, which meet PyTorch's 2.16-3.91. A chained tie once put the
# 0.986 s and the 3.43 s in one first place.
FRESH_MLP = {  # backend: (environment, variant, steady epochs: min, median, max)
    "jax": ("keras3-jax", "jax-ynn-no-conv", [0.96, 0.986, 1.21]),
    "jax-native": ("keras3-jax", "jax-ynn-no-conv", [0.88, 1.27, 1.63]),
    "torch-native": ("keras3-torch", "torch-channels-first", [1.30, 1.42, 1.70]),
    "tensorflow-native": ("keras3-tensorflow", "stock", [1.45, 1.59, 1.80]),
    "tensorflow": ("keras3-tensorflow", "stock", [1.50, 1.66, 2.20]),
    "torch": ("keras3-torch", "torch-channels-first", [2.16, 3.43, 3.91]),
}
NATIVE_TITLES = {"jax-native": "JAX (native)", "torch-native": "PyTorch (native)",
                 "tensorflow-native": "TensorFlow (native)"}


def twin(result: dict[str, Any]) -> dict[str, Any]:
    """A made result turned into its framework's native twin's (driver native, family the framework)."""
    backend = result["cell"]["backend"]
    family = backend.removesuffix("-native")
    result["backend"] = {**result["backend"], "title": NATIVE_TITLES[backend], "keras_backend": family,
                         "framework": family, "family": family, "driver": "native"}
    return CellResult.model_validate(result).dump()


def fresh_mlp_run(root: Path, name: str = "20261204-101500-fresh", cifar_skipped: bool = True) -> Path:
    """The fresh run's MLP row (FRESH_MLP, 30,000 train / 5,000 val samples per epoch, real data), its CIFAR-10 cells
    skipped for a missing dataset as a new machine has them."""
    cells = []
    for backend, (env, variant, steady) in FRESH_MLP.items():
        r = make_result("mlp", backend, env, variant=variant, profile="quick", steady=steady, train_samples=30000,
                        val_samples=5000, data="real", accuracy=0.97, val_s=0.1)
        cells.append((twin(r) if backend.endswith("-native") else r, make_spec(r)))
    if cifar_skipped:
        for backend in ("tensorflow", "jax", "torch"):
            r = make_result("cifar10_cnn", backend, profile="quick", status="skipped",
                            error="cifar10: not in the Keras cache and not downloadable; place cifar-10-python.tar.gz "
                            "in ~/.keras/datasets, or run with --data synthetic.")
            cells.append((r, make_spec(r)))
    return write_run(root, cells, name)


def fresh_matrix_run(root: Path, name: str = "20261204-101500-fresh") -> Path:
    """A whole fresh quick run as a new 2-core machine makes it: FRESH_MLP and the CNN on the Keras 3 backends and
    their twins, the 2017 stacks on a tenth of the samples (different work), the hierarchical RNN, CIFAR-10 and
    bAbI skipped for two missing datasets, one busy cell: every kind of caveat the first screen has to summarise."""
    cells = []
    for model, scale in (("mlp", 1.0), ("cnn", 4.0)):
        for backend, (env, variant, steady) in FRESH_MLP.items():
            r = make_result(model, backend, env, variant=variant, profile="quick", steady=[s * scale for s in steady],
                            train_samples=30000, val_samples=5000, data="real", accuracy=0.97, val_s=0.1,
                            busy=(model, backend) == ("cnn", "torch"), cpu_ratio=1.5)
            cells.append((twin(r) if backend.endswith("-native") else r, make_spec(r)))
        for backend, env, pace in (("tensorflow1", "keras2017-tf-cntk", 1.0), ("cntk", "keras2017-tf-cntk", 1.3),
                                   ("theano", "keras2017-theano", 2.5), ("mxnet", "keras2017-mxnet", 1.1)):
            r = make_result(model, backend, env, variant="faithful-2017", profile="quick", train_samples=3000,
                            val_samples=500, data="real", steady=[x * scale * pace for x in (0.4, 0.42, 0.45)])
            cells.append((r, make_spec(r)))
    for backend in ("tensorflow", "jax", "torch", "jax-native", "torch-native"):
        r = make_result("hrnn", backend, f"keras3-{backend.removesuffix('-native')}", profile="quick",
                        steady=[9.0, 10.0, 14.0], train_samples=30000, val_samples=5000, data="real")
        cells.append((twin(r) if backend.endswith("-native") else r, make_spec(r)))
    for model, dataset in (("cifar10_cnn", "cifar10"), ("babi_rnn", "babi_qa2")):
        for backend in ("tensorflow", "jax", "torch"):
            r = make_result(model, backend, profile="quick", status="skipped",
                            error=f"{dataset}: not in the Keras cache and not downloadable; place it in "
                            "~/.keras/datasets, or run with --data synthetic.")
            cells.append((r, make_spec(r)))
    return write_run(root, cells, name)
