"""Executors run cells in their environments. All share the interface in `base`; `choose` picks one by name.

    base.py        the interface (plan, prepare, launch, write_manifests) and the handles executors share
    container.py   what a container looks like from the inside (paths, variables), for Docker and Kubernetes
    venv.py        cached virtualenvs, one process per cell (the default without an engine)
    existing.py    an interpreter the user already has (--python): builds nothing
    docker/        one image per environment, one confined container per cell
    slurm.py       one sbatch job per cell, in the venv executor's environments
    kubernetes.py  one batch/v1 Job per cell, in the Docker executor's images

A new executor is a module here implementing `base.Executor`, registered in EXECUTORS below (name -> how it is
made from the command line's ExecutorOptions): every executor, --python's included, is chosen there. Executors never
import the orchestration loop (runner.orchestrate, which imports them); a cell's variables come from
runner.cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import BadInput
from runner.executors.base import CellHandle, EnvironmentBuildError, EnvironmentUnavailable, Executor, PreparedEnv
from runner.executors.docker import DockerExecutor, DockerUnavailable, connect, engine_where
from runner.executors.existing import ExistingExecutor
from runner.executors.kubernetes import KubernetesExecutor
from runner.executors.slurm import SlurmExecutor
from runner.executors.venv import VenvExecutor


class ExecutorChoiceError(BadInput):
    """An executor that does not exist, or options it cannot honour (--gpus with venv)."""


@dataclass(frozen=True)
class ExecutorOptions:
    """What the command line tells an executor when it is made: --gpus, and --python with the matrix."""

    gpus: int | None = None
    python: str | None = None
    matrix: Any = None
    # --dry-run: a scheduler's executor that only writes what it would submit needs no scheduler here
    dry_run: bool = False


def _venv(options: ExecutorOptions) -> Executor:
    if options.gpus:
        raise ExecutorChoiceError("--gpus asks a container engine for devices: use --executor docker (venv runs on "
                                  "whatever GPU the environment's frameworks find)")
    return VenvExecutor()


def _existing(options: ExecutorOptions) -> Executor:
    if options.python is None or options.matrix is None:
        raise ExecutorChoiceError("--executor existing runs the cells in an interpreter you name: pass --python PATH")
    return ExistingExecutor(options.python, options.matrix)


# the one registry of executors: name -> how it is made from the command line's options
EXECUTORS: dict[str, Callable[[ExecutorOptions], Executor]] = {
    "venv": _venv,
    "docker": lambda options: DockerExecutor(gpus=options.gpus),
    "slurm": lambda options: SlurmExecutor(dry_run=options.dry_run),
    "kubernetes": lambda options: KubernetesExecutor(),
    "existing": _existing,
}
EXECUTOR_CHOICES = ("auto", *EXECUTORS)  # what --executor accepts: the registry's names, and auto (choose)


def choose(name: str, options: ExecutorOptions | None = None) -> tuple[Executor, str]:
    """(executor, why). `auto`: docker when an engine answers (a short ping), else venv. `--gpus` asks the Docker
    executor for devices; where it cannot have them that is an error (BadInput), never a CPU run."""
    options = options or ExecutorOptions()
    if name == "auto":
        try:
            client = connect()
        except DockerUnavailable as exc:
            if options.gpus:
                raise DockerUnavailable(f"--gpus {options.gpus} needs a Docker engine, but {exc}; start one") from None
            return VenvExecutor(), f"auto: {exc}, so venv (cached virtualenvs); `make engine` starts an engine"
        executor = DockerExecutor(client, gpus=options.gpus)
        return executor, f"auto: a Docker engine answered at {engine_where()}, so docker (one container per cell)"
    if name not in EXECUTORS:
        raise ExecutorChoiceError(f"unknown executor {name!r}; choose one of: auto, {', '.join(EXECUTORS)}")
    executor = EXECUTORS[name](options)
    if name == "docker":
        return executor, f"docker: asked for on the command line (engine {engine_where()})"
    if name == "existing":
        return executor, f"existing: --python {options.python} (builds nothing; the interpreter's own packages)"
    return executor, f"{name}: asked for on the command line"


__all__ = ["EXECUTORS", "CellHandle", "EnvironmentBuildError", "EnvironmentUnavailable", "Executor",
           "ExecutorOptions", "PreparedEnv", "choose"]
