"""A model file's layer chain, recorded instead of built: the one definition the native twins train.

models/mlp.py, cnn.py and hrnn.py describe their networks through an `api` object (api.Dense, api.Conv2D, ...).
`NativeAPI` is such an object that builds nothing: each call records a `Layer` with its configuration and the
shapes it maps between, so every framework's twin reads the very definition Keras builds, not a second copy that
could drift from it. Only chains (each layer feeding the next) are recorded: the models whose graphs branch
(bAbI's two inputs and `add`) or augment their input (CIFAR-10) have no native twin and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class NoNativeTwin(NotImplementedError):
    """The model uses something the native twins do not implement (a branch, an embedding, augmentation)."""


@dataclass(frozen=True)
class Layer:
    """One recorded layer: `kind`, its settings, and the shapes (without the batch) it maps between."""

    kind: str  # dense, dropout, conv2d, maxpool2d, flatten, lstm, time_distributed
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    inner: Layer | None = None  # time_distributed: the layer applied to each step

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Keras' weights of this layer, in Keras' order and layout (what `get_weights()` returns)."""
        if self.kind == "dense":
            return [(self.input_shape[-1], self.config["units"]), (self.config["units"],)]
        if self.kind == "conv2d":
            kh, kw = self.config["kernel_size"]
            channels = self.input_shape[-1 if self.config["data_format"] == "channels_last" else 0]
            return [(kh, kw, channels, self.config["filters"]), (self.config["filters"],)]
        if self.kind == "lstm":
            units = self.config["units"]
            return [(self.input_shape[-1], 4 * units), (units, 4 * units), (4 * units,)]
        if self.kind == "time_distributed":
            return self.inner.weight_shapes
        return []

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in self.weight_shapes)


@dataclass(frozen=True)
class Chain:
    """A model as the layers it applies in order to an input of `input_shape`."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    data_format: str = "channels_last"

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [s for layer in self.layers for s in layer.weight_shapes]

    def has(self, kind: str) -> bool:
        return any(kind in (layer.kind, layer.inner.kind if layer.inner else None) for layer in self.layers)


@dataclass(frozen=True)
class _Node:
    """A recorded tensor: its shape and the layers that led to it."""

    shape: tuple[int, ...]
    layers: tuple[Layer, ...] = field(default=())


def _conv_out(size: int, kernel: int, padding: str) -> int:
    return size if padding == "same" else size - kernel + 1


class _Pending:
    """A layer made but not yet applied (`api.Dense(10)`); applying it to a node records it."""

    def __init__(self, kind: str, **config: Any):
        self.kind, self.config = kind, config

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        c = self.config
        if self.kind == "dense":
            return (*shape[:-1], c["units"])
        if self.kind in ("dropout", "activation"):
            return shape
        if self.kind in ("conv2d", "maxpool2d"):
            last = c["data_format"] == "channels_last"
            h, w = shape[:2] if last else shape[1:]
            if self.kind == "conv2d":
                (kh, kw), channels = c["kernel_size"], c["filters"]
                h, w = _conv_out(h, kh, c["padding"]), _conv_out(w, kw, c["padding"])
            else:
                (ph, pw), channels = c["pool_size"], shape[-1 if last else 0]
                h, w = h // ph, w // pw
            return (h, w, channels) if last else (channels, h, w)
        if self.kind == "flatten":
            return (math.prod(shape),)
        if self.kind == "lstm":
            if len(shape) != 2:
                raise NoNativeTwin(f"an LSTM over a {len(shape)}-d input per sample: the twins take (steps, features)")
            return (c["units"],)
        raise NoNativeTwin(f"layer {self.kind!r}")

    def record(self, shape: tuple[int, ...]) -> Layer:
        return Layer(self.kind, dict(self.config), tuple(shape), self.output_shape(shape))

    def __call__(self, node: _Node) -> _Node:
        if not isinstance(node, _Node):
            raise NoNativeTwin("a layer applied to several inputs (the twins record chains only)")
        layer = self.record(node.shape)
        return _Node(layer.output_shape, node.layers + (layer,))


class _TimeDistributed(_Pending):
    def __init__(self, inner: _Pending):
        super().__init__("time_distributed")
        self.inner = inner

    def record(self, shape: tuple[int, ...]) -> Layer:
        inner = self.inner.record(shape[1:])
        return Layer("time_distributed", {}, tuple(shape), (shape[0], *inner.output_shape), inner)


ACTIVATIONS = (None, "relu", "softmax")


class NativeAPI:
    """The `api` a model file builds with, recording a `Chain`; spelled as models/compat.py's Keras3API."""

    def __init__(self, data_format: str = "channels_last", recurrent_activation: str = "sigmoid"):
        self.data_format = data_format
        self.recurrent_activation = recurrent_activation

    def Input(self, shape, dtype=None) -> _Node:  # noqa: N802 - the spellings model files call
        if dtype is not None:
            raise NoNativeTwin(f"an input of dtype {dtype} (the twins take float images)")
        return _Node(tuple(int(s) for s in shape))

    def Dense(self, units: int, activation: str | None = None) -> _Pending:  # noqa: N802
        if activation not in ACTIVATIONS:
            raise NoNativeTwin(f"activation {activation!r}")
        return _Pending("dense", units=int(units), activation=activation)

    def Dropout(self, rate: float) -> _Pending:  # noqa: N802
        return _Pending("dropout", rate=float(rate))

    def Conv2D(self, filters: int, kernel_size, padding: str = "valid", activation: str | None = None  # noqa: N802
               ) -> _Pending:
        if activation not in ACTIVATIONS:
            raise NoNativeTwin(f"activation {activation!r}")
        return _Pending("conv2d", filters=int(filters), kernel_size=tuple(kernel_size), padding=padding,
                        activation=activation, data_format=self.data_format)

    def MaxPooling2D(self, pool_size) -> _Pending:  # noqa: N802
        return _Pending("maxpool2d", pool_size=tuple(pool_size), data_format=self.data_format)

    def Flatten(self) -> _Pending:  # noqa: N802
        return _Pending("flatten", data_format=self.data_format)

    def LSTM(self, units: int) -> _Pending:  # noqa: N802
        if self.recurrent_activation != "sigmoid":
            raise NoNativeTwin(f"LSTM gates {self.recurrent_activation!r} (the twins' gates are sigmoids)")
        return _Pending("lstm", units=int(units))

    def TimeDistributed(self, layer: _Pending) -> _Pending:  # noqa: N802
        return _TimeDistributed(layer)

    def Model(self, inputs: _Node, outputs: _Node) -> Chain:  # noqa: N802
        return Chain(inputs.shape, outputs.layers, self.data_format)

    def _none(self, what: str):
        raise NoNativeTwin(what)

    def Activation(self, name):  # noqa: N802
        self._none(f"a separate Activation layer ({name})")

    def Embedding(self, input_dim, output_dim):  # noqa: N802
        self._none("Embedding")

    def RepeatVector(self, n):  # noqa: N802
        self._none("RepeatVector")

    def add(self, tensors):
        self._none("a branch (add)")

    def image_augmentation(self, shift, horizontal_flip):
        self._none("image augmentation")
