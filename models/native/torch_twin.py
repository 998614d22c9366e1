"""The PyTorch twin: an `nn.Module` built from the model's chain, Keras 3's optimizers as `torch.optim.Optimizer`
subclasses, a plain training loop; eager, or `torch.compile` (default mode) when the variant says `jit_compile`.

As a PyTorch user writes it: NCHW convolutions with OIHW weights (Keras' PyTorch backend keeps HWIO kernels and
transposes them on every call), Flatten in PyTorch's (C, H, W) order (Keras flattens (H, W, C) whatever its data
format: the same function up to a fixed permutation of the next Dense layer's rows, which `set_weights` applies),
`torch.nn.LSTM`'s fused kernel holding Keras' parameters (one bias; PyTorch's second, recurrent bias is a zero
buffer), the training set on the device once and each batch gathered by index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from models.native.base import NativeDriver
from models.native.layers import Chain, Layer

EPSILON = 1e-7  # keras.config.epsilon(): the clip of the probabilities in Keras' crossentropy


class KerasRMSprop(torch.optim.Optimizer):
    """Keras 3's RMSprop: v = rho v + (1 - rho) g^2, p -= lr g / sqrt(v + eps). torch.optim.RMSprop divides by
    sqrt(v) + eps instead. The same `_foreach` operations, in the same order, as Keras' PyTorch backend."""

    def __init__(self, params, learning_rate: float, rho: float = 0.9, epsilon: float = 1e-7):
        super().__init__(params, {"lr": learning_rate, "rho": rho, "eps": epsilon})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["velocity"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            velocities = [self.state[p]["velocity"] for p in params]
            rho, lr = group["rho"], group["lr"]
            torch._foreach_mul_(velocities, rho)
            torch._foreach_add_(velocities, torch._foreach_mul(grads, grads), alpha=1 - rho)
            denominators = torch._foreach_add(velocities, group["eps"])
            torch._foreach_sqrt_(denominators)
            torch._foreach_add_(params, torch._foreach_div(torch._foreach_mul(grads, lr), denominators), alpha=-1)


class KerasAdadelta(torch.optim.Optimizer):
    """Keras 3's Adadelta (learning rate 1.0 as the example's Keras 2): the same `_foreach` arithmetic as Keras'
    PyTorch backend; torch.optim.Adadelta orders its operations differently."""

    def __init__(self, params, learning_rate: float, rho: float = 0.95, epsilon: float = 1e-7):
        super().__init__(params, {"lr": learning_rate, "rho": rho, "eps": epsilon})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["accumulated_grad"] = torch.zeros_like(p)
                self.state[p]["accumulated_delta"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            acc_grads = [self.state[p]["accumulated_grad"] for p in params]
            acc_deltas = [self.state[p]["accumulated_delta"] for p in params]
            rho, eps = group["rho"], group["eps"]
            torch._foreach_mul_(acc_grads, rho)
            torch._foreach_add_(acc_grads, torch._foreach_mul(grads, grads), alpha=1 - rho)

            def rms(xs, eps=eps):
                return torch._foreach_sqrt(torch._foreach_add(xs, eps))

            deltas = torch._foreach_mul(torch._foreach_div(torch._foreach_mul(rms(acc_deltas), grads),
                                                           rms(acc_grads)), -1)
            torch._foreach_mul_(acc_deltas, rho)
            torch._foreach_add_(acc_deltas, torch._foreach_mul(deltas, deltas), alpha=1 - rho)
            torch._foreach_add_(params, deltas, alpha=group["lr"])


def keras_optimizer(params, spec: dict[str, Any]) -> torch.optim.Optimizer:
    cls = {"rmsprop": KerasRMSprop, "adadelta": KerasAdadelta}[spec["name"]]
    extras = {k: spec[k] for k in ("rho", "epsilon") if spec.get(k) is not None}
    return cls(params, spec["learning_rate"], **extras)


class KerasLSTM(nn.Module):
    """`torch.nn.LSTM` (gates i, f, g, o: Keras' order and equations) with Keras' parameters: W_ih = kernel^T,
    W_hh = recurrent_kernel^T, b_ih = bias; PyTorch's second bias b_hh is a zero buffer, so it neither trains nor
    counts. Returns the last hidden state (Keras' return_sequences=False)."""

    def __init__(self, features: int, units: int):
        super().__init__()
        self.lstm = nn.LSTM(features, units, batch_first=True)
        del self.lstm.bias_hh_l0
        self.lstm.register_buffer("bias_hh_l0", torch.zeros(4 * units))
        self.lstm._init_flat_weights()  # the fused kernel reads its weights through this list

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return h[-1]


class TimeDistributed(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]))
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])


class ToChannelsFirst(nn.Module):
    def forward(self, x):
        return x.permute(0, 3, 1, 2)


ACTIVATIONS = {"relu": lambda: nn.ReLU(), "softmax": lambda: nn.Softmax(dim=-1)}


def layer_modules(layer: Layer) -> list[nn.Module]:
    c = layer.config
    if layer.kind == "dense":
        out = [nn.Linear(layer.input_shape[-1], c["units"])]
    elif layer.kind == "conv2d":
        channels = layer.input_shape[-1 if c["data_format"] == "channels_last" else 0]
        out = [nn.Conv2d(channels, c["filters"], c["kernel_size"], padding=c["padding"])]
    elif layer.kind == "maxpool2d":
        return [nn.MaxPool2d(c["pool_size"])]
    elif layer.kind == "dropout":
        return [nn.Dropout(c["rate"])]
    elif layer.kind == "flatten":
        return [nn.Flatten()]
    elif layer.kind == "lstm":
        return [KerasLSTM(layer.input_shape[-1], c["units"])]
    elif layer.kind == "time_distributed":
        return [TimeDistributed(nn.Sequential(*layer_modules(layer.inner)))]
    else:
        raise NotImplementedError(layer.kind)
    return out + ([ACTIVATIONS[c["activation"]]()] if c.get("activation") else [])


def build_module(chain: Chain) -> nn.Sequential:
    """The chain as one nn.Sequential; a channels_last image enters through one permute to NCHW."""
    modules: list[nn.Module] = []
    if chain.data_format == "channels_last" and chain.has("conv2d"):
        modules.append(ToChannelsFirst())
    for layer in chain.layers:
        modules += layer_modules(layer)
    return nn.Sequential(*modules)


def crossentropy(y, probs):
    """Keras' categorical crossentropy of probabilities on PyTorch (renormalise, clip to [eps, 1 - eps], log),
    averaged over the batch."""
    probs = torch.clip(probs / probs.sum(dim=-1, keepdim=True), EPSILON, 1.0 - EPSILON)
    return -(y * torch.log(probs)).sum(dim=-1).mean()


def _keras_to_torch(layer: Layer, weights: list[np.ndarray], flat_from: tuple[int, ...] | None) -> list[np.ndarray]:
    """Keras-layout weights of one layer as the twin's parameters; `flat_from`: the (C, H, W) a Flatten before
    this Dense layer saw, whose rows Keras orders (H, W, C) and PyTorch (C, H, W)."""
    if layer.kind == "time_distributed":
        return _keras_to_torch(layer.inner, weights, None)
    if layer.kind == "dense":
        kernel = weights[0]
        if flat_from is not None:
            c, h, w = flat_from
            kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
        return [kernel.T, weights[1]]
    if layer.kind == "conv2d":
        return [weights[0].transpose(3, 2, 0, 1), weights[1]]
    if layer.kind == "lstm":
        return [weights[0].T, weights[1].T, weights[2]]
    return []


def _flatten_sources(chain: Chain) -> list[tuple[int, ...] | None]:
    """Per layer, the (C, H, W) shape a Flatten right before it saw (None elsewhere)."""
    out: list[tuple[int, ...] | None] = [None] * len(chain.layers)
    for i, layer in enumerate(chain.layers[:-1]):
        if layer.kind == "flatten" and len(layer.input_shape) == 3:
            shape = layer.input_shape
            out[i + 1] = (shape[2], shape[0], shape[1]) if chain.data_format == "channels_last" else tuple(shape)
    return out


class Twin(NativeDriver):
    framework = "torch"
    auto_jit = False  # Keras 3 resolves jit_compile="auto" to eager on PyTorch

    def _import(self) -> None:
        self.device = torch.device("cuda" if self.on_gpu else "cpu")

    def _seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def _build(self, chain: Chain, weights: list[np.ndarray], optimizer: dict[str, Any], jit: bool) -> None:
        self.net = build_module(chain).to(self.device)
        self.set_weights(weights)
        self.optimizer = keras_optimizer(self.net.parameters(), optimizer)
        self._train, self._test, self._forward = self._train_impl, self._test_impl, self._forward_impl
        if jit:  # as Keras' jit_compile=True on PyTorch: torch.compile's default mode, each function apart
            self._train, self._test, self._forward = (torch.compile(f) for f in (self._train, self._test,
                                                                                  self._forward))

    def _train_impl(self, x, y, idx, state):
        xb, yb = x[idx], y[idx]
        probs = self.net(xb)
        loss = crossentropy(yb, probs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            return (state[0] + loss.detach() * idx.shape[0],
                    state[1] + (probs.argmax(dim=-1) == yb.argmax(dim=-1)).sum())

    @torch.no_grad()
    def _test_impl(self, x, y, idx, state):
        xb, yb = x[idx], y[idx]
        probs = self.net(xb)
        return (state[0] + crossentropy(yb, probs) * idx.shape[0],
                state[1] + (probs.argmax(dim=-1) == yb.argmax(dim=-1)).sum())

    @torch.no_grad()
    def _forward_impl(self, x):
        return self.net(x)

    def train_step(self, x, y, idx, state):
        return self._train(x, y, idx, state)

    def test_step(self, x, y, idx, state):
        return self._test(x, y, idx, state)

    def metrics_start(self, train: bool):
        self.net.train(train)
        zero = torch.zeros((), device=self.device)
        return (zero, zero.clone().long())

    def metrics_read(self, state) -> tuple[float, float]:
        return float(state[0]), float(state[1])

    def to_device(self, array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def index(self, order: np.ndarray):
        return torch.from_numpy(order.astype(np.int64)).to(self.device)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        self.net.eval()
        return self._forward(self.to_device(x)).cpu().numpy()

    def sigmoid(self, xs: np.ndarray) -> np.ndarray:
        return torch.sigmoid(torch.from_numpy(xs)).numpy()

    def count_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def set_weights(self, weights: list[np.ndarray]) -> None:
        converted, i = [], 0
        for layer, flat_from in zip(self.chain.layers, _flatten_sources(self.chain), strict=True):
            n = len(layer.weight_shapes)
            converted += _keras_to_torch(layer, weights[i:i + n], flat_from)
            i += n
        params = list(self.net.parameters())
        if len(params) != len(converted):
            raise ValueError(f"{len(converted)} weights for {len(params)} parameters")
        with torch.no_grad():
            for p, w in zip(params, converted, strict=True):
                p.copy_(torch.from_numpy(np.ascontiguousarray(w)).reshape(p.shape))

    def weight_device(self, gpu_available) -> str:
        return str(next(self.net.parameters()).device)
