"""Executors run cells in their environments. All share the interface in `base`; `choose` picks one by name.

    base.py        the interface (plan, prepare, launch, write_manifests) and the handles executors share
    container.py   what a container looks like from the inside (paths, variables), for Docker and Kubernetes
    venv.py        cached virtualenvs, one process per cell (the default without an engine)
    docker/        one image per environment, one confined container per cell
    slurm.py       one sbatch job per cell, in the venv executor's environments
    kubernetes.py  one batch/v1 Job per cell, in the Docker executor's images

A new executor is a module here implementing `base.Executor`, registered in EXECUTORS below. Executors never
import the orchestration loop (runner.orchestrate, which imports them); a cell's variables come from
runner.cells.
"""

from __future__ import annotations

from runner.executors.base import CellHandle, EnvironmentBuildError, EnvironmentUnavailable, Executor, PreparedEnv
from runner.executors.docker import DockerExecutor, DockerUnavailable, connect, engine_where
from runner.executors.kubernetes import KubernetesExecutor
from runner.executors.slurm import SlurmExecutor
from runner.executors.venv import VenvExecutor

EXECUTORS = {
    "venv": VenvExecutor,
    "docker": DockerExecutor,
    "slurm": SlurmExecutor,
    "kubernetes": KubernetesExecutor,
}


def choose(name: str, gpus: int | None = None, dry_run: bool = False) -> tuple[Executor, str]:
    """(executor, why). `auto`: docker when an engine answers (a short ping), else venv. `gpus` (--gpus) asks the
    Docker executor for devices; where it cannot have them that is an error (ValueError), never a CPU run.
    `dry_run`: a scheduler's executor that only writes what it would submit needs no scheduler here."""
    if name == "auto":
        try:
            client = connect()
        except DockerUnavailable as exc:
            if gpus:
                raise DockerUnavailable(f"--gpus {gpus} needs a Docker engine, but {exc}; start one") from None
            return VenvExecutor(), f"auto: {exc}, so venv (cached virtualenvs); `make engine` starts an engine"
        executor = DockerExecutor(client, gpus=gpus)
        return executor, f"auto: a Docker engine answered at {engine_where()}, so docker (one container per cell)"
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of: auto, {', '.join(EXECUTORS)}")
    if name == "docker":
        return DockerExecutor(gpus=gpus), f"docker: asked for on the command line (engine {engine_where()})"
    if gpus and name == "venv":
        raise ValueError("--gpus asks a container engine for devices: use --executor docker (venv runs on whatever "
                         "GPU the environment's frameworks find)")
    if name == "slurm":
        return SlurmExecutor(dry_run=dry_run), "slurm: asked for on the command line"
    return EXECUTORS[name](), f"{name}: asked for on the command line"


__all__ = ["CellHandle", "EnvironmentBuildError", "EnvironmentUnavailable", "Executor", "PreparedEnv", "choose"]
