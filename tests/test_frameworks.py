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


def test_a_fake_framework_is_planned_probed_reported_and_drawn(fake_framework, tmp_path):
    """One module (the fixture's) and one matrix entry: its cells are planned, its probe answers through the
    worker's provenance, and its results are ranked, tabled and drawn like any other backend's."""
    import yaml

    from common.display import color_of, display_order
    from reports.build import write_report
    from runner.cells import Selection, plan
    from tests.results_factory import make_result, make_spec, write_run

    data = yaml.safe_load((DEFAULT_MATRIX).read_text())
    data["backends"]["fakefw"] = {"title": "FakeFW", "keras_backend": "jax", "framework": "fakefw"}
    data["environments"]["keras3-fakefw"] = {"python": ">=3.11,<3.14", "keras": "3.15.1", "backends": ["fakefw"],
                                             "requirements": ["keras==3.15.1", "fakefw==0.1"]}
    data["variants"]["stock"]["applies_to"]["backends"].append("fakefw")
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cells, _ = plan(load_matrix(path), Selection(backends=("fakefw",), models=("mlp",), profile="smoke"))
    assert [(c.backend, c.environment, c.model) for c in cells] == [("fakefw", "keras3-fakefw", "mlp")]
    assert provenance.framework_info("fakefw")[2]["name"] == "Fake GPU 9000"  # probed by its own module

    ours = make_result("mlp", "fakefw", "keras3-fakefw", steady=[0.5, 0.5, 0.5])
    ours["backend"]["title"] = "FakeFW"
    jax = make_result("mlp", "jax", steady=[1.0, 1.0, 1.0])
    run = write_run(tmp_path / "results", [(ours, make_spec(ours)), (jax, make_spec(jax))])
    index = write_report([run], run / "report")
    summary = (index.parent / "summary.md").read_text()
    assert "FakeFW" in summary.split("## ", 2)[1]  # in the first table, ranked with the others
    # a backend the matrix of the day does not name goes after the known ones of its group, in a colour of its own
    assert display_order(["fakefw", "jax"]) == ["jax", "fakefw"]
    svg = "".join(p.read_text() for p in (index.parent / "plots").glob("mlp-speed*.svg"))
    assert color_of("fakefw").lower() in svg.lower() and color_of("jax").lower() in svg.lower()
