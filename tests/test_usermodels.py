"""Your own model: a Keras 3 file in, the same results, reports and compare out; every bad input a clear exit 2.

Real parts: the probe runs each file in the cached keras3-jax environment, and the cells train for real (smoke
profile) on the three Keras 3 backends. The bad files are written here, each wrong in one way.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from common.results import Status, iter_results
from runner.cells import Cell, worker_spec
from runner.matrix import ModelSpec, load_matrix
from runner.paths import REPO_ROOT
from runner.usermodels import DEFAULT_OPTIMIZER
from tests.fixtures import run_runner, the_run

pytestmark = pytest.mark.venv
EXAMPLES = REPO_ROOT / "examples"
GOOD = '''
import keras
from keras import layers

INPUT_SHAPE = (8,)
NUM_CLASSES = 3

def build():
    inputs = keras.Input(INPUT_SHAPE)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES, activation="softmax")(layers.Dense(16)(inputs)))
'''


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def refused(tmp_path: Path, keras_home: Path, *args: str) -> str:
    proc = run_runner(["--profile", "smoke", "--no-report", "--no-history", *args], keras_home, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*/*/result.json"))
    return " ".join(proc.stderr.split())


@pytest.mark.parametrize(("name", "body", "words"), [
    ("no_build", "import keras\nINPUT_SHAPE = (8,)\n", "defines no build(); a model file needs build() returning"),
    ("not_a_model", GOOD.replace("return keras.Model(", "return (").replace(")(inputs)))", ")(inputs)))[0]"),
     "build() returned"),
    ("broken_import", "import keras\nimport not_a_module_anywhere\n", "ModuleNotFoundError: No module named"),
    ("wrong_shape", GOOD.replace("INPUT_SHAPE = (8,)", "INPUT_SHAPE = (9,)").replace("keras.Input(INPUT_SHAPE)",
                                                                                    "keras.Input((8,))"),
     "input 0 of the model takes samples of shape (8,), the data has (9,)"),
    ("no_data", GOOD.replace("INPUT_SHAPE = (8,)\nNUM_CLASSES = 3", "").replace("INPUT_SHAPE", "(8,)")
     .replace("NUM_CLASSES", "3"), "has no load_data() and no INPUT_SHAPE and NUM_CLASSES"),
])
def test_a_bad_model_file_is_refused_before_any_cell_with_the_file_and_the_fix(tmp_path, keras_home, name, body,
                                                                               words):
    path = write(tmp_path, name, body)
    message = refused(tmp_path, keras_home, "--model-file", str(path))
    assert str(path) in message and words in message, message


def test_labels_outside_the_classes_and_a_bad_npz_are_refused(tmp_path, keras_home):
    path = write(tmp_path, "good", GOOD)
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_train=np.zeros((32, 8), "float32"), y_train=np.full(32, 7), x_test=np.zeros((8, 8), "float32"),
             y_test=np.zeros(8, "int64"))
    message = refused(tmp_path / "a", keras_home, "--model-file", str(path), "--data-file", str(labels))
    assert "labels run from 7 to 7, outside the 3 classes (0..2)" in message
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((4, 8)), y_train=np.zeros(4))
    message = refused(tmp_path / "b", keras_home, "--model-file", str(path), "--data-file", str(partial))
    assert "no x_test, y_test in it" in message and "np.savez" in message
    message = refused(tmp_path / "c", keras_home, "--model-file", str(tmp_path / "nowhere.py"))
    assert "no such Python file" in message


def test_a_model_file_asked_for_on_a_2017_stack_is_refused(tmp_path, keras_home):
    message = refused(tmp_path, keras_home, "--model-file", str(write(tmp_path, "good", GOOD)), "--only",
                      "tensorflow1")
    assert "runs on Keras 3.x only" in message and "Keras 2.0.8" in message and "leave tensorflow1 out" in message


def test_the_examples_train_on_every_keras3_backend_and_rank(tmp_path, keras_home):
    args = ["--profile", "smoke", "--no-history", "--model-file", str(EXAMPLES / "image_classifier.py"),
            "--model-file", str(EXAMPLES / "sequence_classifier.py")]
    proc = run_runner(args, keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = the_run(tmp_path / "results")
    results = [r for _, r in iter_results(run)]
    assert {(r.cell.model, r.cell.backend) for r in results} == {
        (m, b) for m in ("image_classifier", "sequence_classifier") for b in ("tensorflow", "jax", "torch")}
    for r in results:
        assert r.status is Status.ok, r.error
        assert r.data.source == "synthetic" and r.work.model_hash and r.settings.data_format == "channels_last"
        assert r.inference.latency_of().p50_ms > 0 and r.memory.peak_rss_mb > 0
        assert not [w for w in r.warnings if "parameter count" in w]  # the probe's count, on every backend
    spec = json.loads(next(run.glob("image_classifier.jax.*/spec.json")).read_text())
    assert spec["model"]["flop_per_sample"] > 0 and "XLA cost analysis" in spec["model"]["flop_method"]
    assert Path(spec["model"]["module"]).parent == run / "model-files"  # the run's own copy
    md = (run / "report" / "summary.md").read_text()
    assert "## Residual CNN (example) (`image_classifier`)" in md and "Ranking now" in md
    assert "ranking of image_classifier" in proc.stdout


def test_an_op_one_backend_lacks_fails_that_cell_alone_with_the_hint(tmp_path, keras_home):
    body = GOOD.replace("import keras", "import keras\nimport numpy as np").replace(
        "return keras.Model(inputs, layers.Dense(NUM_CLASSES, activation=\"softmax\")(layers.Dense(16)(inputs)))",
        "x = layers.Lambda(lambda t: np.asarray(t) * 2.0)(inputs)\n"
        "    return keras.Model(inputs, layers.Dense(NUM_CLASSES, activation=\"softmax\")(x))")
    path = write(tmp_path, "numpy_op", body)
    proc = run_runner(["--profile", "smoke", "--no-report", "--no-history", "--model-file", str(path), "--only",
                       "jax", "--only", "torch"], keras_home, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "build() failed on JAX" in " ".join(proc.stderr.split())  # said before anything ran
    results = {r.cell.backend: r for _, r in iter_results(the_run(tmp_path / "results"))}
    assert results["jax"].status is Status.failed and results["jax"].stage == "build"
    assert "replace framework calls (tf.*, torch.*, jax.*) with keras.ops" in results["jax"].error


def test_a_changed_model_file_is_a_new_experiment(tmp_path):
    matrix = load_matrix(REPO_ROOT / "matrix.yaml")
    path = write(tmp_path, "good", GOOD)

    def spec(sha: str, where: Path) -> str:
        model = ModelSpec(title="good", dataset="user", batch_size=32, epochs=2, optimizer=DEFAULT_OPTIMIZER,
                          module=str(where), module_sha256=sha, keras="3.")
        m = matrix.model_copy(update={"models": {**matrix.models, "good": model}})
        return worker_spec(m, Cell("good", "jax", "keras3-jax", "smoke", 0, 1, "jax-ynn-no-conv"), "real")["spec_hash"]

    assert spec("a" * 64, path) == spec("a" * 64, tmp_path / "elsewhere" / "good.py")  # its path is not the experiment
    assert spec("a" * 64, path) != spec("b" * 64, path)  # its bytes are
