"""Plan the matrix: expand it into cells, filter them, and resolve each cell into the spec its worker reads."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from runner.matrix import Matrix


class SelectionError(ValueError):
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

    @property
    def id(self) -> str:
        return f"{self.model}.{self.backend}.{self.environment}.{self.profile}.r{self.repeat}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Selection:
    backends: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    profile: str | None = None
    repeats: int | None = None
    seed: int | None = None


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


def _only(matrix: Matrix, asked: Iterable[str]) -> list[tuple[set[str], str | None]]:
    """Each --only value as (backends it takes, generation or None). NAME is a backend or a family (matrix
    `backends.<name>.family`): `tensorflow` takes Keras 3's TensorFlow and `tensorflow1`; `tensorflow@keras3` only
    Keras 3's."""
    names = sorted(set(matrix.backends) | {b.family for b in matrix.backends.values() if b.family})
    gens = sorted({generation(matrix, e) for e in matrix.environments})
    out = []
    for value in asked:
        name, _, gen = value.partition("@")
        _check_names("backend or framework family", "--only", [name], names)
        if gen:
            _check_names("Keras generation (NAME@GEN)", f"--only {name}@", [gen], gens)
        out.append((set(matrix.selected_by(name)), gen or None))
    return out


def _environments(matrix: Matrix, sel: Selection, only: list[tuple[set[str], str | None]]) -> set[str]:
    """--env wins; else with --only every environment hosting a backend it takes (so `--only cntk` also finds the
    Keras 2.2.4 variant); else the matrix's default environments."""
    if sel.environments:
        return set(sel.environments)
    if only:
        return {e for backends, _ in only for b in backends for e in matrix.environments_for(b)}
    return set(matrix.defaults.environments or matrix.environments)


def expand(matrix: Matrix, sel: Selection) -> list[Cell]:
    """All cells the selection asks for, in matrix order: model-major, so one model's backends run together."""
    only = _only(matrix, sel.backends)
    _check_names("model", "--model", sel.models, matrix.models)
    _check_names("environment", "--env", sel.environments, matrix.environments)
    profile = sel.profile or matrix.defaults.profile
    _check_names("profile", "--profile", [profile], matrix.profiles)
    repeats = sel.repeats or matrix.defaults.repeats
    seed = matrix.defaults.seed if sel.seed is None else sel.seed
    envs = _environments(matrix, sel, only)

    def wanted(backend: str, env_name: str) -> bool:
        gen = generation(matrix, env_name)
        return not only or any(backend in backends and g in (None, gen) for backends, g in only)

    cells = []
    for model in matrix.models:
        if sel.models and model not in sel.models:
            continue
        for env_name, env in matrix.environments.items():
            if env_name not in envs:
                continue
            for backend in env.backends:
                if not wanted(backend, env_name):
                    continue
                for repeat in range(repeats):
                    cells.append(Cell(model, backend, env_name, profile, repeat, seed))
    if not cells:
        hosts = {b: matrix.environments_for(b) for backends, _ in only for b in sorted(backends)}
        detail = "; ".join(f"backend {b} is hosted by {', '.join(e)}" for b, e in hosts.items())
        raise SelectionError(
            "the selection matches no cell" + (f" ({detail})" if detail else "") + ". Check --only/--env/--model."
        )
    return cells


def cell_variables(matrix: Matrix, cell: Cell) -> dict[str, str]:
    """The one place that sets what changes performance in a cell's process (backend, threads, log levels).

    Values may hold `{env_dir}`; each executor expands it (`runner.matrix.expand_env_dir`) to where it put the
    environment.
    """
    return {
        "KERAS_BACKEND": matrix.backends[cell.backend].keras_backend,
        **matrix.backends[cell.backend].env,
        **matrix.environments[cell.environment].env,
    }


def worker_spec(matrix: Matrix, cell: Cell, data_source: str, timeout_s: float | None = None) -> dict[str, Any]:
    """Everything the worker needs, resolved on the host so the worker never reads YAML.

    `spec_hash` covers what decides the measurement (not paths): equal hashes mean the same experiment.
    """
    model = matrix.models[cell.model]
    limits = matrix.profiles[cell.profile].limits_for(cell.model, cell.backend)
    env = matrix.environments[cell.environment]
    spec = {
        "cell": cell.to_dict(),
        "cell_id": cell.id,
        "backend": matrix.backends[cell.backend].model_dump(),
        "model": model.model_dump(),
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
    }
    spec["spec_hash"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return spec
