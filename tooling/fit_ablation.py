"""`python -m tooling.fit_ablation --backend jax`: what each piece of the harness costs a bare `model.fit`.

Run in the interpreter that has Keras and the backend (a GPU machine's python3, or an environment's virtualenv),
from the repository root. It builds the MNIST MLP (models/mlp.py, as the cell builds it) on data of MNIST's shapes
(60,000 training and 10,000 validation images by default, one-hot labels, float32 in [0, 1]) and times steady
epochs of `fit` under variants that each add one piece of what a cell does:

    bare            no callback: Keras 3's asynchronous callback dispatch stays on
    empty callback  a keras.callbacks.Callback that overrides nothing
    timer           the harness's epoch timer (models/timing.py) with its queued-work wait, as a cell runs it
    timer without wait  the timer, its queued-work wait left out
    batch hook      an empty on_train_batch_end: the positive control (asynchronous dispatch switched off)
    sparse labels   integer labels and sparse categorical cross-entropy (a different loss input, same model)
    tf32            float32 math as TF32 (models/precision.py), every other setting as bare

Each variant keeps its own model (compiled once), and the variants run interleaved, `--repeats` times: steady
seconds per epoch = (fit of E epochs - fit of 1) / (E - 1), as models/bare_fit.py measures. The table's ratio is to
bare. The backend's variables from matrix.yaml are set first, as in a cell. Python >= 3.8 (it runs in the
environment, not the host).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

VARIANTS = ("bare", "empty callback", "timer", "timer without wait", "batch hook", "sparse labels", "tf32")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.fit_ablation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True, choices=("jax", "torch", "tensorflow"))
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--val", type=int, default=10000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="epochs of the timed fit (>= 2)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or args.epochs < 2:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}" if unknown else "--epochs >= 2")
    os.environ["KERAS_BACKEND"] = args.backend
    import yaml

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "matrix.yaml")) as handle:
        backend_env = yaml.safe_load(handle)["backends"][args.backend].get("env") or {}
    os.environ.update(backend_env)  # what a cell of this backend runs with (JAX: no preallocation)
    import keras
    import numpy as np

    from models import compat, mlp, precision, provenance
    from models.bare_fit import batch_hook, harness_timer

    api = compat.KerasAPI(keras)
    gpu = provenance.framework_info(args.backend)[2]
    on_gpu = bool(gpu.get("available"))
    rng = np.random.RandomState(0)
    x = (rng.randint(0, 256, size=(args.train + args.val, 784)).astype(np.float32) / 255.0)
    labels = rng.randint(0, 10, size=args.train + args.val)
    onehot = np.eye(10, dtype=np.float32)[labels]

    class Data:
        input_shape, num_classes = (784,), 10

    def callbacks(variant: str) -> list:
        if variant == "empty callback":
            return [keras.callbacks.Callback()]
        if variant in ("timer", "timer without wait"):
            return [harness_timer(keras, api, args.backend, gpu, wait=variant == "timer")]
        if variant == "batch hook":
            return [batch_hook(keras)]
        return []

    optimizer = {"name": "rmsprop", "learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-8}
    models, figures = {}, {v: [] for v in chosen}
    arithmetic = {}
    for variant in chosen:
        arithmetic[variant] = precision.apply(args.backend, "tf32" if variant == "tf32" else "float32", gpu,
                                              api.dtype_policy())["effective"]
        model = mlp.build(api, Data)
        sparse = variant == "sparse labels"
        loss = "sparse_categorical_crossentropy" if sparse else mlp.LOSS
        api.compile(model, api.optimizer(optimizer), loss, "auto")
        y = labels.astype(np.int32) if sparse else onehot
        data = (x[:args.train], y[:args.train], (x[args.train:], y[args.train:]))
        models[variant] = (model, data)
        model.fit(data[0], data[1], batch_size=args.batch, epochs=1, validation_data=data[2], verbose=0,
                  callbacks=callbacks(variant))  # build, trace, compile
    precision.apply(args.backend, "float32", gpu, api.dtype_policy())

    def timed(variant: str, epochs: int) -> float:
        model, (xt, yt, val) = models[variant]
        if args.backend == "jax" or variant == "tf32":  # the precision is read when a function is traced
            precision.apply(args.backend, "tf32" if variant == "tf32" else "float32", gpu, api.dtype_policy())
        t = time.perf_counter()
        model.fit(xt, yt, batch_size=args.batch, epochs=epochs, validation_data=val, verbose=0,
                  callbacks=callbacks(variant))
        return time.perf_counter() - t

    for repeat in range(args.repeats):
        for variant in chosen:
            one, many = timed(variant, 1), timed(variant, args.epochs)
            figures[variant].append((many - one) / (args.epochs - 1))
            print(f"repeat {repeat + 1}: {variant:15} {figures[variant][-1]:.4f} s/epoch", flush=True)
    base = statistics.median(figures[chosen[0]])
    device = gpu.get("name") or ("GPU" if on_gpu else "CPU")
    print(f"\n{args.backend} on {device}, MLP, {args.train} + {args.val} samples, batch {args.batch}, "
          f"{args.repeats} repeats; steady s/epoch (median), ratio to {chosen[0]}")
    print("| variant | s/epoch | ratio | arithmetic | each repeat |\n|---|---|---|---|---|")
    for variant in chosen:
        median = statistics.median(figures[variant])
        print(f"| {variant} | {median:.4f} | {median / base:.3f} | {arithmetic[variant]} | "
              f"{', '.join(f'{v:.4f}' for v in figures[variant])} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"backend": args.backend, "device": device, "args": vars(args), "figures": figures,
                       "arithmetic": arithmetic}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
