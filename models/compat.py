"""The one place where Keras generations differ.

Model definitions call `api.Conv2D(...)`, `api.optimizer(spec)` and friends; this module maps those onto the
installed Keras. Only Keras 3 is implemented here so far: older generations (2.0.8, 1.2.2) plug in as further
branches of `KerasAPI` (keyword renames such as lr/learning_rate, border_mode/padding, merge/add), never as
copies of the models. Written for Python 3.6 too: no dataclasses, no postponed annotations.
"""
class UnsupportedKeras(RuntimeError):
    """The installed Keras generation has no adapter yet."""


def keras_generation(version):
    return int(str(version).split(".")[0])


class KerasAPI(object):
    """Layers, optimizers and settings spelled for the installed Keras."""

    def __init__(self, keras, data_format="channels_last"):
        self.keras = keras
        self.version = keras.__version__
        self.generation = keras_generation(self.version)
        if self.generation != 3:
            raise UnsupportedKeras(
                "Keras %s has no adapter in models/compat.py yet (Keras 3 is supported)" % self.version
            )
        self.layers = keras.layers
        self.data_format = data_format
        keras.config.set_image_data_format(data_format)

    # -- layers: plain Keras spellings, so older generations can map them one to one --------------------------
    def Input(self, shape, dtype=None):
        return self.layers.Input(shape=tuple(shape), dtype=dtype)

    def Dense(self, units, activation=None):
        return self.layers.Dense(units, activation=activation)

    def Dropout(self, rate):
        return self.layers.Dropout(rate)

    def Activation(self, name):
        return self.layers.Activation(name)

    def Conv2D(self, filters, kernel_size, padding="valid", activation=None):
        return self.layers.Conv2D(
            filters, kernel_size, padding=padding, activation=activation, data_format=self.data_format
        )

    def MaxPooling2D(self, pool_size):
        return self.layers.MaxPooling2D(pool_size=pool_size, data_format=self.data_format)

    def Flatten(self):
        return self.layers.Flatten(data_format=self.data_format)

    def LSTM(self, units):
        return self.layers.LSTM(units)

    def TimeDistributed(self, layer):
        return self.layers.TimeDistributed(layer)

    def Embedding(self, input_dim, output_dim):
        return self.layers.Embedding(input_dim, output_dim)

    def RepeatVector(self, n):
        return self.layers.RepeatVector(n)

    def add(self, tensors):
        return self.layers.add(tensors)

    def Model(self, inputs, outputs):
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
        kwargs = dict((k, spec[k]) for k in ("rho", "epsilon", "beta_1", "beta_2") if spec.get(k) is not None)
        cls = {"rmsprop": opts.RMSprop, "adadelta": opts.Adadelta, "adam": opts.Adam}[spec["name"]]
        return cls(learning_rate=lr, **kwargs)

    def compile(self, model, optimizer, loss, jit_compile):
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
        return bool(model.jit_compile)

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

