"""Plan the matrix: expand it into cells, filter them, and resolve each cell into the spec its worker reads.

Repeats are interleaved (repeat 1 of every cell, then repeat 2, ...) so drift on a shared machine spreads over all
cells alike, and each repeat trains from its own seed (`repeat_seed`), so repeats measure run-to-run spread.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from common.errors import BadInput
from common.results import STOCK_VARIANT, skeleton
from models import hub_flops
from runner.matrix import Matrix
from runner.matrix_schema import ModelSpec


class SelectionError(BadInput):
    """A name on the command line that the matrix does not have, or a selection that leaves nothing to run."""


@dataclass(frozen=True, order=True)
class Cell:
    """One model x backend x environment run. Frozen and ordered; its id is derived, never parsed back."""

    model: str
    backend: str
    environment: str
    profile: str
    repeat: int
    seed: int
    variant: str = STOCK_VARIANT

    @property
    def id(self) -> str:
        return f"{self.model}.{self.backend}.{self.environment}.{self.profile}.{self.variant}.r{self.repeat}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Selection:
    backends: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    profile: str | None = None
    repeats: int | None = None
    seed: int | None = None
    variants: tuple[str, ...] = ()  # empty: each environment's default; "all": every variant that applies
    gpus: int | None = None  # --gpus: decides which variants apply (device: gpu/cpu)
    inference: bool = True  # --no-inference: time no inference whatever the profile says
    # --python: environment -> the package versions its interpreter imports (variants' `versions` are checked
    # against them, not against the pins); None: the environments are built from their pins
    found: dict[str, dict[str, str]] | None = field(default=None, compare=False, hash=False)


ALL_VARIANTS = "all"


def repeat_seed(base: int, repeat: int) -> int:
    """The seed of a repeat: the base seed for the first, a deterministic, well-spread one for the others (the
    same base and index always give the same seed), so repeats differ in initial weights, dropout and data order."""
    if repeat == 0:
        return base
    digest = hashlib.sha256(f"kbm-seed:{base}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def _check_names(kind: str, flag: str, asked: Iterable[str], known: Iterable[str]) -> None:
    known = list(known)
    for name in asked:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SelectionError(f"{flag} {name}: no such {kind} in the matrix.{hint} Known: {', '.join(known)}")


def generation(matrix: Matrix, environment: str) -> str:
    """An environment's Keras generation as `--only NAME@GEN` spells it: keras3, keras2, keras1."""
    return "keras" + matrix.environments[environment].keras.split(".")[0]


DRIVERS = ("keras", "native")  # `--only NAME@keras`: the Keras side only; `NAME@native`: the native twins only


def _only(matrix: Matrix, asked: Iterable[str]) -> list[tuple[set[str], str | None]]:
    """Each --only value as (backends it takes, generation or None). NAME is a backend or a family (matrix
    `backends.<name>.family`): `tensorflow` takes Keras 3's TensorFlow, its native twin and `tensorflow1`;
    `tensorflow@keras3` the Keras 3 environment's two (Keras and the twin it hosts); a driver after another `@`
    narrows to one side: `tensorflow@keras3@keras` is Keras 3's TensorFlow alone, `torch@native` the PyTorch twin."""
    names = sorted(set(matrix.backends) | {b.family for b in matrix.backends.values() if b.family})
    gens = sorted({generation(matrix, e) for e in matrix.environments})
    out = []
    for value in asked:
        name, *quals = value.split("@")
        _check_names("backend or framework family", "--only", [name], names)
        _check_names("Keras generation or driver (NAME@GEN, NAME@keras, NAME@native)", f"--only {name}@", quals,
                     [*gens, *DRIVERS])
        gen = [q for q in quals if q in gens]
        driver = [q for q in quals if q in DRIVERS]
        if len(gen) > 1 or len(driver) > 1:
            raise SelectionError(f"--only {value}: at most one generation and one driver")
        out.append(({b for b in matrix.selected_by(name) if matrix.backends[b].driver in (driver or DRIVERS)},
                    gen[0] if gen else None))
    return out


def _environments(matrix: Matrix, sel: Selection, only: list[tuple[set[str], str | None]]) -> set[str]:
    """--env wins; else with --only every environment hosting a backend it takes (so `--only cntk` also finds the
    Keras 2.2.4 variant); else the matrix's default environments."""
    if sel.environments:
        return set(sel.environments)
    if only:
        return {e for backends, _ in only for b in backends for e in matrix.environments_for(b)}
    return set(matrix.defaults.environments or matrix.environments)


def _found(sel: Selection, env_name: str) -> dict[str, str] | None:
    return None if sel.found is None else sel.found.get(env_name, {})


def _gpus(matrix: Matrix, sel: Selection, profile: str) -> bool:
    """Whether the cells have GPUs, which decides the variants that apply (device: gpu/cpu)."""
    return bool(sel.gpus or matrix.profiles[profile].gpus)


def default_variant(matrix: Matrix, backend: str, env_name: str, gpus: bool,
                    found: dict[str, str] | None = None) -> tuple[str, str | None]:
    """The variant a run without --variant gives this backend in this environment on this device class (`gpus`:
    the profile's or --gpus, or what --python's interpreter sees), and why that is not the environment's default
    variant (None: it is). The environment's default falls back to `defaults.default_variant`
    where `--python`'s interpreter has versions it was not verified with (XLA would abort on a flag its jaxlib
    lacks)."""
    name = matrix.default_variant(env_name, gpus)
    why = matrix.variant_misfit(name, backend, env_name, gpus, found)
    return (name, None) if why is None else (matrix.fallback_variant(gpus), why)


def _variants_for(matrix: Matrix, sel: Selection, backend: str, env_name: str, gpus: bool,
                  notes: list[str]) -> list[str]:
    if not sel.variants:
        name, why = default_variant(matrix, backend, env_name, gpus, _found(sel, env_name))
        note = f"{why}: {backend}'s cells run variant {name} instead"
        if why is not None and note not in notes:
            notes.append(note)
        return [name]
    names = list(matrix.variants) if ALL_VARIANTS in sel.variants else list(sel.variants)
    whys = {v: matrix.variant_misfit(v, backend, env_name, gpus, _found(sel, env_name)) for v in names}
    if ALL_VARIANTS not in sel.variants:  # a variant named on the command line and left out is said
        notes += [why for why in dict.fromkeys(whys.values()) if why and why not in notes]
    return [v for v, why in whys.items() if why is None]


def _trains(matrix: Matrix, backend: str, model: str, sel: Selection, notes: list[str]) -> bool:
    """Whether the backend trains one of the matrix's models (`backends.<name>.models`: a native twin exists for a
    few); a model named with --model that a selected backend lacks is said, once. Model files: `model_misfit`."""
    models = matrix.backends[backend].models
    if models is None or model in models or matrix.models[model].module:
        return True
    note = f"{backend} trains {', '.join(models)} only: its cells of {model} are not planned"
    if model in sel.models and note not in notes:
        notes.append(note)
    return False


def _variant_has(matrix: Matrix, variant: str, model: str, sel: Selection, notes: list[str]) -> bool:
    """Whether the variant's setting exists in this model (`applies_to.models`); a variant named on the command
    line and left out for a model is said, once."""
    models = matrix.variants[variant].applies_to.models
    if models is None or model in models:
        return True
    note = f"variant {variant} applies to {', '.join(models)} only: not planned for {model}"
    if variant in sel.variants and note not in notes:
        notes.append(note)
    return False


def model_misfit(matrix: Matrix, model: str, backend: str, env_name: str) -> str | None:
    """Why a model cannot run on this backend in this environment (None: it can): a model file of your own asks
    for Keras 3 (`keras: "3."`) and Keras itself (a native twin trains only its own networks)."""
    spec, env = matrix.models[model], matrix.environments[env_name]
    if spec.keras and not env.keras.startswith(spec.keras):
        return (f"model {model} ({spec.module or 'matrix.yaml'}) runs on Keras {spec.keras}x only, and {env_name} "
                f"has Keras {env.keras}")
    if spec.module and matrix.backends[backend].driver != "keras":
        return f"model {model} is a Keras model file; {backend} trains without Keras"
    return None


def _combos(matrix: Matrix, sel: Selection, only: list[tuple[set[str], str | None]], models_only: list[str] | None,
            profile: str, notes: list[str]) -> list[tuple[str, str, str, str]]:
    """(model, backend, environment, variant) for every cell of one repeat, in matrix order. A model that cannot run
    somewhere (a Keras 3 model file on a 2017 stack) is left out with a note, or refused where the command line
    asked for exactly that backend or environment."""
    gpus = _gpus(matrix, sel, profile)
    envs = _environments(matrix, sel, only)

    def wanted(backend: str, env_name: str) -> bool:
        gen = generation(matrix, env_name)
        return not only or any(backend in backends and g in (None, gen) for backends, g in only)

    combos, left_out = [], {}
    for model in matrix.models:
        if (sel.models and model not in sel.models) or (models_only and model not in models_only):
            continue
        if matrix.models[model].opt_in and model not in sel.models and model not in (models_only or []):
            continue  # the keras.io suite runs when named (--model, a profile's models_only)
        for env_name, env in matrix.environments.items():
            for backend in (b for b in env.backends if env_name in envs and wanted(b, env_name)):
                if not _trains(matrix, backend, model, sel, notes):
                    continue
                why = model_misfit(matrix, model, backend, env_name)
                # an environment is refused only where none of its backends can run the model (a twin cannot
                # run a model file, the Keras backend beside it can)
                refused = env_name in sel.environments and all(model_misfit(matrix, model, b, env_name)
                                                               for b in env.backends)
                if why and (backend in sel.backends or refused):
                    raise SelectionError(f"{why}: leave {backend if backend in sel.backends else env_name} out of "
                                         "the selection (--only/--env), or run the model elsewhere")
                if why:
                    left_out.setdefault(model, []).append(f"{backend} ({env_name})")
                    continue
                combos += [(model, backend, env_name, v)
                           for v in _variants_for(matrix, sel, backend, env_name, gpus, notes)
                           if _variant_has(matrix, v, model, sel, notes)]
    for model, where in left_out.items():
        spec = matrix.models[model]
        what = f"Keras {spec.keras}x through Keras" if spec.keras else "its own Keras generations"
        notes.append(f"model {model} runs on {what} only: not on {', '.join(where)}")
    return combos


def plan(matrix: Matrix, sel: Selection) -> tuple[list[Cell], list[str]]:
    """The cells the selection asks for, and a note for every named variant left out where it does not apply.

    Order: repeat-major (every cell's first repeat, then every cell's second, ...), then model, environment,
    backend and variant in matrix order, so one model's backends run together within a repeat.
    """
    only = _only(matrix, sel.backends)
    _check_names("model", "--model", sel.models, matrix.models)
    _check_names("environment", "--env", sel.environments, matrix.environments)
    if "default" in sel.variants and "default" not in matrix.variants:
        raise SelectionError("--variant default: the variant that runs the backends as they ship is called `stock` "
                             "now (each environment's own default is what a run without --variant gets)")
    _check_names("variant", "--variant", [v for v in sel.variants if v != ALL_VARIANTS],
                 [*matrix.variants, ALL_VARIANTS])
    profile = sel.profile or matrix.defaults.profile
    _check_names("profile", "--profile", [profile], matrix.profiles)
    models_only = matrix.profiles[profile].models_only
    if models_only:
        outside = [m for m in sel.models if m not in models_only]
        if outside:
            raise SelectionError(
                f"--model {outside[0]}: profile {profile} runs only {', '.join(models_only)} "
                f"(profiles.{profile}.models_only)"
            )
    repeats = sel.repeats or matrix.defaults.repeats
    base_seed = matrix.defaults.seed if sel.seed is None else sel.seed
    notes: list[str] = []
    combos = _combos(matrix, sel, only, models_only, profile, notes)
    cells = [Cell(model, backend, env_name, profile, repeat, repeat_seed(base_seed, repeat), variant)
             for repeat in range(repeats) for model, backend, env_name, variant in combos]
    if not cells:
        hosts = {b: matrix.environments_for(b) for backends, _ in only for b in sorted(backends)}
        detail = "; ".join([d for d in ["; ".join(f"backend {b} is hosted by {', '.join(e)}"
                                                  for b, e in hosts.items()), *notes] if d])
        raise SelectionError(
            "the selection matches no cell" + (f" ({detail})" if detail else "")
            + ". Check --only/--env/--model/--variant."
        )
    return cells, notes


def expand(matrix: Matrix, sel: Selection) -> list[Cell]:
    """All cells the selection asks for (see `plan`)."""
    return plan(matrix, sel)[0]


def variant_settings(matrix: Matrix, cell: Cell) -> dict[str, Any]:
    """The cell's variant resolved against its backend: every setting the worker applies, none left implicit
    (None means the Keras generation's own default, which the worker records as it resolves it)."""
    backend = matrix.backends[cell.backend]
    variant = matrix.variants[cell.variant]
    return {
        "name": cell.variant,
        "changes_numerics": variant.changes_numerics_on(matrix.environments[cell.environment].keras),
        "data_format": variant.data_format or backend.data_format,
        "jit_compile": backend.jit_compile if variant.jit_compile is None else variant.jit_compile,
        "recurrent_activation": variant.recurrent_activation,
        "time_distributed": variant.time_distributed,
        "cudnn_benchmark": variant.cudnn_benchmark,
        "steps_per_execution": variant.steps_per_execution,
        "mixed_precision": variant.mixed_precision,
        "float32_precision": variant.float32_precision,
        "twin_feed": variant.twin_feed,
        "env": dict(variant.env),
        "jax_config": dict(variant.jax_config),
    }


def cell_variables(matrix: Matrix, cell: Cell) -> dict[str, str]:
    """The one place that sets what changes performance in a cell's process (backend, threads, log levels, the
    variant's variables, which come last and win), for every executor.

    Values may hold `{env_dir}`; each executor expands it (`runner.matrix.expand_env_dir`) to where it put the
    environment.
    """
    return {
        "KERAS_BACKEND": matrix.backends[cell.backend].keras_backend,
        **matrix.backends[cell.backend].env,
        **matrix.environments[cell.environment].env,
        **matrix.variants[cell.variant].env,
    }


SUITE_FLOP_KEYS = ("flop_per_sample", "train_flop_per_sample", "flop_method")


def suite_model(model: ModelSpec, config: str | None) -> dict[str, Any]:
    """The model as the worker sees it; a keras.io suite model with its configuration resolved (the profile's
    `config`, `small` by default): the configuration, its `name:hash` id (the work's `config`, so figures of two
    configurations never rank together), and the batch size and parameter count that configuration has."""
    chosen = model.config_for(config)
    if chosen is None:  # the five and a model file: their spec (and spec hash) as before the suite
        return model.model_dump(exclude={"configs", "opt_in", "suite"})
    spec = model.model_dump(exclude={"configs", "opt_in"})
    name, cfg = chosen
    body = cfg.model_dump()
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
    spec.update(config=dict(body, name=name), config_id=f"{name}:{digest}", batch_size=cfg.batch_size,
                expected_params=cfg.expected_params)
    counted = hub_flops.count(model.keras_hub.backbone, body) if model.keras_hub else None
    if counted:  # the configuration's work, for the share of peak (derived from the configuration: no new hash)
        spec.update(flop_per_sample=counted[0], train_flop_per_sample=counted[1], flop_method=hub_flops.METHOD)
    return spec


def worker_spec(matrix: Matrix, cell: Cell, data_source: str, timeout_s: float | None = None,
                sel: Selection | None = None) -> dict[str, Any]:
    """Everything the worker needs, resolved on the host so the worker never reads YAML.

    `spec_hash` covers what decides the measurement (not paths, not the time limit: a longer `--timeout` is the
    same experiment given more time): equal hashes mean the same experiment.
    """
    sel = sel or Selection()
    model = matrix.models[cell.model]
    profile = matrix.profiles[cell.profile]
    limits = profile.limits_for(cell.model, cell.backend)
    env = matrix.environments[cell.environment]
    inference = profile.inference.model_dump() if profile.inference is not None and sel.inference else None
    spec = {
        "cell": cell.to_dict(),
        "cell_id": cell.id,
        "backend": matrix.backends[cell.backend].model_dump(exclude={"models", "color"}),
        "variant": variant_settings(matrix, cell),
        # what cell_variables sets in the process (unexpanded): the worker records these, not a rebuild of them
        "variables": cell_variables(matrix, cell),
        "model": suite_model(model, limits.config) | ({"batch_size": limits.batch_size} if limits.batch_size else {}),
        "run": {
            "epochs": limits.epochs or model.epochs,
            "train_samples": limits.train_samples,
            "test_samples": limits.test_samples,
        },
        "data": {"source": data_source},
        "environment": {
            "name": cell.environment,
            "fingerprint": env.fingerprint(),
            "keras": env.keras,
            "python": env.python,
        },
        "timeout_s": timeout_s if timeout_s is not None else limits.timeout_s,
        "memory_limit_gb": limits.memory_limit_gb,
        "resources": {"cpus": limits.cpus, "gpus": limits.gpus, "shm_gb": limits.shm_gb},
        # timed after training and evaluation (models/inference.py); None: no inference in this cell
        "inference": inference,
    }
    suite = spec["model"].get("config")
    if suite:  # a suite model's epoch is its configuration's unless the profile says
        spec["run"]["train_samples"] = spec["run"]["train_samples"] or suite["train_samples"]
        spec["run"]["test_samples"] = spec["run"]["test_samples"] or suite["test_samples"]
    hashed = {k: v for k, v in spec.items() if k != "timeout_s"}
    # a model file is its bytes (module_sha256), wherever it lies: its path is not the experiment
    # and a suite configuration's FLOP counts are derived from it (models/hub_flops.py): a better count is not a new
    # experiment (the five's, written in matrix.yaml, stay in their hash as before)
    skip = {"module", "data_file"} | (set(SUITE_FLOP_KEYS) if spec["model"].get("config") else set())
    hashed["model"] = {k: v for k, v in spec["model"].items() if k not in skip}
    spec["spec_hash"] = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    # a fact about the matrix of the day, not the experiment (kept out of the hash): reports find the default.
    # `sel`, the selection the cell was planned from, decides it as `plan` did (--gpus; --python's versions).
    planned, _ = default_variant(matrix, cell.backend, cell.environment, _gpus(matrix, sel, cell.profile),
                                 _found(sel, cell.environment))
    spec["variant"]["is_default"] = cell.variant == planned
    # the one result constructor's skeleton, which the worker fills in (common/results.py)
    spec["result_template"] = skeleton(spec)
    return spec
