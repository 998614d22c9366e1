"""`--python PATH`: cells run in an interpreter the user already has (here: the cached keras3-jax virtualenv's own
python, standing in for a GPU machine's conda or system Python), and an interpreter without Keras is refused before
anything runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from runner.executors.existing import ExistingExecutor, InterpreterError, pinned_versions, version_warnings
from runner.paths import REPO_ROOT
from tests.fixtures import the_run
from tests.test_end_to_end import run_results, run_runner

pytestmark = pytest.mark.venv


def test_pins_are_keyed_as_the_worker_records_versions(matrix):
    env = matrix.environments["keras3-tensorflow"]
    pins = pinned_versions(env, ["tensorflow"])
    assert pins == {"python": ">=3.11,<3.14", "keras": "3.15.1", "tensorflow": "2.21.0", "numpy": "2.4.6"}
    actual = {"python": "3.12.3", "keras": "3.15.1", "tensorflow": "2.21.0+cuda", "numpy": "2.4.6"}
    assert version_warnings("keras3-tensorflow", pins, actual) == []  # inside the range; a local build is its release
    (warning,) = version_warnings("keras3-tensorflow", pins, {**actual, "python": "3.10.14", "numpy": "2.4.6.1"})
    assert warning.startswith("python 3.10.14 differs from the environment's pin >=3.11,<3.14 (keras3-tensorflow)")
    (warning,) = version_warnings("keras2017-theano", {"python": "3.6"}, {"python": "3.7.16"})
    assert warning.startswith("python 3.7.16 differs from the environment's pin 3.6 ")


def test_a_smoke_cell_runs_in_an_existing_interpreter_and_a_differing_pin_is_a_warning(
    matrix, prepared, keras_home, tmp_path
):
    python = Path(prepared("keras3-jax").location) / "bin" / "python"
    doc = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    doc["environments"]["keras3-jax"]["requirements"] = ["keras==3.15.1", "jax==0.4.0", "jaxlib==0.4.0",
                                                         "numpy==2.4.6"]
    # JAX's flag variants (the environment's default among them) fit these pins, not this interpreter's jaxlib 0.10.2
    for variant in doc["variants"].values():
        if "jaxlib" in variant["applies_to"].get("versions", {}):
            variant["applies_to"]["versions"] = {"jaxlib": "<0.5"}
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(doc))
    proc = run_runner(["--python", str(python), "--matrix", str(tmp_path / "matrix.yaml"), "--only", "jax@keras",
                       "--model", "mlp", "--profile", "smoke"], keras_home, tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"executor existing: --python {python}" in proc.stderr
    assert "warning: jax 0.10.2 differs from the environment's pin 0.4.0" in proc.stderr
    assert ("variant jax-ynn-no-conv was verified with jaxlib <0.5; the interpreter of keras3-jax has jaxlib 0.10.2: "
            "jax's cells run variant stock instead") in " ".join(proc.stderr.split())
    (r,) = run_results(tmp_path)
    assert r["status"] == "ok" and r["params"] == matrix.models["mlp"].expected_params
    assert r["cell"]["variant"] == "stock" and "XLA_FLAGS" not in r["settings"]["env_applied"]
    # what a plain run of this interpreter trains is its default, though not the matrix's for keras3-jax
    (spec,) = [json.loads(p.read_text()) for p in the_run(tmp_path / "results").glob("*/spec.json")]
    assert spec["variant"]["is_default"] is True
    ex = r["executor"]
    assert ex["name"] == "existing" and ex["python"] == str(python) and ex["location"] == str(python)
    assert ex["versions"]["jax"] == r["versions"]["jax"] == "0.10.2" and ex["versions"]["keras"] == "3.15.1"
    assert any("jax 0.10.2 differs from the environment's pin 0.4.0" in w for w in r["warnings"])
    index = next(line.split("report: ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("report: "))
    assert "VERSIONS DIFFER FROM THE PINS" in (Path(index).parent / "summary.md").read_text()


def test_an_interpreter_without_keras_is_refused_before_any_cell_starts(keras_home, tmp_path):
    proc = run_runner(["--python", sys.base_prefix + "/bin/python3", "--only", "jax@keras", "--model", "mlp",
                       "--profile", "smoke"], keras_home, tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = " ".join(proc.stderr.split())
    assert f"--python {sys.base_prefix}/bin/python3: cannot import jax" in err
    assert "cannot import keras (ModuleNotFoundError" in err and "-m pip install 'keras==3.15.1'" in err
    assert not (tmp_path / "results").exists()  # nothing ran


def test_python_with_another_executor_is_a_usage_error(matrix):
    executor = ExistingExecutor("/nonexistent/python", matrix)
    with pytest.raises(InterpreterError, match="no such file"):
        executor.preflight(["keras3-jax"])
    from runner.cli import run_main

    assert run_main(["--python", sys.executable, "--executor", "docker", "--only", "jax"]) == 2
