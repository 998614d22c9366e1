"""The native twins (models/native/): the same function as the Keras model, planned as backends of the Keras 3
environments, run by the worker like any cell.

Host side: the recording api reads the model files into chains with the examples' parameter counts, the
initializers are Keras 3's, and planning puts each twin beside its Keras backend. In the real environments
(`venv`): each twin against Keras on its own backend from identical weights (tests/native_check.py: parameter
counts, the forward pass, one and two optimizer steps within 1e-6 relative, a short fit), and `./kbm --only torch
--model mlp` end to end, report and Keras tax included.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.native import init
from models.native.layers import NativeAPI, NoNativeTwin
from runner.cells import Selection, SelectionError, expand, plan
from runner.paths import REPO_ROOT
from tests.fixtures import run_results, run_runner, the_run


class Data:
    def __init__(self, shape, num_classes=10):
        self.input_shape, self.num_classes = shape, num_classes


SHAPES = {"mlp": {"channels_last": (784,), "channels_first": (784,)},
          "cnn": {"channels_last": (28, 28, 1), "channels_first": (1, 28, 28)},
          "hrnn": {"channels_last": (28, 28, 1), "channels_first": (28, 28, 1)}}


def chain_of(model: str, data_format: str = "channels_last"):
    module = importlib.import_module(f"models.{model}")
    return module.build(NativeAPI(data_format), Data(SHAPES[model][data_format]))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("model", ["mlp", "cnn", "hrnn"])
def test_the_twins_read_the_model_files_with_the_examples_parameter_counts(matrix, model, data_format):
    chain = chain_of(model, data_format)
    assert chain.params == matrix.models[model].expected_params
    assert sum(int(np.prod(s)) for s in chain.weight_shapes) == chain.params


def test_the_recorded_layers_are_the_examples():
    cnn = chain_of("cnn", "channels_first")
    assert [layer.kind for layer in cnn.layers] == ["conv2d", "conv2d", "maxpool2d", "dropout", "flatten", "dense",
                                                   "dropout", "dense"]
    assert [layer.output_shape for layer in cnn.layers[:5]] == [(32, 26, 26), (64, 24, 24), (64, 12, 12),
                                                                (64, 12, 12), (9216,)]
    assert [(la.config.get("rate"), la.config.get("activation")) for la in chain_of("mlp").layers] == [
        (None, "relu"), (0.2, None), (None, "relu"), (0.2, None), (None, "softmax")]
    hrnn = chain_of("hrnn")
    assert hrnn.layers[0].kind == "time_distributed" and hrnn.layers[0].inner.input_shape == (28, 1)
    assert hrnn.layers[0].output_shape == (28, 128) and hrnn.layers[1].output_shape == (128,)


@pytest.mark.parametrize("model, shape", [("cifar10_cnn", (32, 32, 3)), ("babi_rnn", (552, 5))])
def test_models_that_augment_or_branch_have_no_twin(model, shape):
    with pytest.raises(NoNativeTwin):
        importlib.import_module(f"models.{model}").build(NativeAPI(), Data(shape, 36))


def test_initial_weights_are_keras_3s_and_the_same_for_every_twin_of_a_seed():
    chain = chain_of("hrnn")
    weights = init.initial_weights(chain, np.random.RandomState(3))
    assert [w.shape for w in weights] == chain.weight_shapes
    kernel, recurrent, bias = weights[:3]
    limit = np.sqrt(6 / (1 + 4 * 128))  # Glorot uniform over the LSTM kernel (1, 512)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(128), atol=1e-5)  # orthogonal (rows: 128 < 512)
    assert (bias[128:256] == 1).all() and (bias[:128] == 0).all() and (bias[256:] == 0).all()  # unit forget bias
    cnn = init.initial_weights(chain_of("cnn"), np.random.RandomState(3))
    assert np.abs(cnn[0]).max() <= np.sqrt(6 / (9 * 1 + 9 * 32))  # a conv's fans count its receptive field
    assert not cnn[1].any()  # zero biases
    again = init.initial_weights(chain, np.random.RandomState(3))
    assert all((a == b).all() for a, b in zip(weights, again, strict=True))


def test_no_module_the_2017_environments_load_imports_the_twins_at_load_time():
    """models/native/ is Python 3.11+; the worker may import it only inside a function, for a native backend."""
    import ast

    for path in sorted((REPO_ROOT / "models").glob("*.py")):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not any("native" in name for name in names), path
    worker = (REPO_ROOT / "models" / "worker.py").read_text()
    assert "from models import native" in worker  # lazily, in make_driver


# -- planning ------------------------------------------------------------------------------------------------------
def test_only_a_framework_takes_both_sides_and_a_driver_narrows_it(matrix):
    def backends(*only: str, model: str = "mlp") -> list[str]:
        return sorted(c.backend for c in expand(matrix, Selection(backends=only, models=(model,))))

    assert backends("torch") == ["torch", "torch-native"]
    assert backends("tensorflow@keras3") == ["tensorflow", "tensorflow-native"]  # not TensorFlow 1.3
    assert backends("tensorflow") == ["tensorflow", "tensorflow-native", "tensorflow1"]
    assert backends("tensorflow@keras3@keras") == ["tensorflow"]
    assert backends("jax@native") == backends("jax-native") == ["jax-native"]
    assert backends("tensorflow@keras") == ["tensorflow", "tensorflow1"]
    with pytest.raises(SelectionError, match="at most one generation and one driver"):
        expand(matrix, Selection(backends=("torch@keras@native",)))


def test_twins_are_planned_only_for_the_models_they_have_and_say_so_when_asked(matrix):
    cells = expand(matrix, Selection(backends=("torch-native", "jax-native", "tensorflow-native")))
    assert {(c.backend, c.model) for c in cells} == {
        *((b, m) for b in ("torch-native", "jax-native") for m in ("mlp", "cnn", "hrnn")),
        ("tensorflow-native", "mlp"), ("tensorflow-native", "cnn")}
    cells, notes = plan(matrix, Selection(backends=("tensorflow",), models=("hrnn",)))
    assert {c.backend for c in cells} == {"tensorflow", "tensorflow1"}
    assert notes == ["tensorflow-native trains mlp, cnn only: its cells of hrnn are not planned"]


def test_a_twin_runs_its_environments_default_and_only_the_variants_that_apply_to_it(matrix):
    defaults = {c.backend: c.variant for c in expand(matrix, Selection(models=("cnn",)))}
    assert defaults["torch-native"] == defaults["torch"] == "torch-channels-first"
    assert defaults["jax-native"] == defaults["jax"] == "jax-ynn-no-conv"
    assert defaults["tensorflow-native"] == defaults["tensorflow"] == "stock"
    every = expand(matrix, Selection(models=("mlp",), backends=("torch", "tensorflow@keras3"), variants=("all",)))
    variants: dict[str, set[str]] = {}
    for c in every:
        variants.setdefault(c.backend, set()).add(c.variant)
    # the framework's own settings, TF32 (a no-op on a CPU) and the host-fed twin; never Keras' own
    assert variants["torch-native"] == {"torch-channels-first", "torch-threads-1", "torch-omp-passive", "torch-compile",
                                        "tf32", "native-host-feed"}
    assert variants["tensorflow-native"] == {"stock", "tf-onednn-off", "tf-xla", "tf-interop-1", "tf-intraop-1",
                                             "tf32", "native-host-feed"}
    assert {"torch-compile", "faithful-2017", "stock"} <= variants["torch"]


# -- in the real environments --------------------------------------------------------------------------------------
def check(prepared, env_name: str, keras_backend: str, tmp_path: Path) -> dict:
    env = prepared(env_name)
    out = tmp_path / "check.json"
    variables = {**os.environ, "KERAS_BACKEND": keras_backend, "PYTHONPATH": str(REPO_ROOT),
                 "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_HOME": str(tmp_path / "keras")}
    variables.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(Path(env.location) / "bin" / "python"), str(REPO_ROOT / "tests" / "native_check.py"),
                           str(out)], cwd=REPO_ROOT, env=variables, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.venv
@pytest.mark.parametrize("env_name, keras_backend", [("keras3-torch", "torch"), ("keras3-jax", "jax"),
                                                     ("keras3-tensorflow", "tensorflow")])
def test_each_twin_is_the_keras_model_on_its_own_backend(matrix, prepared, env_name, keras_backend, tmp_path):
    found = check(prepared, env_name, keras_backend, tmp_path)
    assert set(found["forward"]) == set(matrix.backends[f"{keras_backend}-native"].models)
    for model, forward in found["forward"].items():
        assert forward["params"] == forward["keras_params"] == matrix.models[model].expected_params
        assert forward["max_abs_diff"] < 1e-5 and forward["argmax_equal"], (model, forward)  # Keras' weights in
        assert forward["rows_sum"] == pytest.approx(1.0)
        if model == "hrnn":
            assert forward["gate_probe"] == pytest.approx([0.2689414, 0.5, 0.8807971])  # sigmoid gates
    for model, step in found["optimizer"].items():
        assert step["optimizer"] == matrix.models[model].optimizer.name
        assert step["first_step_rel_diff"] <= 1e-6 and step["second_step_rel_diff"] <= 1e-6, (model, step)
        assert step["update_size"] > 1e-4  # the step moved the weights: a comparison of no update proves nothing
    assert found["optimizer"]["cnn"]["learning_rate"] == 1.0
    for name, run in found["train"].items():
        assert run["jit_resolved"] is (keras_backend == "jax" or name.endswith("jit=True")), name
        assert [e["epoch"] for e in run["epochs"]] == [1, 2] and all(e["val_s"] > 0 for e in run["epochs"])
        assert all(np.isfinite([e["loss"], e["val_loss"], e["accuracy"]]).all() for e in run["epochs"])
        assert run["evaluate"][0] == pytest.approx(run["epochs"][-1]["val_loss"], rel=1e-5)  # the same pass
        assert run["predict_shape"][1] == 10 and run["moved"] > 1e-3  # training changed the predictions
        assert "cpu" in run["device"].lower()


@pytest.mark.venv
def test_keras_on_pytorch_and_its_twin_run_side_by_side_and_the_report_shows_the_tax(matrix, keras_home, tmp_path):
    proc = run_runner(["--only", "torch", "--model", "mlp", "--profile", "smoke"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["cell"]["backend"]: r for r in run_results(tmp_path)}
    assert set(results) == {"torch", "torch-native"}
    twin, keras = results["torch-native"], results["torch"]
    assert twin["backend"]["driver"] == "native" and keras["backend"]["driver"] == "keras"
    assert twin["backend"]["family"] == "torch" and twin["cell"]["variant"] == keras["cell"]["variant"]
    assert twin["status"] == "ok" and twin["params"] == keras["params"] == matrix.models["mlp"].expected_params
    assert twin["work"] == keras["work"]  # the same work, so the report divides them
    assert "keras" not in twin["versions"] and twin["versions"]["torch"] == keras["versions"]["torch"]
    assert twin["settings"]["jit_compile_resolved"] is False and len(twin["epochs"]) == 3
    assert all(e["val_s"] > 0 for e in twin["epochs"]) and twin["article_epoch_s"] > 0
    assert twin["inference"]["error"] is None and twin["inference"]["latency"][0]["method"] == "predict_on_batch"
    assert twin["test"]["samples"] == keras["test"]["samples"] and twin["data"] == keras["data"]
    summary = (the_run(tmp_path / "results") / "report" / "summary.md").read_text()
    section = summary[summary.index("## The Keras tax"):]
    (line,) = [x for x in section.splitlines() if x.startswith("| MNIST MLP | PyTorch |")]
    assert "torch-channels-first" in line and "x (" in line.split(" | ")[6]  # the tax with its interval


@pytest.mark.venv
def test_the_jax_and_tensorflow_twins_run_through_the_worker(matrix, keras_home, tmp_path):
    proc = run_runner(["--only", "jax@native", "--only", "tensorflow@native", "--model", "mlp", "--profile", "smoke",
                       "--no-report"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["cell"]["backend"]: r for r in run_results(tmp_path)}
    assert set(results) == {"jax-native", "tensorflow-native"}
    assert results["jax-native"]["versions"]["optax"] == "0.2.8"
    assert results["jax-native"]["settings"]["env_applied"]["XLA_FLAGS"]  # the environment's default variant
    for r in results.values():
        assert r["status"] == "ok" and r["backend"]["driver"] == "native", r.get("error")
        assert r["params"] == matrix.models["mlp"].expected_params and r["inference"]["error"] is None
