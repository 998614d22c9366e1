"""Shared fixtures. Every test gets a cache of its own (KBM_CACHE: model probes, data, code copies), so no test
passes on what another one left there; the environments (`venvs/`, minutes to build) and the Docker engine's state
(`docker/`: images, the base tarball) are the user's cache's (KBM_CACHE as the session began, else
~/.cache/keras-backend-matrix), linked into each private cache: a test that needs an environment builds it once
there and reuses it, exactly as the runner does. A test about building environments sets KBM_CACHE itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import paths
from runner.executors.venv import VenvExecutor
from runner.matrix import load_matrix
from runner.paths import REPO_ROOT
from tests.fixtures import populate_keras_home, private_cache_in
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


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory) -> Iterator[Path]:
    """The user's cache, whose environments every test shares; for the session's own session- and module-scoped
    fixtures, KBM_CACHE points to a private cache (each test then gets its own, `private_cache`)."""
    shared = paths.cache_dir()
    saved = os.environ.get("KBM_CACHE")
    os.environ["KBM_CACHE"] = str(private_cache_in(tmp_path_factory.mktemp("kbm-session-cache"), shared))
    yield shared
    if saved is None:
        os.environ.pop("KBM_CACHE", None)
    else:
        os.environ["KBM_CACHE"] = saved


@pytest.fixture(autouse=True)
def private_cache(shared_cache, tmp_path_factory, monkeypatch) -> Path:
    """This test's own cache (KBM_CACHE, inherited by the runs it starts): empty but for the shared folders."""
    root = private_cache_in(tmp_path_factory.mktemp("kbm-cache"), shared_cache)
    monkeypatch.setenv("KBM_CACHE", str(root))
    return root


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
