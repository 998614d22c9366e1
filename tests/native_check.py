"""Run inside a Keras 3 environment (`python tests/native_check.py OUT.json`, KERAS_BACKEND set): the native twin
of that framework against Keras on the same backend, from identical weights. Writes what it found as JSON; the
assertions live in tests/test_native.py.

- the parameter count of each twin, and of the Keras model built from the same model file;
- the forward pass: Keras' weights copied into the twin, both predict the same batch (dropout off);
- the optimizer: two update steps from identical weights and gradients, Keras' optimizer on this backend against
  the twin's (RMSprop as the MLP's spec, Adadelta with learning rate 1.0 as the CNN's), largest relative difference;
- training: the twin's own fit (the worker's EpochClock), evaluate and predict on a few random samples, eager and
  (the MLP) compiled.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from models import compat, native  # noqa: E402
from models.data import Dataset  # noqa: E402
from models.timing import EpochClock, EventLog  # noqa: E402

FRAMEWORK = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}[keras.backend.backend()]
MODELS = {"torch": ["mlp", "cnn", "hrnn"], "jax": ["mlp", "cnn", "hrnn"], "tensorflow": ["mlp", "cnn"]}[FRAMEWORK]
DATA_FORMAT = "channels_first" if FRAMEWORK == "torch" else "channels_last"
OPTIMIZERS = {"mlp": {"name": "rmsprop", "learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-8},
              "cnn": {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-8}}
SHAPES = {"mlp": (784,), "cnn": (1, 28, 28) if DATA_FORMAT == "channels_first" else (28, 28, 1), "hrnn": (28, 28, 1)}


class Data:
    def __init__(self, shape):
        self.input_shape, self.num_classes = shape, 10


def twin(model: str, optimizer: dict, jit: bool | str = "auto"):
    spec = {"cell": {"seed": 7, "model": model, "profile": "smoke"}, "backend": {"framework": FRAMEWORK},
            "model": {"optimizer": optimizer, "module": None}}
    variant = {"jit_compile": jit, "data_format": DATA_FORMAT}
    driver = native.driver(spec, variant, lambda gpu: 0)
    driver.import_framework()
    driver.seed(7)
    driver.build(importlib.import_module("models." + model), Data(SHAPES[model]))
    return driver


def forward(model: str) -> dict:
    api = compat.KerasAPI(keras, data_format=DATA_FORMAT)
    keras_model = importlib.import_module("models." + model).build(api, Data(SHAPES[model]))
    rng = np.random.RandomState(0)
    keras_model.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) for w in keras_model.get_weights()])
    t = twin(model, OPTIMIZERS.get(model, OPTIMIZERS["mlp"]))
    t.set_weights(keras_model.get_weights())
    x = rng.uniform(0, 1, (16, *SHAPES[model])).astype(np.float32)
    ours, theirs = t.predict_on_batch(x), np.asarray(keras_model.predict_on_batch(x))
    return {"params": t.count_params(), "keras_params": int(keras_model.count_params()),
            "max_abs_diff": float(np.abs(ours - theirs).max()), "rows_sum": float(ours.sum(axis=1).mean()),
            "argmax_equal": bool((ours.argmax(1) == theirs.argmax(1)).all()),
            "gate_probe": t.gate_probe([-1.0, 0.0, 2.0])}


def keras_steps(spec: dict, weights: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    extras = {k: spec[k] for k in ("rho", "epsilon")}
    optimizer = {"rmsprop": keras.optimizers.RMSprop, "adadelta": keras.optimizers.Adadelta}[spec["name"]](
        learning_rate=spec["learning_rate"], **extras)
    variables = [keras.Variable(w) for w in weights]
    for step in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


def native_steps(spec: dict, weights: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    if FRAMEWORK == "torch":
        import torch

        from models.native.torch_twin import keras_optimizer

        params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in weights]
        optimizer = keras_optimizer(params, spec)
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = torch.from_numpy(g.copy())
            optimizer.step()
        return [p.detach().numpy() for p in params]
    if FRAMEWORK == "jax":
        import jax.numpy as jnp
        import optax

        from models.native.jax_twin import make_optimizer

        tx = make_optimizer(spec)
        params = [jnp.asarray(w) for w in weights]
        state = tx.init(params)
        for step in grads:
            updates, state = tx.update([jnp.asarray(g) for g in step], state, params)
            params = optax.apply_updates(params, updates)
        return [np.asarray(p) for p in params]
    import tensorflow as tf

    from models.native.tf_twin import KerasOptimizer

    variables = [tf.Variable(w) for w in weights]
    optimizer = KerasOptimizer(spec, variables)
    for step in grads:
        optimizer.apply([tf.constant(g) for g in step], variables)
    return [v.numpy() for v in variables]


def optimizer_step(name: str) -> dict:
    """From zero weights, so the first step's new weights are exactly its update: that update compared element by
    element (relative); then a second step (the optimizer's state no longer zero), its update compared relative to
    the update's largest element (float32 weights carry it only to their own precision, so element by element a
    near-cancelling weight would inflate the figure)."""
    spec = OPTIMIZERS[name]
    rng = np.random.RandomState(1)
    shapes = [(784, 64), (64,), (3, 3, 1, 8)]
    weights = [np.zeros(s, np.float32) for s in shapes]
    grads = [[rng.normal(scale=0.1, size=s).astype(np.float32) for s in shapes] for _ in range(2)]
    one_ours, one_theirs = native_steps(spec, weights, grads[:1]), keras_steps(spec, weights, grads[:1])
    two_ours, two_theirs = native_steps(spec, weights, grads), keras_steps(spec, weights, grads)
    first = max(float((np.abs(o - t) / np.abs(t)).max()) for o, t in zip(one_ours, one_theirs, strict=True))
    second = max(float(np.abs((o2 - o1) - (t2 - t1)).max() / np.abs(t2 - t1).max())
                 for o1, t1, o2, t2 in zip(one_ours, one_theirs, two_ours, two_theirs, strict=True))
    return {"optimizer": spec["name"], "learning_rate": spec["learning_rate"], "first_step_rel_diff": first,
            "second_step_rel_diff": second, "update_size": float(np.abs(one_theirs[0]).max())}


def train(model: str, jit: bool | str) -> dict:
    """Two epochs of the twin's fit on a few random samples in batches of 16 (the eager MLP's last batches partial;
    elsewhere whole batches, each new shape being one more compilation), then evaluate and predict: what the
    worker's stages call."""
    rng = np.random.RandomState(2)
    sizes = (40, 24) if model == "mlp" and jit == "auto" else (32, 16)
    x, xv = (rng.uniform(0, 1, (n, *SHAPES[model])).astype(np.float32) for n in sizes)
    y, yv = (np.eye(10, dtype=np.float32)[rng.randint(0, 10, n)] for n in sizes)
    t = twin(model, OPTIMIZERS.get(model, OPTIMIZERS["mlp"]), jit)
    before = t.predict(xv, 16)
    clock = EpochClock(EventLog(None), 2)
    fit_params = t.fit(Dataset(x, y, xv, yv, SHAPES[model], 10, {}), clock,
                       {"batch_size": 16, "epochs": 2, "validation_data": (xv, yv)})
    loss, accuracy = t.evaluate(xv, yv, 16)
    after = t.predict(xv, 16)
    return {"jit_resolved": t.jit_resolved, "fit_params": fit_params, "epochs": clock.epochs,
            "evaluate": [loss, accuracy], "predict_shape": list(after.shape),
            "moved": float(np.abs(after - before).max()), "device": t.weight_device(False)}


def main(out: str) -> None:
    runs = [(m, "auto") for m in MODELS] + ([("mlp", True)] if FRAMEWORK != "jax" else [])  # JAX: always jit
    report = {"framework": FRAMEWORK, "forward": {m: forward(m) for m in MODELS},
              "optimizer": {m: optimizer_step(m) for m in OPTIMIZERS},
              "train": {f"{m}-jit={jit}": train(m, jit) for m, jit in runs}}
    with open(out, "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
