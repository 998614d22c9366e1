"""Initial weights for a recorded chain, as Keras 3 draws them, in Keras' layout, from one NumPy stream.

Keras 3's defaults for the three models: Glorot uniform kernels (limit sqrt(6 / (fan_in + fan_out)), fans as
Keras computes them: a convolution's receptive field times its channels), zero biases, an LSTM's recurrent kernel
orthogonal (QR of a normal matrix, signs fixed by R's diagonal) and its forget gate's bias ones
(`unit_forget_bias=True`). The values come from a NumPy generator, not Keras' own stream, so a twin and its Keras
cell start from different draws of the same distribution (docs/models.md names this); every framework's twin
reads the same arrays, so the three twins of one seed start from identical weights.
"""

from __future__ import annotations

import math

import numpy as np

from models.native.layers import Chain, Layer


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' `compute_fans`: a kernel (..., in, out) has fan_in = receptive field x in, fan_out = field x out."""
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * field, shape[-1] * field


def glorot_uniform(rng: np.random.RandomState, shape: tuple[int, ...]) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def orthogonal(rng: np.random.RandomState, shape: tuple[int, int]) -> np.ndarray:
    """Keras' Orthogonal(gain=1) for a 2-d shape: QR of a (max, min) normal matrix, transposed when wide."""
    rows, cols = shape
    q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
    q = q * np.sign(np.diag(r))
    return (q.T if rows < cols else q).astype(np.float32)


def layer_weights(rng: np.random.RandomState, layer: Layer) -> list[np.ndarray]:
    if layer.kind == "time_distributed":
        return layer_weights(rng, layer.inner)
    shapes = layer.weight_shapes
    if layer.kind in ("dense", "conv2d"):
        return [glorot_uniform(rng, shapes[0]), np.zeros(shapes[1], np.float32)]
    if layer.kind == "lstm":
        units = layer.config["units"]
        bias = np.zeros(shapes[2], np.float32)
        bias[units:2 * units] = 1.0  # the forget gate (Keras' gate order: input, forget, cell, output)
        return [glorot_uniform(rng, shapes[0]), orthogonal(rng, shapes[1]), bias]
    return []


def initial_weights(chain: Chain, rng: np.random.RandomState) -> list[np.ndarray]:
    """Every weight of the chain, in Keras' order and layout (what a Keras model's get_weights() returns)."""
    return [w for layer in chain.layers for w in layer_weights(rng, layer)]
