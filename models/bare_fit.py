"""The baseline the harness is measured against: a plain `model.fit`, timed around the call, no callback.

`python -m models.bare_fit SPEC.json OUT.json` builds the cell's model on the cell's data exactly as the worker
does, then: fit 1 epoch (warm-up: build, trace, compile), fit 1 epoch timed (T1), fit E epochs timed (TE).
Steady seconds per epoch = (TE - T1) / (E - 1): whatever one fit call costs besides its epochs cancels out.

Two options take the harness apart (tooling/bench.py --ablation): `--timer` passes the harness's own epoch timer
(models/timing.py, with its queued-work wait) to fit, so bare + timer against bare is what the timer costs;
`--batch-hook` passes an empty `on_train_batch_end` callback, which switches off Keras 3's asynchronous callback
dispatch: the positive control, a cost the benchmark must be able to see. Python 3.6 compatible.
"""
import importlib
import json
import sys
import time

OPTIONS = ("--timer", "--batch-hook")


def harness_timer(keras, api, framework, gpu, wait=True):
    """The harness's epoch timer as a cell passes it to fit (models/keras_driver.py), with its queued-work wait
    unless `wait` is False; its clock records nothing anywhere."""
    from models.queued import queued_work_waiter
    from models.timing import EpochClock, EventLog, make_epoch_timer

    waiter = queued_work_waiter(framework, bool(gpu.get("available"))) if wait and api.generation == 3 else None
    return make_epoch_timer(keras, EpochClock(EventLog(None)), api.metric_name, api.generation, waiter)


def batch_hook(keras):
    """An empty on_train_batch_end: the positive control that switches off Keras 3's asynchronous dispatch."""
    class BatchHook(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    return BatchHook()


def callbacks(keras, api, spec, gpu, options):
    """The callbacks the options ask for (none by default: a bare fit)."""
    out = []
    if "--timer" in options:
        out.append(harness_timer(keras, api, spec["backend"]["framework"], gpu))
    if "--batch-hook" in options:
        out.append(batch_hook(keras))
    return out


def same_arithmetic(api, spec, gpu):
    """The cell's precision settings (models/precision.py), so bare and harness compute alike: on a GPU JAX's own
    default is TF32, the cell's full float32."""
    from models import precision

    variant = spec["variant"]
    if variant.get("mixed_precision"):
        api.set_mixed_precision(variant["mixed_precision"])
    return precision.apply(spec["backend"]["framework"], variant.get("float32_precision") or "float32", gpu,
                           api.dtype_policy(), variant.get("cudnn_benchmark"))


def main(argv):
    options = [a for a in argv if a.startswith("--")]
    unknown = [a for a in options if a not in OPTIONS]
    if unknown:
        sys.stderr.write("unknown option(s) %s; known: %s\n" % (" ".join(unknown), " ".join(OPTIONS)))
        return 2
    argv = [a for a in argv if not a.startswith("--")]
    with open(argv[0]) as handle:
        spec = json.load(handle)
    import keras

    from models import compat, data, provenance

    model_spec, run_spec = spec["model"], spec["run"]
    api = compat.KerasAPI(keras, data_format=spec["variant"]["data_format"])  # the cell's own settings
    gpu = provenance.framework_info(spec["backend"]["framework"])[2]  # probed once, for both uses
    arithmetic = same_arithmetic(api, spec, gpu)
    api.set_seed(spec["cell"]["seed"])
    module = importlib.import_module("models." + spec["cell"]["model"])
    ds = data.load(keras, model_spec["dataset"], module.INPUT_LAYOUT, api.data_format, spec["data"]["source"],
                   run_spec["train_samples"], run_spec["test_samples"], spec["cell"]["seed"],
                   offline_wheel=spec["data"].get("offline_wheel"), cache_dir=spec["data"].get("cache_dir"))
    model = module.build(api, ds)
    api.compile(model, api.optimizer(model_spec["optimizer"]), module.LOSS, spec["variant"]["jit_compile"])
    epochs = run_spec["epochs"] - 1
    kwargs = dict(batch_size=model_spec["batch_size"], validation_data=(ds.x_test, ds.y_test), verbose=0,
                  callbacks=callbacks(keras, api, spec, gpu, options))

    def timed_fit(n):
        t = time.perf_counter()
        model.fit(ds.x_train, ds.y_train, epochs=n, **kwargs)
        return time.perf_counter() - t

    first = timed_fit(1)
    one = timed_fit(1)
    many = timed_fit(epochs)
    out = {"options": options, "precision": arithmetic, "first_fit_s": first, "one_epoch_fit_s": one,
           "epochs": epochs, "many_epochs_fit_s": many,
           "steady_epoch_s": (many - one) / (epochs - 1), "data": ds.info}
    with open(argv[1], "w") as handle:
        json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
