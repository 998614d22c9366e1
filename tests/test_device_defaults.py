"""`default_variant` per device class: a CPU decision (jax-ynn-no-conv picks XLA CPU's convolution library) is not a
GPU one. matrix.yaml takes one name or `{cpu: NAME, gpu: NAME}`, on `defaults` and on each environment, validated
with FILE:LINE errors; planning takes the class of the cells (the profile's or --gpus' GPUs, or those --python's
interpreter sees)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.cells import Selection, plan
from runner.matrix import MatrixError, load_matrix
from runner.paths import REPO_ROOT

REAL = (REPO_ROOT / "matrix.yaml").read_text()
JAX_DEFAULT = "    default_variant: {cpu: jax-ynn-no-conv, gpu: stock}\n"


def _error(tmp_path: Path, old: str, new: str) -> tuple[str, int, str]:
    """(key, line, message) of the first problem of the matrix with `old` replaced by `new`."""
    assert old in REAL, old
    path = tmp_path / "matrix.yaml"
    path.write_text(REAL.replace(old, new, 1))
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    match = re.match(r".+matrix\.yaml:(\d+): (\S+): (.*)", str(err.value).splitlines()[0])
    assert match, str(err.value)
    return match.group(2), int(match.group(1)), match.group(3)


def test_the_real_matrix_keeps_its_cpu_decisions_off_the_gpu(matrix):
    assert matrix.default_variant("keras3-jax") == "jax-ynn-no-conv"
    assert matrix.default_variant("keras3-jax", gpu=True) == "stock"
    # stock leaves out the PyTorch twin (its own layout is NCHW): the GPU keeps channels_first, said in matrix.yaml
    assert matrix.default_variant("keras3-torch", gpu=True) == "torch-channels-first"
    assert matrix.default_variant("keras3-tensorflow", gpu=True) == "stock"
    assert matrix.default_variant("keras2017-theano", gpu=True) == "faithful-2017"  # one name: both classes
    assert "GPU sweep" in REAL[REAL.index("  keras3-jax:"):REAL.index(JAX_DEFAULT)]  # the choice and its reason


def test_planning_takes_the_default_of_the_cells_device_class(matrix):
    sel = Selection(backends=("jax@keras3",), models=("cnn",))
    assert {c.variant for c in plan(matrix, sel)[0]} == {"jax-ynn-no-conv"}
    on_gpu, notes = plan(matrix, Selection(backends=("jax@keras3",), models=("cnn",), gpus=1))
    assert {(c.backend, c.variant) for c in on_gpu} == {("jax", "stock"), ("jax-native", "stock")} and not notes
    # --python's interpreter on a GPU with a jaxlib the CPU flags were not verified with: the GPU default, no note
    found = {"keras3-jax": {"jaxlib": "0.11.2"}}
    cells, notes = plan(matrix, Selection(backends=("jax@keras",), models=("mlp",), gpus=1, found=found))
    assert [c.variant for c in cells] == ["stock"] and notes == []


@pytest.mark.parametrize(("new", "key", "words"), [
    ("    default_variant: {cpu: jax-ynn-no-conv, gppu: stock}\n", "environments.keras3-jax.default_variant.gppu",
     "unknown key"),
    ("    default_variant: {cpu: jax-ynn-no-conv, gpu: stokc}\n", "environments.keras3-jax.default_variant.gpu",
     "did you mean 'stock'"),
    # a CPU-only variant as the one default of every class: wrong on a GPU, and the message says the fix
    ("    default_variant: jax-no-ynn\n", "environments.keras3-jax.default_variant",
     "on a GPU must apply to its backend jax: variant jax-no-ynn applies to CPU-only cells"),
    ("    default_variant: {cpu: jax-no-ynn, gpu: jax-no-ynn}\n", "environments.keras3-jax.default_variant.gpu",
     "{cpu: NAME, gpu: NAME}"),
    ("    default_variant: {}\n", "environments.keras3-jax.default_variant", "name a variant for cpu, gpu or both"),
    ("    default_variant: [stock]\n", "environments.keras3-jax.default_variant", "valid string"),
])  # fmt: skip
def test_mistakes_in_a_per_device_default_name_file_line_and_key(tmp_path, new, key, words):
    found, line, message = _error(tmp_path, JAX_DEFAULT, new)
    assert (found, words in message) == (key, True), message
    assert line == REAL[: REAL.index(JAX_DEFAULT)].count("\n") + 1


def test_the_defaults_take_one_per_device_class_too(tmp_path):
    old = "  default_variant: stock  #"
    path = tmp_path / "matrix.yaml"
    path.write_text(REAL.replace(old, "  default_variant: {cpu: stock, gpu: stock}  #", 1))
    assert load_matrix(path).fallback_variant(gpu=True) == "stock"
    key, line, message = _error(tmp_path, old, "  default_variant: {cpu: stock, gpu: stok}  #")
    assert key == "defaults.default_variant.gpu" and "did you mean 'stock'" in message
    assert line == REAL[: REAL.index(old)].count("\n") + 1
