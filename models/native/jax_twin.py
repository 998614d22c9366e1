"""The JAX twin: pure `jax` + `optax`, the whole train step (forward, loss, gradients, optax update, metrics)
under one `jax.jit`, its state donated as Keras' JAX trainer donates its own.

The weights are a list of arrays in Keras' layout (Dense kernels (in, out), convolution kernels HWIO through
`lax.conv_general_dilated`, the LSTM a `lax.scan` of Keras' cell), so a Keras model's weights load as they are.
Optax's `rmsprop` adds eps inside the square root (`eps_in_sqrt`, its default), as Keras 3 does; its `adadelta`
is Keras 3's arithmetic. Dropout draws from JAX's PRNG, split once per step from the twin's key.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from models.errors import RequirementMissing
from models.native.base import NativeDriver
from models.native.layers import Chain, Layer

try:
    import optax
except ImportError as exc:  # an interpreter of your own (--python) without it: the cell is skipped, saying so
    optax, OPTAX_MISSING = None, exc

EPSILON = 1e-7  # keras.config.epsilon()


def make_optimizer(spec: dict[str, Any]):
    eps = spec.get("epsilon") or 1e-7
    if spec["name"] == "rmsprop":
        return optax.rmsprop(spec["learning_rate"], decay=spec.get("rho") or 0.9, eps=eps, eps_in_sqrt=True)
    return optax.adadelta(spec["learning_rate"], rho=spec.get("rho") or 0.95, eps=eps)


def _activation(name: str | None, x):
    if name == "relu":
        return jax.nn.relu(x)
    if name == "softmax":
        return jax.nn.softmax(x, axis=-1)
    return x


def lstm(kernel, recurrent, bias, x):
    """Keras' LSTM cell over (batch, steps, features), scanned over the steps; the last hidden state."""
    units = recurrent.shape[0]
    zeros = jnp.zeros((x.shape[0], units), x.dtype)

    def cell(carry, x_t):
        h, c = carry
        z = x_t @ kernel + h @ recurrent + bias
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    (h, _), _ = lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return h


def apply_layer(layer: Layer, weights: list, x, key, training: bool):
    """One layer; returns (output, key) (dropout consumes a split of the key)."""
    c = layer.config
    if layer.kind == "dense":
        return _activation(c["activation"], x @ weights[0] + weights[1]), key
    if layer.kind == "conv2d":
        last = c["data_format"] == "channels_last"
        dims = ("NHWC", "HWIO", "NHWC") if last else ("NCHW", "HWIO", "NCHW")
        y = lax.conv_general_dilated(x, weights[0], (1, 1), c["padding"].upper(), dimension_numbers=dims)
        bias = weights[1] if last else weights[1].reshape(-1, 1, 1)
        return _activation(c["activation"], y + bias), key
    if layer.kind == "maxpool2d":
        ph, pw = c["pool_size"]
        window = (1, ph, pw, 1) if c["data_format"] == "channels_last" else (1, 1, ph, pw)
        return lax.reduce_window(x, -jnp.inf, lax.max, window, window, "VALID"), key
    if layer.kind == "dropout":
        if not training:
            return x, key
        key, sub = jax.random.split(key)
        keep = 1.0 - c["rate"]
        return lax.select(jax.random.bernoulli(sub, keep, x.shape), x / keep, jnp.zeros_like(x)), key
    if layer.kind == "flatten":
        if c["data_format"] == "channels_first" and x.ndim > 2:  # Keras flattens (H, W, C) in either format
            x = jnp.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1), key
    if layer.kind == "lstm":
        return lstm(*weights, x), key
    if layer.kind == "time_distributed":
        out, key = apply_layer(layer.inner, weights, x.reshape(-1, *x.shape[2:]), key, training)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:]), key
    raise NotImplementedError(layer.kind)


def make_apply(chain: Chain):
    """apply(params, x, key, training) -> class probabilities, params a flat list in Keras' order."""
    counts = [len(layer.weight_shapes) for layer in chain.layers]

    def apply(params, x, key, training):
        i = 0
        for layer, n in zip(chain.layers, counts, strict=True):
            x, key = apply_layer(layer, params[i:i + n], x, key, training)
            i += n
        return x

    return apply


def crossentropy_sum(y, probs):
    """Keras' categorical crossentropy of probabilities on JAX (renormalise, clip, log), summed over the batch."""
    probs = jnp.clip(probs / probs.sum(axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)
    return -(y * jnp.log(probs)).sum()


def _correct(y, probs):
    return (jnp.argmax(probs, -1) == jnp.argmax(y, -1)).sum().astype(jnp.float32)


class Twin(NativeDriver):
    framework = "jax"
    auto_jit = True  # Keras 3's "auto" jits every JAX step

    def _import(self) -> None:
        if optax is None:
            raise RequirementMissing(f"the JAX twin needs optax ({OPTAX_MISSING}): pip install optax==0.2.8 "
                                     "(the pin of keras3-jax in matrix.yaml) into this interpreter")
        self.device = jax.devices("gpu")[0] if self.on_gpu else jax.devices("cpu")[0]

    def extra_versions(self) -> dict[str, str]:
        import jaxlib

        return {"jaxlib": jaxlib.__version__, "optax": optax.__version__}

    def _seed(self, seed: int) -> None:
        self.key = jax.device_put(jax.random.PRNGKey(seed), self.device)

    def _build(self, chain: Chain, weights: list[np.ndarray], optimizer: dict[str, Any], jit: bool) -> None:
        apply = make_apply(chain)
        self.tx = tx = make_optimizer(optimizer)
        self.set_weights(weights)

        def train(params, opt_state, key, metrics, x, y, idx):
            key, sub = jax.random.split(key)
            xb, yb = x[idx], y[idx]

            def loss_fn(p):
                probs = apply(p, xb, sub, True)
                return crossentropy_sum(yb, probs) / idx.shape[0], probs

            (loss, probs), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            metrics = metrics + jnp.stack([loss * idx.shape[0], _correct(yb, probs)])
            return optax.apply_updates(params, updates), opt_state, key, metrics

        def test(params, metrics, x, y, idx):
            probs = apply(params, x[idx], None, False)
            return metrics + jnp.stack([crossentropy_sum(y[idx], probs), _correct(y[idx], probs)])

        def forward(params, x):
            return apply(params, x, None, False)

        if jit:
            train, test, forward = jax.jit(train, donate_argnums=(0, 1, 2, 3)), jax.jit(test), jax.jit(forward)
        self._train, self._test, self._forward = train, test, forward

    def train_step(self, x, y, idx, metrics):
        self.params, self.opt_state, self.key, metrics = self._train(self.params, self.opt_state, self.key, metrics,
                                                                     x, y, idx)
        return metrics

    def test_step(self, x, y, idx, metrics):
        return self._test(self.params, metrics, x, y, idx)

    def metrics_start(self, train: bool):
        return jax.device_put(np.zeros(2, np.float32), self.device)

    def metrics_read(self, metrics) -> tuple[float, float]:
        loss_sum, correct = np.asarray(metrics)
        return float(loss_sum), float(correct)

    def to_device(self, array: np.ndarray):
        return jax.device_put(np.ascontiguousarray(array), self.device)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(self.params, jax.device_put(x, self.device)))

    def sigmoid(self, xs: np.ndarray) -> np.ndarray:
        return np.asarray(jax.nn.sigmoid(jnp.asarray(xs)))

    def count_params(self) -> int:
        return int(sum(np.prod(p.shape) for p in self.params))

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.params = [jax.device_put(np.asarray(w, np.float32), self.device) for w in weights]
        # every input of the step committed to the device, as its outputs are: one compilation, not one per epoch
        self.opt_state = jax.device_put(self.tx.init(self.params), self.device)

    def weight_device(self, gpu_available) -> str:
        return str(sorted(self.params[0].devices(), key=str)[0])
