"""The short probe a model file gets before any cell starts, in one Keras 3 environment (JAX):
`python -m models.probe_model OUT.json --file PATH [--data-file NPZ]` or `... --builtin NAME DATASET`.

It imports the file, builds the model, checks that build() returned a keras.Model and that the data (load_data(),
the .npz, or synthetic data of INPUT_SHAPE) fits the model's inputs and outputs, and counts FLOPs without a hand
count: XLA's cost analysis of the jitted forward pass and of the gradient step, per sample. XLA counts a
multiply-add as 2 FLOPs, as the five models' hand counts do; it counts the body of a loop (an RNN's scan) once,
not once per step, which the probe detects in the HLO and reports (`loops`). A build() that raises on JAX (an op
JAX lacks, say tf.*) is `backend_error`, not a problem: that backend's cell will fail saying so, the others run.
Writes one JSON object: the model's facts, or `problem` and `fix`. Python 3.6 syntax (models/ is compiled by 3.6);
runs on Keras 3 with JAX.
"""
import json
import sys
import traceback


def _arrays(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def check_fit(model, ds, path):
    """(problem, fix) when the data does not fit the model's inputs or its labels the outputs, else None."""
    inputs, arrays = model.inputs, _arrays(ds.x_train)
    if len(inputs) != len(arrays):
        return ("%s: the model has %d input(s), the data %d" % (path, len(inputs), len(arrays)),
                "return x_train as a list with one array per model input")
    for i, (tensor, array) in enumerate(zip(inputs, arrays)):
        want = tuple(tensor.shape[1:])
        got = tuple(array.shape[1:])
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            return ("%s: input %d of the model takes samples of shape %s, the data has %s" % (path, i, want, got),
                    "make INPUT_SHAPE / the arrays match the model's Input shape")
    units = model.outputs[0].shape[-1]
    y = ds.y_train
    classes = ds.num_classes or units
    if getattr(y, "ndim", 1) == 1:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= classes:
            return ("%s: labels run from %d to %d, outside the %d classes (0..%d)" % (path, low, high, classes,
                                                                                    classes - 1),
                    "labels are class indices below NUM_CLASSES (and the model's output units)")
    return None


def flop_counts(keras, model, x, y, loss_name):
    """Forward and gradient-step FLOPs per sample from XLA's cost analysis, and whether the HLO loops."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]
    loss_fn = keras.losses.get(loss_name)

    def forward(tv, ntv, inputs):
        return model.stateless_call(tv, ntv, inputs, training=False)[0]

    def loss(tv, ntv, inputs, labels):
        return keras.ops.mean(loss_fn(labels, model.stateless_call(tv, ntv, inputs, training=True)[0]))

    def cost(fn, *args):
        lowered = jax.jit(fn).lower(*args)
        analysis = lowered.compile().cost_analysis()
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        return float(analysis.get("flops", 0.0)), "while" in lowered.as_text()

    batch = len(y)
    fwd, loops = cost(forward, trainable, fixed, x)
    grad, _ = cost(jax.grad(loss), trainable, fixed, x, y)
    return {"flop_per_sample": fwd / batch, "train_step_flop_per_sample": grad / batch, "loops": loops,
            "flop_method": "XLA cost analysis of the jitted forward pass (jax %s), per sample of a batch of %d"
                           % (jax.__version__, batch)}


def probe_file(keras, path, data_file):
    from models import compat, user_model

    module = user_model.load(path)
    api = compat.KerasAPI(keras)
    spec = {"run": {"train_samples": 256, "test_samples": 64}, "model": {"data_file": data_file},
            "data": {"source": "real"}, "cell": {"seed": 0}}
    ds = module.load_dataset(spec)
    out = {"title": module.setting("TITLE"), "batch_size": module.setting("BATCH_SIZE"),
           "epochs": module.setting("EPOCHS"), "data_source": ds.info["source"],
           "data_train_samples": ds.info["train_samples"]}
    try:
        model = module.build(api, ds)
    except user_model.UserModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - an op JAX lacks fails the JAX cell, not the run
        traceback.print_exc()
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return dict(out, backend_error="build() failed on JAX: %s: %s" % (type(exc).__name__,
                                                                          lines[-1] if lines else ""))
    out.update(params=int(model.count_params()), input_shapes=[list(t.shape[1:]) for t in model.inputs])
    problem = check_fit(model, ds, path)
    if problem is not None:
        return dict(out, problem=problem[0], fix=problem[1])
    batch = min(len(ds.y_train), int(out["batch_size"] or user_model.DEFAULT_BATCH_SIZE))
    x = [a[:batch] for a in ds.x_train] if isinstance(ds.x_train, (list, tuple)) else ds.x_train[:batch]
    out.update(flop_counts(keras, model, x, ds.y_train[:batch], module.LOSS))
    return out


def probe_builtin(keras, name, dataset):
    """A model of the matrix on synthetic data of its dataset's real shapes (the caller reads `dataset` from
    matrix.yaml): the cost analysis beside its hand count."""
    import importlib

    from models import compat, data

    module = importlib.import_module("models." + name)
    api = compat.KerasAPI(keras)
    ds = data.load(keras, dataset, module.INPUT_LAYOUT, api.data_format, "synthetic", 64, 32, 0)
    model = module.build(api, ds)
    x = [a[:32] for a in ds.x_train] if isinstance(ds.x_train, (list, tuple)) else ds.x_train[:32]
    return dict(flop_counts(keras, model, x, ds.y_train[:32], module.LOSS), params=int(model.count_params()))


def probe_suite(keras, name, spec_path):
    """A keras.io suite model at a configuration (`spec_path`: a worker spec's model block and run sizes): XLA's
    cost analysis of one batch, beside models/hub_flops.py's count (tests/test_keras_hub.py)."""
    import importlib

    from models import compat

    with open(spec_path) as handle:
        spec = json.load(handle)
    module = importlib.import_module("models." + name)
    ds = module.MODEL.load_dataset(spec)
    model = module.MODEL.build(compat.KerasAPI(keras), ds)
    batch = spec["model"]["config"]["batch_size"]
    x = {k: v[:batch] for k, v in ds.x_train.items()} if isinstance(ds.x_train, dict) else ds.x_train[:batch]
    return dict(flop_counts(keras, model, x, ds.y_train[:batch], module.LOSS), params=int(model.count_params()))


def main(argv):
    out_path, mode, target = argv[0], argv[1], argv[2]
    data_file = argv[4] if len(argv) > 4 and argv[3] == "--data-file" else None
    try:
        import keras

        if mode == "--builtin":
            result = probe_builtin(keras, target, argv[3])
        elif mode == "--suite":
            result = probe_suite(keras, target, argv[3])
        else:
            result = probe_file(keras, target, data_file)
    except Exception as exc:  # noqa: BLE001 - whatever the file does wrong is the user's to fix, said plainly
        from models.user_model import UserModelError

        traceback.print_exc()
        lines = [line for line in str(exc).splitlines() if line.strip()]
        if isinstance(exc, UserModelError):  # the message names the file and the fix
            result = {"problem": str(exc), "fix": ""}
        else:
            result = {"problem": "%s: %s: %s" % (target, type(exc).__name__, lines[-1] if lines else ""),
                      "fix": "fix the file: it must import and build with Keras 3 (the probe ran it on JAX)"}
    with open(out_path, "w") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
