"""The Keras driver: what the worker's stages ask of a cell's trainer, done through Keras (any generation).

A driver is what the worker (models/worker.py) calls stage by stage; the native twins (models/native/) implement
the same methods with the framework alone, so both sides of a comparison pass through the same stages, timing
and result. The methods:

    import_framework()             -> versions {python, keras, keras_backend, <framework>, numpy}
    known_issue(spec)              -> the backend's known issue for this cell, or None
    load_data(spec, layout, module) -> models.data.Dataset (the worker times it as the data stage)
    build(module, ds)              -> parameter count; compiles with the model's optimizer and the variant
    fit(ds, clock, fit_kwargs)     -> what the trainer was told per epoch (fit_params)
    evaluate(x, y, batch_size)     -> (loss, accuracy)
    predict_on_batch(x), predict(x, batch_size): the inference calls, each returning host (NumPy) arrays
    weight_device(gpu_available), gate_probe(xs), gpu_peak_mb()

Python 3.6 compatible.
"""
import importlib

from models import compat, provenance
from models.queued import queued_work_waiter
from models.timing import make_epoch_timer


def known_issue(spec, keras_version):
    """The backend's known issue that matches this cell's model, profile and the installed Keras, or None."""
    cell = spec["cell"]
    for issue in spec["backend"].get("known_issues") or []:
        if cell["model"] not in issue["models"]:
            continue
        if issue.get("keras") and not keras_version.startswith(issue["keras"]):
            continue
        if issue.get("profiles") and cell["profile"] not in issue["profiles"]:
            continue
        return issue
    return None


class KerasDriver(object):
    framework_driver = "keras"

    def __init__(self, spec, variant, gpus_hint):
        self.spec = spec
        self.variant = variant
        self.gpus_hint = gpus_hint  # a function: GPUs the cell has, known once the framework is imported
        self.keras = self.api = self.model = self.module = None
        self.jit_resolved = None
        self.fit_params = {}

    # -- import ------------------------------------------------------------------------------------------------
    def import_framework(self):
        self.keras = importlib.import_module("keras")
        framework = self.spec["backend"]["framework"]
        self.fw_version, self.threads, self.gpu = provenance.framework_info(framework)
        self.api = compat.KerasAPI(self.keras, data_format=self.variant["data_format"], gpus=self.gpus_hint(self.gpu),
                                   recurrent_activation=self.variant.get("recurrent_activation"),
                                   time_distributed=self.variant.get("time_distributed"))
        if self.variant.get("mixed_precision"):
            self.api.set_mixed_precision(self.variant["mixed_precision"])
        if self.api.backend_name() != self.spec["backend"]["keras_backend"]:
            raise RuntimeError("KERAS_BACKEND asked for %r but Keras loaded %r"
                               % (self.spec["backend"]["keras_backend"], self.api.backend_name()))
        return {
            "python": provenance.python_version(),
            "keras": self.keras.__version__,
            "keras_backend": self.api.backend_name(),
            framework: self.fw_version,
            "numpy": importlib.import_module("numpy").__version__,
        }

    def known_issue(self, spec):
        return known_issue(spec, self.keras.__version__)

    def dtype_policy(self):
        return self.api.dtype_policy()

    @property
    def recurrent_activation(self):
        return self.api.recurrent_activation

    @property
    def data_format(self):
        return self.api.data_format

    # -- data and model ----------------------------------------------------------------------------------------
    def seed(self, seed):
        self.api.set_seed(seed)

    def load_data(self, spec, layout, module=None):
        # a model file of the user's own (models/user_model.py) and a keras.io suite model (models/hub.py) bring
        # their own data
        if callable(getattr(module, "load_dataset", None)):
            return module.load_dataset(spec)
        from models import data  # NumPy, and only once Keras itself imported (an environment without it says so)

        run_spec = spec["run"]
        return data.load(
            self.keras, spec["model"]["dataset"], layout, self.api.data_format, spec["data"]["source"],
            run_spec["train_samples"], run_spec["test_samples"], spec["cell"]["seed"],
            offline_wheel=spec["data"].get("offline_wheel"), cache_dir=spec["data"].get("cache_dir"),
        )

    def build(self, module, ds):
        self.model = module.build(self.api, ds)
        optimizer = self.api.optimizer(self.spec["model"]["optimizer"])
        jit, steps = self.variant["jit_compile"], self.variant.get("steps_per_execution")
        self.module = module
        if callable(getattr(module, "compile_model", None)):  # its own compile, told the variant's settings
            self.jit_resolved = module.compile_model(self.keras, self.model, optimizer, jit, steps)
        else:
            self.jit_resolved = self.api.compile(self.model, optimizer, module.LOSS, jit, steps)
        return self.api.count_params(self.model)

    @property
    def compile_context(self):
        return self.api.compile_context

    def gate_probe(self, xs):
        return self.api.gate_probe(self.model, xs)

    # -- training and evaluation -------------------------------------------------------------------------------
    def fit(self, ds, clock, fit_kwargs):
        wait = queued_work_waiter(self.spec["backend"]["framework"], bool((self.gpu or {}).get("available")))
        wait = wait if self.api.generation == 3 else None
        timer = make_epoch_timer(self.keras, clock, self.api.metric_name, self.api.generation, wait)
        extra = getattr(self.module, "fit_callbacks", None)  # the suite's keras.io step window (models/hub.py)
        callbacks = [timer] + (extra(self.keras) if callable(extra) else [])
        self.api.fit(self.model, ds.x_train, ds.y_train, callbacks=callbacks, **fit_kwargs)
        return timer.fit_params

    def evaluate(self, x, y, batch_size):
        scores = self.model.evaluate(x, y, batch_size=batch_size, verbose=0)
        return float(scores[0]), float(scores[1])

    # -- inference -----------------------------------------------------------------------------------------------
    def predict_on_batch(self, x):
        return self.model.predict_on_batch(x)

    def predict(self, x, batch_size):
        return self.model.predict(x, batch_size=batch_size, verbose=0)

    # -- where it ran, what it held ----------------------------------------------------------------------------
    def weight_device(self, gpu_available):
        return provenance.weight_device(self.model, self.spec["backend"]["framework"], gpu_available)

    def gpu_peak(self):
        """(peak MiB, method, note) from the framework's own counter (models/memory.py)."""
        from models import memory

        return memory.gpu_peak(self.spec["backend"]["framework"], self.gpu)
