"""One module per framework (models/frameworks/<name>.py), found by the name matrix.yaml gives a backend's
`framework`: every framework of the matrix has one, and a framework without one (or without a hook) is answered by
the defaults, so a new framework needs its module and its matrix entries, nothing else on the worker side."""

from __future__ import annotations

import sys
import types

import pytest

from models import frameworks, memory, precision, provenance
from models.queued import queued_work_waiter
from runner.matrix import load_matrix
from runner.paths import DEFAULT_MATRIX

HOOKS = ("probe", "gpu_peak", "preallocation", "queued_waiter", "set_precision", "read_precision", "placement")


def test_every_framework_of_the_matrix_has_its_module_with_a_probe_and_a_precision_read_back():
    matrix = load_matrix(DEFAULT_MATRIX)
    for name in {b.framework for b in matrix.backends.values()}:
        module = frameworks.get(name)
        assert module is not None, f"models/frameworks/{name}.py is missing"
        assert frameworks.has(name, "probe") and frameworks.has(name, "read_precision"), name


@pytest.fixture
def fake_framework(monkeypatch):
    """A framework called `fakefw`: its importable module (what `import fakefw` gives a cell) and its one module
    under models/frameworks/, registered the way Python finds a file there."""
    monkeypatch.setitem(sys.modules, "fakefw", types.SimpleNamespace(__version__="0.1"))
    module = types.ModuleType("models.frameworks.fakefw")
    module.probe = lambda fw: ({"threads": 3}, {"available": True, "devices": ["fake:0"], "name": "Fake GPU 9000",
                                                "count": 2, "compute_capability": "7.0"})
    module.gpu_peak = lambda: (12.5, "fakefw.peak()", None)
    module.queued_waiter = lambda on_gpu: (lambda model: None) if on_gpu else None
    state = {"mode": None}
    module.set_precision = lambda mode, on_gpu: state.update(mode=mode)
    module.read_precision = lambda on_gpu: {"float32_matmul": state["mode"], "float32_conv": "float32"}
    monkeypatch.setitem(sys.modules, "models.frameworks.fakefw", module)
    return module


def test_a_new_framework_is_its_module_alone(fake_framework):
    version, threads, gpu = provenance.framework_info("fakefw")
    assert (version, threads, gpu["name"], gpu["count"]) == ("0.1", {"threads": 3}, "Fake GPU 9000", 2)
    assert memory.gpu_peak("fakefw", gpu) == (12.5, "fakefw.peak()", None)
    assert queued_work_waiter("fakefw", True) is not None and queued_work_waiter("fakefw", False) is None
    # TF32 asked and read back, but a compute capability below 8.0 has no TF32 units: float32 is what ran
    block = precision.apply("fakefw", "tf32", gpu, "float32")
    assert block["requested"] == "tf32" and block["float32_matmul"] == "float32" and block["effective"] == "float32"
    assert "7.0" in block["note"]
    assert memory.preallocation("fakefw") is None  # a hook it leaves out: the default answer


def test_a_framework_without_a_module_gets_the_defaults(monkeypatch):
    monkeypatch.setitem(sys.modules, "nomodulefw", types.SimpleNamespace(__version__="2.0"))
    assert frameworks.get("nomodulefw") is None
    assert not any(frameworks.has("nomodulefw", hook) for hook in HOOKS)
    version, threads, gpu = provenance.framework_info("nomodulefw")
    assert version == "2.0" and threads == {} and gpu == {"available": None, "note": "no probe for nomodulefw"}
    assert memory.gpu_peak("nomodulefw") == (None, None, "nomodulefw has no API for its peak device memory")
    block = precision.apply("nomodulefw", "float32", {"available": False}, "float32")
    assert block["effective"] == "float32" and block["float32_matmul"] is None


def test_a_mixed_policy_is_the_arithmetic_whatever_the_float32_switch():
    assert precision.effective({"dtype_policy": "mixed_bfloat16", "float32_matmul": "tf32"}) == "mixed_bfloat16"
    assert precision.effective({"dtype_policy": "float32", "float32_conv": "tf32"}) == "tf32"
    assert precision.effective({"dtype_policy": "float32", "float32_matmul": "float32"}) == "float32"
