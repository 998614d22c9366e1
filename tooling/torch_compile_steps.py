"""The environment side of `python -m tooling.torch_compile_modes`: runs in keras3-torch, prints its figures.

The PyTorch twin's MNIST MLP and CNN (models/native: the same modules, Keras' optimizer arithmetic and loss) take
one training step per call on a fixed batch of 128 random images, in eager mode and under each compile mode.
Modes are interleaved round by round so drift hits all of them; a round times `--steps` steps after the warm-up
(whose first call, the compilation, is printed apart). reduce-overhead's gain is CUDA graphs, which need a GPU:
on a CPU it can only tie the default mode, and this measures whether it does.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

from models import cnn, mlp
from models.native.layers import NativeAPI
from models.native.torch_twin import build_module, crossentropy, keras_optimizer

MODELS = {"mlp": (mlp, (784,)), "cnn": (cnn, (1, 28, 28))}  # MNIST as each model takes it, channels_first
MODES = ("eager", "default", "reduce-overhead")
BATCH = 128


def make_step(model: str, optimizer: dict, mode: str):
    """A fresh module and optimizer (seeded alike), and its train step: eager or compiled in `mode`."""
    module, shape = MODELS[model]
    torch.manual_seed(0)
    net = build_module(module.build(NativeAPI("channels_first"), SimpleNamespace(input_shape=shape, num_classes=10)))
    opt = keras_optimizer(net.parameters(), optimizer)

    def step(x, y):
        loss = crossentropy(y, net(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step if mode == "eager" else torch.compile(step, mode=mode)


def main(spec_path: str) -> None:
    """`spec_path`: {rounds, steps, optimizers: {model: the matrix's optimizer}}, written by the host side."""
    spec = json.loads(open(spec_path).read())
    rounds, n_steps = spec["rounds"], spec["steps"]
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{rounds} rounds x {n_steps} steps")
    for model, optimizer in spec["optimizers"].items():
        shape = MODELS[model][1]
        x = torch.from_numpy(rng.random((BATCH, *shape), dtype=np.float32))
        y = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, 10, BATCH)), 10).float()
        steps, first = {}, {}
        for mode in MODES:
            steps[mode] = make_step(model, optimizer, mode)
            t0 = time.perf_counter()
            steps[mode](x, y)
            first[mode] = time.perf_counter() - t0
            for _ in range(10):
                steps[mode](x, y)
        per_step = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode in MODES:
                t0 = time.perf_counter()
                for _ in range(n_steps):
                    loss = steps[mode](x, y)
                float(loss)
                per_step[mode].append((time.perf_counter() - t0) / n_steps * 1e3)
        eager = statistics.median(per_step["eager"])
        for mode in MODES:
            ms = per_step[mode]
            print(f"{model:4s} {mode:16s} first call {first[mode]:7.2f} s   step median {statistics.median(ms):7.3f} "
                  f"ms (rounds {min(ms):.3f}-{max(ms):.3f})   x{statistics.median(ms) / eager:.2f} of eager")


if __name__ == "__main__":
    main(sys.argv[1])
