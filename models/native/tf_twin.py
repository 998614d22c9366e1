"""The TensorFlow twin: `tf.Variable`s and `tf.nn` operations, no Keras layers; the train step is one
`tf.function` (reduce_retracing, as Keras' own), compiled with XLA (`jit_compile=True`) when the variant says so.

The weights are in Keras' layout (NHWC convolutions with HWIO kernels, Dense kernels (in, out)). The loss is the
one Keras computes on TensorFlow: Keras' softmax keeps its logits on the output tensor and its crossentropy uses
them (`softmax_cross_entropy_with_logits`), where the JAX and PyTorch backends clip probabilities. Dropout is
stateless dropout seeded from a counter variable, as Keras' SeedGenerator does; the optimizers are Keras 3's
arithmetic over slot variables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from models.native.base import NativeDriver
from models.native.layers import Chain, Layer


class KerasOptimizer:
    """Keras 3's RMSprop or Adadelta over tf.Variables: one slot (RMSprop) or two (Adadelta) per variable."""

    def __init__(self, spec: dict[str, Any], variables: list[tf.Variable]):
        self.name = spec["name"]
        self.lr = float(spec["learning_rate"])
        self.rho = float(spec.get("rho") or (0.9 if self.name == "rmsprop" else 0.95))
        self.eps = float(spec.get("epsilon") or 1e-7)
        n_slots = 1 if self.name == "rmsprop" else 2
        self.slots = [[tf.Variable(tf.zeros_like(v), trainable=False) for v in variables] for _ in range(n_slots)]

    def apply(self, grads, variables) -> None:
        rho, eps = self.rho, self.eps
        if self.name == "rmsprop":
            for g, v, velocity in zip(grads, variables, self.slots[0], strict=True):
                velocity.assign(rho * velocity + (1 - rho) * tf.square(g))
                v.assign_sub(self.lr * g / tf.sqrt(velocity + eps))
            return
        for g, v, acc_grad, acc_delta in zip(grads, variables, self.slots[0], self.slots[1], strict=True):
            acc_grad.assign(rho * acc_grad + (1 - rho) * tf.square(g))
            delta = -(tf.sqrt(acc_delta + eps) * g) / tf.sqrt(acc_grad + eps)
            acc_delta.assign(rho * acc_delta + (1 - rho) * tf.square(delta))
            v.assign_add(self.lr * delta)


class Twin(NativeDriver):
    framework = "tensorflow"

    def resolve_auto_jit(self) -> bool:
        """Keras 3's "auto" on TensorFlow: XLA only where a device other than the CPU exists."""
        return any(d.device_type != "CPU" for d in tf.config.list_physical_devices())

    def _import(self) -> None:
        self.device = "/GPU:0" if self.on_gpu else "/CPU:0"

    def _seed(self, seed: int) -> None:
        tf.random.set_seed(seed)
        self.seed_state = tf.Variable([seed, 0], dtype=tf.int64, trainable=False)

    def _build(self, chain: Chain, weights: list[np.ndarray], optimizer: dict[str, Any], jit: bool) -> None:
        self.chain = chain
        with tf.device(self.device):
            self.weights = [tf.Variable(w) for w in weights]
            self.optimizer = KerasOptimizer(optimizer, self.weights)
            self.loss_sum = tf.Variable(0.0, trainable=False)
            self.correct = tf.Variable(0.0, trainable=False)
        self._train = tf.function(self._train_impl, reduce_retracing=True, jit_compile=jit)
        self._test = tf.function(self._test_impl, reduce_retracing=True, jit_compile=jit)
        self._forward = tf.function(lambda x: tf.nn.softmax(self.logits(x, False)), reduce_retracing=True,
                                    jit_compile=jit)

    def _next_seed(self):
        seed = self.seed_state.read_value()
        self.seed_state.assign_add(tf.constant([0, 1], tf.int64))
        return seed

    def apply_layer(self, layer: Layer, w: list[tf.Variable], x, training: bool, last: bool):
        c = layer.config
        if layer.kind in ("dense", "conv2d"):
            if layer.kind == "dense":
                x = tf.matmul(x, w[0]) + w[1]
            else:
                fmt = "NHWC" if c["data_format"] == "channels_last" else "NCHW"
                x = tf.nn.bias_add(tf.nn.conv2d(x, w[0], 1, c["padding"].upper(), data_format=fmt), w[1],
                                   data_format=fmt)
            if c["activation"] == "relu":
                return tf.nn.relu(x)
            if c["activation"] == "softmax" and not last:
                return tf.nn.softmax(x)
            return x  # the last softmax is the loss's: logits out
        if layer.kind == "maxpool2d":
            fmt = "NHWC" if c["data_format"] == "channels_last" else "NCHW"
            return tf.nn.max_pool2d(x, c["pool_size"], c["pool_size"], "VALID", data_format=fmt)
        if layer.kind == "dropout":
            if not training:
                return x
            return tf.nn.experimental.stateless_dropout(x, rate=c["rate"], seed=self._next_seed())
        if layer.kind == "flatten":
            if c["data_format"] == "channels_first" and len(x.shape) > 2:
                x = tf.transpose(x, (0, 2, 3, 1))
            return tf.reshape(x, (tf.shape(x)[0], -1))
        raise NotImplementedError(f"{layer.kind}: the TensorFlow twin trains the MLP and the CNN")

    def logits(self, x, training: bool):
        """The chain's output before its final softmax."""
        if self.chain.layers[-1].config.get("activation") != "softmax":
            raise NotImplementedError("the twins' models end in a softmax")
        i = 0
        for k, layer in enumerate(self.chain.layers):
            n = len(layer.weight_shapes)
            x = self.apply_layer(layer, self.weights[i:i + n], x, training, k == len(self.chain.layers) - 1)
            i += n
        return x

    def _train_impl(self, x, y, idx):
        xb, yb = tf.gather(x, idx), tf.gather(y, idx)
        with tf.GradientTape() as tape:
            logits = self.logits(xb, True)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(yb, logits))
        self.optimizer.apply(tape.gradient(loss, self.weights), self.weights)
        n = tf.cast(tf.shape(idx)[0], tf.float32)
        self.loss_sum.assign_add(loss * n)
        self.correct.assign_add(tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == tf.argmax(yb, -1), tf.float32)))

    def _test_impl(self, x, y, idx):
        xb, yb = tf.gather(x, idx), tf.gather(y, idx)
        logits = self.logits(xb, False)
        self.loss_sum.assign_add(tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(yb, logits)))
        self.correct.assign_add(tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == tf.argmax(yb, -1), tf.float32)))

    def train_step(self, x, y, idx, state):
        self._train(x, y, idx)

    def test_step(self, x, y, idx, state):
        self._test(x, y, idx)

    def metrics_start(self, train: bool):
        self.loss_sum.assign(0.0)
        self.correct.assign(0.0)

    def metrics_read(self, state) -> tuple[float, float]:
        return float(self.loss_sum.numpy()), float(self.correct.numpy())

    def to_device(self, array: np.ndarray):
        with tf.device(self.device):
            return tf.constant(array)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        return self._forward(tf.constant(x)).numpy()

    def sigmoid(self, xs: np.ndarray) -> np.ndarray:
        return tf.sigmoid(xs).numpy()

    def count_params(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.weights))

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for v, w in zip(self.weights, weights, strict=True):
            v.assign(w)

    def weight_device(self, gpu_available) -> str:
        return self.weights[0].device
