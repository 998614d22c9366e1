"""A Keras 3 model file of the user's own, as the worker's stages see it (docs/how-to/own-model.md).

The contract a file meets:
    build()              -> an uncompiled keras.Model (required)
    compile(model)       optional; may take keyword arguments `jit_compile` and `steps_per_execution`, which the
                         variants set; default: Adam, sparse categorical cross-entropy, accuracy
    load_data()          optional: ((x_train, y_train), (x_test, y_test)) as NumPy arrays
    INPUT_SHAPE, NUM_CLASSES (and INPUT_DTYPE, default float32; INPUT_MAX, the bound of integer inputs such as
                         token ids): without load_data() or --data-file, the cell trains on synthetic data of
                         that shape, recorded as synthetic
    BATCH_SIZE, EPOCHS   optional (32, 10); the profile's limits still cut epochs and samples
    TITLE                optional: the test's name in reports (default: the file's name)
The file runs with keras.layers and keras.ops only when it is to run on every backend: a framework's own op
works on that backend alone, and that cell fails with a hint saying so. Python 3.6 syntax (models/ is compiled
by 3.6), although only the Keras 3 environments run it.
"""
import hashlib
import importlib.util
import inspect
import os

import numpy as np

from models.data import Dataset, sha256_file

DEFAULT_BATCH_SIZE = 32
DEFAULT_EPOCHS = 10
SYNTHETIC_SIZES = (2048, 512)  # train, test samples when neither the profile nor the file says
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
PORTABLE_HINT = ("a model file runs on every backend only through keras.layers and keras.ops: replace framework "
                 "calls (tf.*, torch.*, jax.*) with keras.ops")


class UserModelError(Exception):
    """What is wrong with the file, and how to fix it."""


def load(path):
    """The file as a module (its own name, so two files never clash), wrapped in the worker's model interface."""
    if not os.path.isfile(path):
        raise UserModelError("%s: no such file; pass the path of a Python file with build()" % path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location("kbm_user_model_" + digest, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "build", None)):
        raise UserModelError("%s defines no build(); a model file needs build() returning an uncompiled keras.Model"
                             % path)
    return UserModel(module, path)


def _first(data, n):
    if n is None:
        return data
    return [part[:n] for part in data] if isinstance(data, (list, tuple)) else data[:n]


def _digest(arrays):
    digest = hashlib.sha256()
    for a in arrays:
        for part in (a if isinstance(a, (list, tuple)) else [a]):
            digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


class UserModel(object):
    """The worker's model interface (INPUT_LAYOUT, build, and the driver's hooks) over the user's module."""

    user = True
    INPUT_LAYOUT = "user"
    LOSS = "sparse_categorical_crossentropy"

    def __init__(self, module, path):
        self.module, self.path = module, path

    def setting(self, name, default=None):
        return getattr(self.module, name, default)

    def build(self, api, ds):
        keras = api.keras
        model = self.module.build()
        if not isinstance(model, keras.Model):
            raise UserModelError("%s: build() returned %s, not a keras.Model; return the model, uncompiled"
                                 % (self.path, type(model).__name__))
        return model

    def compile_model(self, keras, model, optimizer, jit_compile, steps_per_execution):
        """The file's compile(model), given the variant's settings where it takes them; else the default."""
        options = {"jit_compile": jit_compile}
        if steps_per_execution:
            options["steps_per_execution"] = steps_per_execution
        own = getattr(self.module, "compile", None)
        if own is None:
            model.compile(optimizer=optimizer, loss=self.LOSS, metrics=["accuracy"], **options)
        else:
            params = inspect.signature(own).parameters
            takes = any(p.kind == p.VAR_KEYWORD for p in params.values())
            own(model, **dict((k, v) for k, v in options.items() if takes or k in params))
        return bool(model.jit_compile)

    def load_dataset(self, spec):
        """load_data(), the --data-file arrays, or synthetic data of INPUT_SHAPE: the first N of each split."""
        run, model = spec["run"], spec["model"]
        if spec["data"]["source"] != "synthetic" and model.get("data_file"):
            with np.load(model["data_file"]) as npz:
                arrays = [npz[k] for k in NPZ_KEYS]
            info = {"source": "file", "sha256": sha256_file(model["data_file"]), "files": [model["data_file"]]}
        elif spec["data"]["source"] != "synthetic" and callable(getattr(self.module, "load_data", None)):
            (x, y), (tx, ty) = self.module.load_data()
            arrays = [x, y, tx, ty]
            info = {"source": "load_data", "sha256": _digest(arrays), "files": [self.path]}
        else:
            arrays = self.synthetic(run["train_samples"], run["test_samples"], spec["cell"]["seed"])
            info = {"source": "synthetic", "sha256": _digest(arrays), "files": [], "seed": spec["cell"]["seed"]}
        n_train, n_test = run["train_samples"], run["test_samples"]
        x, y = _first(arrays[0], n_train), _first(arrays[1], n_train)
        tx, ty = _first(arrays[2], n_test), _first(arrays[3], n_test)
        shape = tuple(x[0].shape[1:]) if isinstance(x, (list, tuple)) else tuple(x.shape[1:])
        info.update({"dataset": "user", "train_samples": int(len(y)), "test_samples": int(len(ty))})
        return Dataset(x, y, tx, ty, shape, self.setting("NUM_CLASSES"), info)

    def synthetic(self, n_train, n_test, seed):
        shape, classes = self.setting("INPUT_SHAPE"), self.setting("NUM_CLASSES")
        if shape is None or classes is None:
            raise UserModelError("%s has no load_data() and no INPUT_SHAPE and NUM_CLASSES: give one of them, or "
                                 "run it with --data-file FILE.npz" % self.path)
        rng = np.random.RandomState(seed)
        n_train, n_test = n_train or SYNTHETIC_SIZES[0], n_test or SYNTHETIC_SIZES[1]
        dtype = np.dtype(self.setting("INPUT_DTYPE", "float32"))

        def inputs(n):
            if dtype.kind in "iu":
                return rng.randint(0, int(self.setting("INPUT_MAX", 2)), size=(n,) + tuple(shape)).astype(dtype)
            return rng.standard_normal((n,) + tuple(shape)).astype(dtype)

        labels = lambda n: rng.randint(0, int(classes), size=n).astype(np.int32)  # noqa: E731
        return [inputs(n_train), labels(n_train), inputs(n_test), labels(n_test)]
