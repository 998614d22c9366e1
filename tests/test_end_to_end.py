"""The matrix for real: `python -m runner` trains tiny models in the real Keras 3 virtualenvs.

The environments are built in the venv cache on first use (about a minute each) and reused after, as for a user.
Data comes from format-exact fixtures in a temporary KERAS_HOME: no downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import load_result
from runner.paths import REPO_ROOT
from tests.fixtures import run_results, run_runner, the_run

pytestmark = pytest.mark.venv


@pytest.mark.parametrize("env_name", ["keras3-tensorflow", "keras3-jax", "keras3-torch"])
def test_parameter_counts_match_the_examples_on_every_backend(matrix, prepared, env_name, tmp_path):
    env = prepared(env_name)
    backend = matrix.backends[env.spec.backends[0]]
    out = tmp_path / "params.json"
    examples = {name: m for name, m in matrix.models.items() if m.suite is None}  # the suite: tests/test_keras_hub.py
    pairs = [f"{name}:{m.dataset}" for name, m in examples.items()]
    subprocess.run([str(Path(env.location) / "bin" / "python"), "-m", "models.describe", str(out),
                    backend.data_format, *pairs], cwd=REPO_ROOT, check=True, timeout=600,
                   env={**os.environ, "KERAS_BACKEND": backend.keras_backend, "PYTHONPATH": str(REPO_ROOT)})
    report = json.loads(out.read_text())
    assert report["backend"] == backend.keras_backend
    assert report["params"] == {"mlp": 669706, "cnn": 1199882, "cifar10_cnn": 1250858, "hrnn": 199434,
                                "babi_rnn": 45836}
    assert report["params"] == {name: m.expected_params for name, m in examples.items()}


def test_smoke_matrix_on_tensorflow_writes_one_valid_result_per_cell(keras_home, tmp_path):
    placed = {p: p.read_bytes() for p in (keras_home / "datasets").iterdir()}  # not the published files
    proc = run_runner(["--only", "tensorflow@keras3@keras", "--profile", "smoke"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.read_bytes() for p in placed} == placed  # Keras' hash check deleted nothing a user placed
    results = run_results(tmp_path)
    assert sorted(r["cell"]["model"] for r in results) == sorted(["mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"])
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["cell"]["backend"] == "tensorflow" and r["cell"]["profile"] == "smoke"
        assert len(r["epochs"]) == 3 and all(e["wall_s"] > 0 and e["cpu_s"] > 0 for e in r["epochs"])
        assert all("val_loss" in e and "accuracy" in e for e in r["epochs"])
        assert r["first_epoch_s"] > r["steady_epoch_s"] > 0 and r["compile_s"] >= 0
        assert r["data"]["source"] == "keras-cache" and len(r["data"]["sha256"]) == 64
        assert r["versions"]["keras"].startswith("3.") and "tensorflow" in r["versions"]
        assert r["host"]["cores"] >= 1 and r["host"]["gpu"]["used"] is False
        assert r["executor"]["name"] == "venv" and r["spec_hash"]
        assert "other_cpu_share" in r["host"]["load"]
        assert r["timeline"]["import_s"] > 0 and r["timeline"]["fixed_overhead_s"] > 0
        assert r["git_commit"] is None or len(r["git_commit"]) == 40
    by_model = {r["cell"]["model"]: r for r in results}
    assert by_model["mlp"]["params"] == 669706 and by_model["babi_rnn"]["params"] == 45836
    assert by_model["mlp"]["epochs"][0]["samples"] == 256
    # the summary table is printed, and the checker accepts the run
    rows = [line for line in proc.stdout.splitlines() if line.split()[:1] and line.split()[0] in by_model]
    assert "s/epoch" in proc.stdout and len(rows) == 5  # one line per cell
    run_dir = the_run(tmp_path / "results")
    check = subprocess.run([sys.executable, "-m", "runner", "check", str(run_dir)], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0 and "5 results checked, 0 problems" in check.stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_smoke_mlp_trains_on_the_other_backends(keras_home, tmp_path, backend):
    proc = run_runner(["--only", f"{backend}@keras", "--model", "mlp", "--model", "cnn", "--profile", "smoke"],
                      keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = run_results(tmp_path)
    assert {r["status"] for r in results} == {"ok"}
    assert {r["versions"]["keras_backend"] for r in results} == {backend}
    assert {r["params"] for r in results} == {669706, 1199882}


def test_synthetic_data_is_recorded_in_every_result(keras_home, tmp_path):
    proc = run_runner(["--only", "tensorflow@keras3@keras", "--model", "hrnn", "--profile", "smoke", "--data",
                       "synthetic"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = run_results(tmp_path)
    assert result["data"]["source"] == "synthetic" and result["work"]["data"] == "synthetic"
    assert "synthetic data" in proc.stdout
    run_dir = the_run(tmp_path / "results")
    assert load_result(run_dir / result["cell_id"] / "result.json").data.source == "synthetic"
