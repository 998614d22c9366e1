"""Shared fixtures. Tests that need a real environment build it once in the venv cache (KBM_CACHE or the user's
cache) and reuse it, exactly as the runner does."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.executors.venv import VenvExecutor
from runner.matrix import load_matrix
from runner.paths import REPO_ROOT
from tests.fixtures import populate_keras_home
from tests.history_fixtures import make_nights, postgres, real_runs  # noqa: F401 - the history tests' fixtures


@pytest.fixture(scope="session")
def matrix():
    return load_matrix(REPO_ROOT / "matrix.yaml")


@pytest.fixture(scope="session")
def keras_home(tmp_path_factory) -> Path:
    return populate_keras_home(tmp_path_factory.mktemp("keras_home"))


@pytest.fixture(scope="session")
def prepared(matrix):
    """Build (or reuse) every Keras 3 environment of the matrix, once per test session."""
    executor = VenvExecutor()
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = executor.prepare(name, matrix.environments[name], lambda msg: print(msg))
        return cache[name]

    return get
