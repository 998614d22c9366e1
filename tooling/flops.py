"""`python -m tooling.flops`: XLA's cost analysis of the five models beside their hand counts in matrix.yaml.

A model file's FLOPs come from the probe's cost analysis (runner/usermodels.py); this checks that method where the
answer is known: each of the five models built on synthetic data of its real shapes in the keras3-jax
environment (models/probe_model.py --builtin), its forward FLOP per sample against `flop_per_sample`, and the
gradient step's against 3x forward. Prints a Markdown table (docs/how-to/own-model.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from runner import paths
from runner.executors.base import CellJob
from runner.executors.venv import VenvExecutor, launch_worker
from runner.matrix import load_matrix


def probe_builtin(env_location: str, name: str, dataset: str, folder: Path) -> dict:
    out = folder / f"{name}.json"
    job = CellJob(folder, out, folder / f"{name}.log", {"KERAS_BACKEND": "jax"}, "models.probe_model",
                  ("--builtin", name, dataset))
    handle = launch_worker(str(Path(env_location) / "bin" / "python"), env_location, job)
    while handle.wait(1.0) is None:
        pass
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.flops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="fewer models (default: every model of matrix.yaml)")
    args = p.parse_args(argv)
    matrix = load_matrix(paths.DEFAULT_MATRIX)
    env = VenvExecutor().prepare("keras3-jax", matrix.environments["keras3-jax"], print)
    print("| model | hand count (matrix.yaml) | XLA forward | XLA / hand | XLA gradient step / forward | loops |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.model or list(matrix.models):
            facts = probe_builtin(env.location, name, matrix.models[name].dataset, Path(tmp))
            hand = matrix.models[name].flop_per_sample
            fwd, grad = facts.get("flop_per_sample"), facts.get("train_step_flop_per_sample")
            if fwd is None:
                print(f"| {name} | {hand:.4g} | failed: {facts.get('problem')} | | | |")
                continue
            print(f"| {name} | {hand:.4g} | {fwd:.4g} | {fwd / hand:.3f} | {grad / fwd:.2f} | "
                  f"{'yes' if facts['loops'] else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
