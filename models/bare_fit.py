"""The baseline the harness is measured against: a plain `model.fit`, timed around the call, no callback.

`python -m models.bare_fit SPEC.json OUT.json` builds the cell's model on the cell's data exactly as the worker
does, then: fit 1 epoch (warm-up: build, trace, compile), fit 1 epoch timed (T1), fit E epochs timed (TE).
Steady seconds per epoch = (TE - T1) / (E - 1): whatever one fit call costs besides its epochs cancels out.
Python 3.6 compatible.
"""
import importlib
import json
import sys
import time


def main(argv):
    with open(argv[0]) as handle:
        spec = json.load(handle)
    import keras

    from models import compat, data

    model_spec, run_spec = spec["model"], spec["run"]
    api = compat.KerasAPI(keras, data_format=spec["variant"]["data_format"])  # the cell's own settings
    api.set_seed(spec["cell"]["seed"])
    module = importlib.import_module("models." + spec["cell"]["model"])
    ds = data.load(keras, model_spec["dataset"], module.INPUT_LAYOUT, api.data_format, spec["data"]["source"],
                   run_spec["train_samples"], run_spec["test_samples"], spec["cell"]["seed"],
                   offline_wheel=spec["data"].get("offline_wheel"), cache_dir=spec["data"].get("cache_dir"))
    model = module.build(api, ds)
    api.compile(model, api.optimizer(model_spec["optimizer"]), module.LOSS, spec["variant"]["jit_compile"])
    epochs = run_spec["epochs"] - 1
    kwargs = dict(batch_size=model_spec["batch_size"], validation_data=(ds.x_test, ds.y_test), verbose=0)

    def timed_fit(n):
        t = time.perf_counter()
        model.fit(ds.x_train, ds.y_train, epochs=n, **kwargs)
        return time.perf_counter() - t

    first = timed_fit(1)
    one = timed_fit(1)
    many = timed_fit(epochs)
    out = {"first_fit_s": first, "one_epoch_fit_s": one, "epochs": epochs, "many_epochs_fit_s": many,
           "steady_epoch_s": (many - one) / (epochs - 1), "data": ds.info}
    with open(argv[1], "w") as handle:
        json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
