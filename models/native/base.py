"""What every native twin shares: the driver interface of models/keras_driver.py around a plain training loop.

The loop is the one a framework's user writes, and the one Keras 3's fit runs: per epoch a fresh permutation of
the training set, batches of `batch_size` in that order (the last one partial), one train step per batch whose loss
and accuracy are summed on the device and read once at the epoch's end, then the validation pass over the test
split in order. It drives the same EpochClock at the same points as Keras' callback (epoch begin, validation begin
and end, epoch end), and the worker times the whole `fit` around it, so both sides of a comparison are timed by one
clock. A framework subclass supplies the device, the steps and the weights (`Twin` in torch_twin, jax_twin,
tf_twin).
"""

from __future__ import annotations

import importlib
import math
import random
from typing import Any

import numpy as np

from models import data, memory, provenance
from models.native.init import initial_weights
from models.native.layers import Chain, NativeAPI, NoNativeTwin

OPTIMIZERS = ("rmsprop", "adadelta")


class UnsupportedSetting(ValueError):
    """A variant asks the twin for something only Keras has (the matrix's applies_to should keep it away)."""


class LazyKeras:
    """Keras for the data loader's download only: a twin never imports Keras to train (models/data.py asks Keras
    to fetch a dataset that is not in the cache; everything else it reads itself)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("keras"), name)


def known_issue(spec: dict[str, Any]) -> dict[str, Any] | None:
    cell = spec["cell"]
    for issue in spec["backend"].get("known_issues") or []:
        if cell["model"] in issue["models"] and (not issue.get("profiles") or cell["profile"] in issue["profiles"]):
            return issue
    return None


class NativeDriver:
    """The interface models/worker.py drives (documented in models/keras_driver.py), without Keras."""

    framework_driver = "native"
    framework = ""  # the module the matrix names (backend.framework)
    auto_jit = False  # what Keras 3's jit_compile="auto" resolves to on this framework (a CPU)
    compile_context = None

    def __init__(self, spec: dict[str, Any], variant: dict[str, Any], gpus_hint):
        self.spec, self.variant, self.gpus_hint = spec, variant, gpus_hint
        for key in ("steps_per_execution", "mixed_precision"):
            if variant.get(key):
                raise UnsupportedSetting(f"{key} is a Keras setting; the native twins have none")
        if variant.get("recurrent_activation") not in (None, "sigmoid"):
            raise UnsupportedSetting(f"LSTM gates {variant['recurrent_activation']}: the twins' gates are sigmoids")
        self.rng = np.random.RandomState(spec["cell"]["seed"])
        self.threads: dict[str, Any] = {}
        self.gpu: dict[str, Any] = {"available": None}
        self.on_gpu = False
        self.chain: Chain | None = None
        self.jit_resolved: bool | None = None

    # -- import ------------------------------------------------------------------------------------------------
    def import_framework(self) -> dict[str, str]:
        version, self.threads, self.gpu = provenance.framework_info(self.framework)
        self.on_gpu = bool(self.gpu.get("available")) and bool(self.gpus_hint(self.gpu))
        self._import()
        return {"python": provenance.python_version(), self.framework: version, "numpy": np.__version__,
                **self.extra_versions()}

    def extra_versions(self) -> dict[str, str]:
        return {}

    def dtype_policy(self) -> str:
        return "float32"  # the twins compute in float32 (no mixed precision: the matrix keeps those variants away)

    def known_issue(self, spec: dict[str, Any]) -> dict[str, Any] | None:
        return known_issue(spec)

    @property
    def recurrent_activation(self) -> str:
        return "sigmoid"

    @property
    def data_format(self) -> str:
        return self.variant["data_format"]

    # -- data and model ----------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """One NumPy stream for the initial weights and the epochs' permutations; the framework's own for dropout."""
        random.seed(seed)
        np.random.seed(seed)
        self.rng = np.random.RandomState(seed)
        self._seed(seed)

    def load_data(self, spec: dict[str, Any], layout: str, module=None):
        if getattr(module, "user", False):
            raise NoNativeTwin("a model file of your own has no native twin")
        run = spec["run"]
        return data.load(LazyKeras(), spec["model"]["dataset"], layout, self.data_format, spec["data"]["source"],
                         run["train_samples"], run["test_samples"], spec["cell"]["seed"],
                         offline_wheel=spec["data"].get("offline_wheel"), cache_dir=spec["data"].get("cache_dir"))

    def build(self, module, ds) -> int:
        """Record the model file's chain, draw Keras' initial weights, build the twin; the parameter count."""
        if self.spec["model"].get("module"):
            raise NoNativeTwin(f"a model file of your own ({self.spec['model']['module']}) has no native twin")
        self.chain = module.build(NativeAPI(self.data_format), ds)
        optimizer = dict(self.spec["model"]["optimizer"])
        if optimizer["name"] not in OPTIMIZERS or optimizer.get("decay"):
            raise NoNativeTwin(f"optimizer {optimizer['name']} (decay {optimizer.get('decay')}): the twins have "
                               f"{', '.join(OPTIMIZERS)} without decay")
        setting = self.variant["jit_compile"]
        self.jit_resolved = self.resolve_auto_jit() if setting == "auto" else bool(setting)
        self._build(self.chain, initial_weights(self.chain, self.rng), optimizer, self.jit_resolved)
        return self.count_params()

    def resolve_auto_jit(self) -> bool:
        return self.auto_jit

    def gate_probe(self, xs: list[float]) -> list[float] | None:
        """The LSTM gates' function applied to `xs` (None without an LSTM), as the Keras driver records it."""
        if not self.chain.has("lstm"):
            return None
        return [float(v) for v in self.sigmoid(np.asarray(xs, np.float32))]

    # -- training and evaluation -------------------------------------------------------------------------------
    def fit(self, ds, clock, fit_kwargs: dict[str, Any]) -> dict[str, Any]:
        if fit_kwargs.get("validation_split"):
            raise NoNativeTwin("validation_split (the twins validate on the test split)")
        batch, epochs = fit_kwargs["batch_size"], fit_kwargs["epochs"]
        n = fit_kwargs.get("samples_per_epoch") or len(ds.y_train)
        x, y = self.place(ds.x_train[:n]), self.place(ds.y_train[:n])
        x_val, y_val = (self.place(a) for a in fit_kwargs["validation_data"])
        n_val = len(fit_kwargs["validation_data"][1])
        in_order = self.order(np.arange(n_val))
        clock.train_begin()
        for _ in range(epochs):
            clock.epoch_begin()
            loss, accuracy = self.run_epoch(x, y, self.order(self.rng.permutation(n)), batch, n, train=True)
            clock.validation_begin()
            val_loss, val_accuracy = self.run_epoch(x_val, y_val, in_order, batch, n_val, train=False)
            clock.validation_end()
            clock.epoch_end({"loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy})
        return {"steps": math.ceil(n / batch), "samples": None}

    @property
    def host_fed(self) -> bool:
        """`twin_feed: host` (variant native-host-feed): each batch gathered on the host and copied to the device
        per step, as Keras feeds NumPy arrays, instead of the whole set on the device gathered there. The two
        twins' difference is what feeding costs; Keras against the host-fed twin is what Keras adds beyond it."""
        return self.variant.get("twin_feed") == "host"

    def place(self, array: np.ndarray):
        """Where a data set lives during training: on the device, or on the host when host-fed."""
        return array if self.host_fed else self.to_device(array)

    def order(self, order: np.ndarray):
        return order if self.host_fed else self.index(order)

    def run_epoch(self, x, y, order, batch: int, n: int, train: bool) -> tuple[float, float]:
        """One pass over `order` in batches: the mean loss and accuracy per sample (Keras' epoch logs)."""
        step = self.train_step if train else self.test_step
        state = self.metrics_start(train)
        if self.host_fed:
            whole = {}  # the in-batch index of a full and of a last partial batch, made once per size
            for start in range(0, n, batch):
                take = order[start:start + batch]
                if len(take) not in whole:
                    whole[len(take)] = self.index(np.arange(len(take)))
                state = step(self.to_device(x[take]), self.to_device(y[take]), whole[len(take)], state)
        else:
            for start in range(0, n, batch):
                state = step(x, y, order[start:start + batch], state)
        loss_sum, correct = self.metrics_read(state)
        return loss_sum / n, correct / n

    def evaluate(self, x, y, batch_size: int) -> tuple[float, float]:
        return self.run_epoch(self.place(x), self.place(y), self.order(np.arange(len(y))), batch_size, len(y),
                              train=False)

    # -- inference: the forward pass, returning NumPy --------------------------------------------------------------
    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return self.forward_numpy(x)

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return np.concatenate([self.forward_numpy(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    # -- where it ran, what it held ----------------------------------------------------------------------------
    def gpu_peak(self):
        return memory.gpu_peak(self.framework, self.gpu)

    # -- what a framework supplies ------------------------------------------------------------------------------
    def _import(self) -> None:
        raise NotImplementedError

    def _seed(self, seed: int) -> None:
        raise NotImplementedError

    def _build(self, chain: Chain, weights: list[np.ndarray], optimizer: dict[str, Any], jit: bool) -> None:
        raise NotImplementedError

    def to_device(self, array: np.ndarray):
        raise NotImplementedError

    def index(self, order: np.ndarray):
        """The epoch's order as the steps take it (a host array unless the framework wants a tensor)."""
        return order.astype(np.int32)

    def count_params(self) -> int:
        raise NotImplementedError

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load weights given in Keras' order and layout (a Keras model's get_weights(); tests copy them over)."""
        raise NotImplementedError
