"""`python -m tooling.torch_compile_modes`: is `torch.compile(mode="reduce-overhead")` worth a variant here?

A benchmark that prints figures. On the host: the MNIST MLP's and CNN's optimizers from matrix.yaml, the
keras3-torch environment prepared (or reused) as the runner does; in that environment
(tooling/torch_compile_steps.py) the PyTorch twin's modules take one training step per call on a fixed batch,
eager and under each compile mode, interleaved round by round, and print per-step medians and first-call times.
reduce-overhead's gain is CUDA graphs, which need a GPU: on a CPU it can only tie the default mode.
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

ENV = "keras3-torch"
MODELS = ("mlp", "cnn")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.torch_compile_modes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode (default 5)")
    p.add_argument("--steps", type=int, default=100, help="timed steps per round (default 100)")
    p.add_argument("--model", action="append", choices=MODELS, help="fewer models (default: both)")
    args = p.parse_args(argv)
    matrix = load_matrix(paths.DEFAULT_MATRIX)
    env = VenvExecutor().prepare(ENV, matrix.environments[ENV], print)
    optimizers = {m: matrix.models[m].optimizer.model_dump(exclude_none=True) for m in args.model or MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec, log = folder / "spec.json", folder / "steps.log"
        spec.write_text(json.dumps({"rounds": args.rounds, "steps": args.steps, "optimizers": optimizers}))
        job = CellJob(folder, spec, log, {}, "tooling.torch_compile_steps")
        handle = launch_worker(str(Path(env.location) / "bin" / "python"), env.location, job)
        while (status := handle.wait(1.0)) is None:
            pass
        print(log.read_text(), end="")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
