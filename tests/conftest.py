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

# What a test needs, read from the fixtures it takes, so `-m "not venv and not docker and not slurm and not py36"`
# (README: the logic alone, in under a minute) leaves out every test that builds or starts something real, also
# one that forgets its own marker.
NEEDS = {"prepared": "venv", "cache": "venv", "built": "venv", "keras_home": "venv", "fake_cluster": "venv",
         "docker_engine": "docker", "docker_env": "docker", "jax_image": "docker", "slurm": "slurm",
         "cluster": "slurm", "faulty_run": "slurm"}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS:
                item.add_marker(NEEDS[fixture])


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
