"""The one place where Keras generations differ.

Model definitions call `api.Conv2D(...)`, `api.optimizer(spec)`, `api.fit(...)` and friends; this module maps
those onto the installed Keras: Keras 3, Keras 2 (2.0.8 and 2.2.4, the 2017 environments and the CNTK variant)
and Keras 1.2.2 (the dmlc fork with the MXNet backend). Each older generation is a subclass that overrides only
the spellings it changed (lr for learning_rate, decay as an optimizer argument, nb_epoch, Convolution2D(n, r, c,
border_mode=...), merge(mode='sum'), dim_ordering 'th'/'tf', Model(input=, output=)), never a copy of a model.
Written for Python 3.6 too: no dataclasses, no postponed annotations.
"""
import importlib
import math
import random


class UnsupportedKeras(RuntimeError):
    """The installed Keras generation has no adapter."""


class UnsupportedSetting(ValueError):
    """The variant asks for a setting this Keras generation does not have (the matrix's applies_to should say so)."""


def keras_generation(version):
    return int(str(version).split(".")[0])


def hard_sigmoid_keras2(x):
    """Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1), the LSTM gate activation of Keras 2.0.8 and 1.2.2.

    Keras 3's own `hard_sigmoid` is clip(x / 6 + 0.5, 0, 1), a different function, so naming it would not
    reproduce 2017; this is the 2.x definition written with Keras 3 ops (any backend).
    """
    from keras import ops

    return ops.clip(ops.add(ops.multiply(x, 0.2), 0.5), 0.0, 1.0)


# the matrix's names of the LSTM gate activation, per generation: Keras 2/1 call the 0.2-slope one `hard_sigmoid`
RECURRENT_ACTIVATIONS = {
    3: {"sigmoid": "sigmoid", "hard_sigmoid_keras2": hard_sigmoid_keras2},
    2: {"sigmoid": "sigmoid", "hard_sigmoid_keras2": "hard_sigmoid"},
    1: {"sigmoid": "sigmoid", "hard_sigmoid_keras2": "hard_sigmoid"},
}
DEFAULT_RECURRENT_ACTIVATION = {3: "sigmoid", 2: "hard_sigmoid_keras2", 1: "hard_sigmoid_keras2"}


def KerasAPI(keras, data_format="channels_last", gpus=0, recurrent_activation=None,  # noqa: N802 - what callers call
             time_distributed=None):
    """The adapter for the installed Keras (Keras3API, Keras2API or Keras1API); `gpus`: GPUs the cell may use;
    `recurrent_activation`: the LSTM gates by the matrix's name (None: the generation's default);
    `time_distributed`: "fold" runs a TimeDistributed layer once over batch x time (None: Keras' own wrapper)."""
    generation = keras_generation(keras.__version__)
    adapters = {3: Keras3API, 2: Keras2API, 1: Keras1API}
    if generation not in adapters:
        raise UnsupportedKeras("Keras %s has no adapter in models/compat.py (supported: 1.2, 2.x, 3.x)"
                               % keras.__version__)
    api = adapters[generation](keras, data_format, recurrent_activation)
    api.gpus = gpus or 0
    if time_distributed not in (None, "fold") or (time_distributed and generation != 3):
        raise UnsupportedSetting("time_distributed %r: only 'fold', on Keras 3" % time_distributed)
    api.time_distributed = time_distributed
    return api


class Keras3API(object):
    """Layers, optimizers and settings spelled for Keras 3; the base the older generations override."""

    generation = 3
    gpus = 0
    time_distributed = None  # "fold": TimeDistributed as one call over batch x time (variant time-folded)
    compile_context = None  # the device list passed to compile, where the Keras generation takes one (MXNet)

    def __init__(self, keras, data_format="channels_last", recurrent_activation=None):
        self.keras = keras
        self.version = keras.__version__
        self.layers = keras.layers
        self.data_format = data_format
        # None: the generation's own default, recorded under the matrix's name
        self.recurrent_activation = recurrent_activation or DEFAULT_RECURRENT_ACTIVATION[self.generation]
        if self.recurrent_activation not in RECURRENT_ACTIVATIONS[self.generation]:
            raise UnsupportedSetting("recurrent_activation %r is not one of %s"
                                     % (recurrent_activation, sorted(RECURRENT_ACTIVATIONS[self.generation])))
        self._gate = RECURRENT_ACTIVATIONS[self.generation][self.recurrent_activation]
        self._gate_is_default = recurrent_activation is None
        self._augmentation = None
        self.set_data_format(data_format)

    def set_data_format(self, data_format):
        self.keras.config.set_image_data_format(data_format)

    # -- layers: plain Keras spellings, so older generations can map them one to one --------------------------
    def Input(self, shape, dtype=None):  # noqa: N802 - layer names as Keras spells them
        if dtype is None:
            return self.layers.Input(shape=tuple(shape))
        return self.layers.Input(shape=tuple(shape), dtype=dtype)

    def Dense(self, units, activation=None):  # noqa: N802
        return self.layers.Dense(units, activation=activation)

    def Dropout(self, rate):  # noqa: N802
        return self.layers.Dropout(rate)

    def Activation(self, name):  # noqa: N802
        return self.layers.Activation(name)

    def Conv2D(self, filters, kernel_size, padding="valid", activation=None):  # noqa: N802
        return self.layers.Conv2D(
            filters, kernel_size, padding=padding, activation=activation, data_format=self.data_format
        )

    def MaxPooling2D(self, pool_size):  # noqa: N802
        return self.layers.MaxPooling2D(pool_size=pool_size, data_format=self.data_format)

    def Flatten(self):  # noqa: N802
        return self.layers.Flatten(data_format=self.data_format)

    def LSTM(self, units):  # noqa: N802
        if self._gate_is_default:
            return self.layers.LSTM(units)
        return self.layers.LSTM(units, recurrent_activation=self._gate)

    def gate_probe(self, model, xs):
        """The gate activation of the model's first LSTM applied to `xs`: proof of what the built layers compute
        (None when the model has no LSTM)."""
        fn = self._first_gate(model)
        if fn is None:
            return None
        ops = self.keras.ops
        return [float(v) for v in ops.convert_to_numpy(fn(ops.convert_to_tensor(xs, dtype="float32")))]

    def _first_gate(self, model):
        for layer in model.layers:
            inner = getattr(layer, "layer", layer)  # TimeDistributed wraps the LSTM
            cell = getattr(inner, "cell", inner)
            for owner in (cell, inner):
                for name in ("recurrent_activation", "inner_activation"):
                    fn = getattr(owner, name, None)
                    if callable(fn):
                        return fn
        return None

    def TimeDistributed(self, layer):  # noqa: N802
        """Keras' wrapper, which with a static time axis calls `layer` once per step in a Python loop (28 LSTMs for
        the hierarchical RNN); folded, one call over batch x time and a reshape back, as the native twins run it:
        the same function (the layer sees each step apart either way), one kernel instead of one per step."""
        if self.time_distributed != "fold":
            return self.layers.TimeDistributed(layer)
        ops = self.keras.ops

        def folded(x):
            steps, inner = x.shape[1], tuple(x.shape[2:])
            y = layer(ops.reshape(x, (-1,) + inner))
            return ops.reshape(y, (-1, steps) + tuple(y.shape[1:]))

        return folded

    def Embedding(self, input_dim, output_dim):  # noqa: N802
        return self.layers.Embedding(input_dim, output_dim)

    def RepeatVector(self, n):  # noqa: N802
        return self.layers.RepeatVector(n)

    def add(self, tensors):
        return self.layers.add(tensors)

    def Model(self, inputs, outputs):  # noqa: N802
        model = self._model(inputs, outputs)
        if self._augmentation is not None:  # runs outside the model (Keras 2/1: a generator in fit); travels with it
            model.kbm_augmentation, self._augmentation = self._augmentation, None
        return model

    def _model(self, inputs, outputs):
        return self.keras.Model(inputs, outputs)

    def image_augmentation(self, shift, horizontal_flip):
        """ImageDataGenerator(width/height_shift_range=shift, horizontal_flip) as in-model layers.

        Nearest fill and nearest interpolation, as Keras 2's generator (scipy affine_transform, order 0).
        The layers are active in training only, like the generator fed to fit_generator.
        """
        out = [
            self.layers.RandomTranslation(
                shift, shift, fill_mode="nearest", interpolation="nearest", data_format=self.data_format
            )
        ]
        if horizontal_flip:
            out.append(self.layers.RandomFlip("horizontal", data_format=self.data_format))
        return out

    # -- training -----------------------------------------------------------------------------------------------
    def optimizer(self, spec):
        """Build an optimizer from the matrix's spec; Keras 2's `decay` becomes InverseTimeDecay."""
        opts = self.keras.optimizers
        lr = spec["learning_rate"]
        if spec.get("decay"):
            lr = opts.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=spec["decay"])
        cls = {"rmsprop": opts.RMSprop, "adadelta": opts.Adadelta, "adam": opts.Adam,
               "adamw": opts.AdamW}[spec["name"]]  # adamw: keras-benchmarks' optimizer for the keras.io suite
        return cls(learning_rate=lr, **self._optimizer_extras(spec))

    @staticmethod
    def _optimizer_extras(spec):
        return dict((k, spec[k]) for k in ("rho", "epsilon", "beta_1", "beta_2") if spec.get(k) is not None)

    def compile(self, model, optimizer, loss, jit_compile, steps_per_execution=None):
        kwargs = {"steps_per_execution": steps_per_execution} if steps_per_execution else {}
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit_compile, **kwargs)
        return bool(model.jit_compile)

    def set_mixed_precision(self, policy):
        self.keras.mixed_precision.set_global_policy(policy)

    def dtype_policy(self):
        """Keras' global dtype policy by name (Keras 2.0.8 and 1.2.2 have only floatx)."""
        mixed = getattr(self.keras, "mixed_precision", None)
        if mixed is not None and hasattr(mixed, "global_policy"):
            return str(mixed.global_policy().name)
        return str(self.keras.backend.floatx())

    def fit(self, model, x, y, batch_size, epochs, callbacks, validation_data=None, validation_split=None,
            samples_per_epoch=None):
        """model.fit as the example called it (augmented models feed a generator on Keras 2/1).

        `samples_per_epoch` (whole batches, below len(y)) trains each epoch on that many samples, as the CIFAR
        example's `fit_generator(steps_per_epoch=n // batch_size)`. Keras 3's fit of arrays cannot do it with
        steps_per_epoch (its iterator stops an epoch early once the data runs out), so the arrays are cut to
        whole batches: the same steps and samples per epoch, the last n % batch_size samples never seen.
        """
        kwargs = {"batch_size": batch_size, "epochs": epochs, "verbose": 0, "callbacks": callbacks}
        if validation_split:
            kwargs["validation_split"] = validation_split
        else:
            kwargs["validation_data"] = validation_data
        x, y = _first(x, samples_per_epoch), _first(y, samples_per_epoch)
        return model.fit(x, y, **kwargs)

    def set_seed(self, seed):
        self.keras.utils.set_random_seed(seed)

    def count_params(self, model):
        return int(model.count_params())

    @staticmethod
    def metric_name(name):
        """History keys in the result use Keras 3 names (`accuracy`, not Keras 2's `acc`)."""
        return name.replace("acc", "accuracy") if name.endswith("acc") else name

    def backend_name(self):
        return self.keras.backend.backend()


def _first(data, n):
    """The first n samples of an array or a list of arrays (n None: all of them)."""
    if n is None:
        return data
    if isinstance(data, (list, tuple)):
        return [part[:n] for part in data]
    return data[:n]


class Keras2API(Keras3API):
    """Keras 2.0.8 (and 2.2.4): `lr`, `decay` native, no preprocessing layers, no jit_compile."""

    generation = 2

    def set_data_format(self, data_format):
        self.keras.backend.set_image_data_format(data_format)

    def Flatten(self):  # noqa: N802 - Keras 2.0.8's Flatten has no data_format (the layout is the backend's)
        return self.layers.Flatten()

    def _model(self, inputs, outputs):
        return self.keras.models.Model(inputs=inputs, outputs=outputs)

    def image_augmentation(self, shift, horizontal_flip):
        """No preprocessing layers before Keras 2.3/3: remember the settings; `fit` feeds an ImageDataGenerator
        with them to fit_generator, exactly as the 2017 example did."""
        self._augmentation = {"shift": shift, "horizontal_flip": horizontal_flip}
        return []

    def optimizer(self, spec):
        opts = self.keras.optimizers
        cls = {"rmsprop": opts.RMSprop, "adadelta": opts.Adadelta, "adam": opts.Adam}[spec["name"]]
        return cls(lr=spec["learning_rate"], decay=spec.get("decay") or 0.0, **self._optimizer_extras(spec))

    def compile(self, model, optimizer, loss, jit_compile, steps_per_execution=None):
        if steps_per_execution:
            raise UnsupportedSetting("steps_per_execution needs Keras 3 (Keras %s)" % self.version)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        return False  # no XLA switch in this generation

    def set_mixed_precision(self, policy):
        raise UnsupportedSetting("mixed precision %s needs Keras 3 (Keras %s)" % (policy, self.version))

    def gate_probe(self, model, xs):
        fn = self._first_gate(model)
        if fn is None:
            return None
        backend = self.keras.backend
        return [float(v) for v in backend.eval(fn(backend.variable(xs)))]

    def set_seed(self, seed):
        import numpy as np

        random.seed(seed)
        np.random.seed(seed)  # Keras 2/1 draw initial weights and Theano/CNTK dropout seeds from numpy
        backend = self.backend_name()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.set_random_seed(seed)
        elif backend == "mxnet":
            import mxnet

            mxnet.random.seed(seed)
        elif backend == "cntk":
            import cntk

            cntk.cntk_py.set_fixed_random_seed(seed)

    def _generator(self, augmentation):
        # Keras 2.0.8/1.2.2's `keras.preprocessing` does not import its submodules
        image = getattr(self.keras.preprocessing, "image", None) or importlib.import_module("keras.preprocessing.image")
        return image.ImageDataGenerator(
            width_shift_range=augmentation["shift"], height_shift_range=augmentation["shift"],
            horizontal_flip=augmentation["horizontal_flip"], fill_mode="nearest", **self._generator_format())

    def _generator_format(self):
        return {"data_format": self.data_format}

    def fit(self, model, x, y, batch_size, epochs, callbacks, validation_data=None, validation_split=None,
            samples_per_epoch=None):
        augmentation = getattr(model, "kbm_augmentation", None)
        if augmentation is None:
            kwargs = {"batch_size": batch_size, "verbose": 0, "callbacks": callbacks}
            kwargs[self._epochs_kw] = epochs
            if validation_split:
                kwargs["validation_split"] = validation_split
            else:
                kwargs["validation_data"] = validation_data
            return model.fit(_first(x, samples_per_epoch), _first(y, samples_per_epoch), **kwargs)
        if validation_split:
            raise ValueError("augmented training takes validation_data, not validation_split")
        # the whole training set flows (the generator wraps around it); an epoch is samples_per_epoch of it
        flow = self._generator(augmentation).flow(x, y, batch_size=batch_size, seed=int(random.random() * 2 ** 31))
        return self._fit_generator(model, flow, samples_per_epoch or len(y), batch_size, epochs, callbacks,
                                   validation_data)

    _epochs_kw = "epochs"

    def _fit_generator(self, model, flow, n, batch_size, epochs, callbacks, validation_data):
        return model.fit_generator(flow, steps_per_epoch=int(math.ceil(n / float(batch_size))), epochs=epochs,
                                   validation_data=validation_data, callbacks=callbacks, verbose=0)


class Keras1API(Keras2API):
    """Keras 1.2.2 (the dmlc fork, MXNet backend): Keras 1 spellings for the same layers."""

    generation = 1
    _epochs_kw = "nb_epoch"

    def set_data_format(self, data_format):
        self.keras.backend.set_image_dim_ordering(self._dim_ordering(data_format))

    @staticmethod
    def _dim_ordering(data_format):
        return "th" if data_format == "channels_first" else "tf"

    def Conv2D(self, filters, kernel_size, padding="valid", activation=None):  # noqa: N802
        rows, cols = kernel_size
        return self.layers.Convolution2D(filters, rows, cols, border_mode=padding, activation=activation,
                                         dim_ordering=self._dim_ordering(self.data_format))

    def MaxPooling2D(self, pool_size):  # noqa: N802
        return self.layers.MaxPooling2D(pool_size=pool_size, dim_ordering=self._dim_ordering(self.data_format))

    def add(self, tensors):
        return self.keras.layers.merge(tensors, mode="sum")

    def LSTM(self, units):  # noqa: N802 - Keras 1 calls the gate activation inner_activation
        if self._gate_is_default:
            return self.layers.LSTM(units)
        return self.layers.LSTM(units, inner_activation=self._gate)

    def _model(self, inputs, outputs):
        return self.keras.models.Model(input=inputs, output=outputs)

    def _generator_format(self):
        return {"dim_ordering": self._dim_ordering(self.data_format)}

    def compile(self, model, optimizer, loss, jit_compile, steps_per_execution=None):
        """The MXNet fork trains on the context given to compile, else on the current one (the CPU): with a GPU
        it gets `context=['gpu(0)']`, as the 2017 notebooks passed it."""
        if steps_per_execution:
            raise UnsupportedSetting("steps_per_execution needs Keras 3 (Keras %s)" % self.version)
        kwargs = {}
        if self.backend_name() == "mxnet" and self.gpus:
            self.compile_context = ["gpu(0)"]
            kwargs["context"] = self.compile_context
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], **kwargs)
        return False

    def _fit_generator(self, model, flow, n, batch_size, epochs, callbacks, validation_data):
        return model.fit_generator(flow, samples_per_epoch=n, nb_epoch=epochs, validation_data=validation_data,
                                   callbacks=callbacks, verbose=0)
