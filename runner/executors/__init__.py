"""Executors run cells in their environments. All share the interface in `base`; `choose` picks one by name."""

from __future__ import annotations

from runner.executors.base import CellHandle, EnvironmentBuildError, Executor, PreparedEnv
from runner.executors.venv import VenvExecutor

EXECUTORS = {"venv": VenvExecutor}


def choose(name: str) -> tuple[Executor, str]:
    """(executor, why). `auto` picks the best one available here; today that is always venv."""
    if name == "auto":
        return VenvExecutor(), "auto: the Docker executor is not available yet, using venv (cached virtualenvs)"
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of: auto, {', '.join(EXECUTORS)}")
    return EXECUTORS[name](), f"{name}: asked for on the command line"


__all__ = ["CellHandle", "EnvironmentBuildError", "Executor", "PreparedEnv", "choose"]
