"""The GPU images' pins still resolve on PyPI, checked from metadata only (runner/pincheck.py: no multi-GB
download), so a broken pin fails CI before a GPU machine tries the build. Needs PyPI (a package registry)."""

from __future__ import annotations

import time

import pytest

from runner.matrix import load_matrix
from runner.paths import REPO_ROOT
from runner.pincheck import _Index, check, image_requirements

pytestmark = pytest.mark.docker  # the GPU images' pins, read from PyPI's metadata (a registry, not an engine)


def test_every_keras3_gpu_image_resolves_its_pins_from_metadata_alone():
    matrix = load_matrix(REPO_ROOT / "matrix.yaml")
    names = [n for n, e in matrix.environments.items() if e.keras.startswith("3") and e.docker and e.docker.gpu]
    assert names == ["keras3-tensorflow", "keras3-jax", "keras3-torch"]
    index, started = _Index(), time.perf_counter()
    for name in names:
        requirements = image_requirements(matrix, name, "gpu")
        outcome = check(requirements, matrix.environments[name].image_python, index)
        assert outcome.problems == [], f"{name}: {outcome.problems}"
        assert any(p.startswith("nvidia-cudnn") for p in outcome.chosen), outcome.chosen  # CUDA comes as wheels
    assert time.perf_counter() - started < 120


def test_a_broken_pin_is_caught_with_the_chain_that_needs_it():
    outcome = check(["keras==3.15.1", "jax[cuda13]==0.0.999", "tensorflow-cpu==2.21.0"], "3.6")
    problems = " | ".join(outcome.problems)
    assert "jax[cuda13]==0.0.999: no such release" in problems
    assert "tensorflow-cpu==2.21.0: no wheel for CPython 3.6 manylinux x86_64" in problems
    assert "keras==3.15.1: no wheel for CPython 3.6" in problems
