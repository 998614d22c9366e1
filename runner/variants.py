"""The shape of a variant in matrix.yaml: a named set of settings a cell runs under, and where it may run
(`VariantScope.misfit` says why a cell is outside it).

Cross-checks against the rest of the matrix (known backends and environments, Keras 3-only settings, each
environment's default) live in runner/matrix.py, which reports them with FILE:LINE like every other problem.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runner.interpreters import specifier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantScope(_Strict):
    """Where a variant may run: these backends, optionally only these environments, Keras versions starting with
    one of `keras`, cells with (`gpu`) or without (`cpu`) GPUs, and package versions inside `versions`.

    `versions` (package -> PEP 440 range, e.g. {jaxlib: ">=0.10.2,<0.11"}) is where a setting was verified to
    exist: XLA aborts on a flag its jaxlib does not know, so a variant of flags must not reach another jaxlib. It
    is checked against an environment's pins and, under `--python`, against what that interpreter imports."""

    backends: list[str] = Field(min_length=1)
    environments: list[str] | None = None
    models: list[str] | None = None  # a setting only some models have (a TimeDistributed layer); None: every model
    keras: list[str] | None = None
    device: Literal["any", "cpu", "gpu"] = "any"
    versions: dict[str, str] = Field(default_factory=dict)

    def misfit(self, variant: str, backend: str, environment: str, keras: str, gpus: bool, have: dict[str, str],
               where: str) -> str | None:
        """Why the variant called `variant` does not apply to this cell (None: it applies); `have` holds the
        package versions to check `versions` against, found in `where` (an environment's pins, an interpreter)."""
        if backend not in self.backends:
            return f"variant {variant} applies to {', '.join(self.backends)}, not {backend}"
        if self.environments is not None and environment not in self.environments:
            return f"variant {variant} applies to environments {', '.join(self.environments)}, not {environment}"
        if self.keras is not None and not any(keras.startswith(p) for p in self.keras):
            return f"variant {variant} needs Keras {' or '.join(self.keras)}*, {environment} has {keras}"
        if self.device == "gpu" and not gpus:
            return f"variant {variant} applies to cells with GPUs (a profile with gpus, or --gpus)"
        if self.device == "cpu" and gpus:
            return f"variant {variant} applies to CPU-only cells"
        for package, wanted in self.versions.items():
            version = have.get(package)
            if version is None or not specifier(wanted).contains(version.split("+")[0], prereleases=True):
                return (f"variant {variant} was verified with {package} {wanted}; {where} has "
                        f"{package} {version or '(none)'}")
        return None

    @field_validator("versions")
    @classmethod
    def _ranges(cls, value: dict[str, str]) -> dict[str, str]:
        for package, wanted in value.items():
            if not wanted.strip() or wanted.strip()[0].isdigit():
                raise ValueError(f"{package}: {wanted!r} is not a version range; write one like '>=0.10.2,<0.11'")
            specifier(wanted)  # ValueError names the problem
        return value


class Variant(_Strict):
    """A named set of settings a cell runs under. A setting left out is the backend's own (`data_format`,
    `jit_compile`) or the Keras generation's default (`recurrent_activation`, `steps_per_execution`, precision);
    `env` is set in the cell's process before anything is imported, on top of the backend's and environment's."""

    description: str = Field(min_length=10)
    applies_to: VariantScope
    # trains a different function, so it may not be a default without saying so: true, or the Keras version
    # prefixes where it does (faithful-2017's gates are new on Keras 3 only; 2.0.8 and 1.2.2 train them anyway)
    changes_numerics: bool | list[str] = False
    data_format: Literal["channels_last", "channels_first"] | None = None
    jit_compile: bool | Literal["auto"] | None = None
    # the LSTM gate activation; `hard_sigmoid_keras2` is Keras 2's clip(0.2x + 0.5, 0, 1) (not Keras 3's
    # hard_sigmoid, clip(x/6 + 0.5, 0, 1))
    recurrent_activation: Literal["sigmoid", "hard_sigmoid_keras2"] | None = None
    # "fold": a TimeDistributed layer runs once over batch x time instead of Keras' loop over the steps (the same
    # function); None: Keras' own TimeDistributed
    time_distributed: Literal["fold"] | None = None
    # cuDNN's per-shape algorithm search on or off (models/frameworks/<fw>.py set_cudnn_benchmark; read back into
    # settings.precision); None: the framework's own
    cudnn_benchmark: bool | None = None
    steps_per_execution: int | None = Field(None, ge=1)  # Keras 3 only
    mixed_precision: Literal["mixed_float16", "mixed_bfloat16"] | None = None  # Keras 3 only
    # float32 matmuls and convolutions: full float32 on every backend unless a variant asks for TF32, which JAX and
    # TensorFlow use by default on Ampere and later GPUs and PyTorch does not (models/precision.py)
    float32_precision: Literal["float32", "tf32"] = "float32"
    # the native twins only: where the training set lives (device: gathered there per step, the twins' default;
    # host: each batch gathered in NumPy and copied per step, as Keras feeds arrays; models/native/base.py)
    twin_feed: Literal["device", "host"] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # options with no environment variable: jax.config.update(name, value) before the first computation (JAX only)
    jax_config: dict[str, bool | int | float | str] = Field(default_factory=dict)

    def changes_numerics_on(self, keras: str) -> bool:
        """Whether the variant trains a different function under this Keras version."""
        scope = self.changes_numerics
        return scope if isinstance(scope, bool) else any(keras.startswith(p) for p in scope)


KERAS3_ONLY = ("jit_compile", "steps_per_execution", "mixed_precision")  # settings older Keras does not have
