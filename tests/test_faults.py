"""Faults produced for real in real worker processes (models/faults.py), and the matrix surviving each one.

Every test asserts three things: the matrix went on, the failure was recorded with its cause, and no earlier
result was lost or changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.paths import REPO_ROOT
from tests.fixtures import results_by_model, the_run

pytestmark = pytest.mark.venv


def start_runner(args: list[str], keras_home: Path, results: Path, fault: str = "", matrix: Path | None = None):
    env = {**os.environ, "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": fault}
    cmd = [sys.executable, "-m", "runner", "--results", str(results), "--profile", "smoke",
           "--only", "tensorflow@keras3"]
    if matrix is not None:
        cmd += ["--matrix", str(matrix)]
    return subprocess.Popen(cmd + args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def alive(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_crashes_exits_hangs_and_exceptions_are_recorded_and_the_matrix_goes_on(keras_home, tmp_path):
    fault = "abort@mlp,exit@cnn,hang@hrnn,raise@cifar10_cnn@train"
    proc = start_runner(["--timeout", "45"], keras_home, tmp_path / "results", fault)
    code, output = finish(proc)
    assert code == 1, output[-3000:]
    run = the_run(tmp_path / "results")
    r = results_by_model(run)
    assert set(r) == {"mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"}  # every cell has a result

    assert r["mlp"]["status"] == "failed" and r["mlp"]["returncode"] == -signal.SIGABRT
    assert "killed by signal SIGABRT in stage start" in r["mlp"]["error"]
    assert r["cnn"]["status"] == "failed" and "exited with status 3 in stage start" in r["cnn"]["error"]
    assert r["hrnn"]["status"] == "timeout" and "timed out after 45 s in stage start" in r["hrnn"]["error"]
    assert not alive(str(run / r["hrnn"]["cell_id"] / "spec.json"))  # the hung worker was killed
    assert r["cifar10_cnn"]["status"] == "failed" and r["cifar10_cnn"]["stage"] == "train"
    assert "RuntimeError: injected fault in stage train" in r["cifar10_cnn"]["error"]
    assert any("RuntimeError" in line for line in r["cifar10_cnn"]["log_tail"])
    assert r["babi_rnn"]["status"] == "ok"  # the cell after all those faults still ran
    # the run ends with a summary that names the failures
    assert "4 cell(s) failed" in output and "hrnn.tensorflow" in output


def test_a_worker_past_its_memory_limit_fails_alone(keras_home, tmp_path):
    matrix = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    matrix.write_text(text.replace("    timeout_s: 600\n", "    timeout_s: 600\n    memory_limit_gb: 1.5\n", 1))
    proc = start_runner(["--model", "mlp", "--model", "babi_rnn"], keras_home, tmp_path / "results", "oom@mlp",
                        matrix)
    code, output = finish(proc)
    assert code == 1, output[-3000:]
    r = results_by_model(the_run(tmp_path / "results"))
    assert r["mlp"]["status"] == "failed" and "MemoryError" in r["mlp"]["error"]
    assert r["babi_rnn"]["status"] == "ok"


def test_sigint_stops_the_cell_keeps_earlier_results_and_resume_finishes(keras_home, tmp_path):
    results = tmp_path / "results"
    proc = start_runner(["--model", "mlp", "--model", "cnn"], keras_home, results, "hang@cnn")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until the second cell is running
        runs = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()] if results.exists() else []
        if runs and (runs[0] / "cnn.tensorflow.keras3-tensorflow.smoke.default.r0" / "events.jsonl").exists():
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the second cell never started")
    run = the_run(results)
    mlp_result = run / "mlp.tensorflow.keras3-tensorflow.smoke.default.r0" / "result.json"
    assert mlp_result.exists()
    before = mlp_result.read_bytes()
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc, timeout=60)
    assert code == 130, output[-3000:]
    cnn_dir = run / "cnn.tensorflow.keras3-tensorflow.smoke.default.r0"
    assert not (cnn_dir / "result.json").exists() and not (cnn_dir / "worker-result.json").exists()
    assert not alive(str(cnn_dir / "spec.json"))
    assert "interrupted" in output

    resumed = start_runner(["--model", "mlp", "--model", "cnn", "--resume", str(run)], keras_home, results)
    code, output = finish(resumed)
    assert code == 0, output[-3000:]
    assert mlp_result.read_bytes() == before  # kept, not rerun
    r = results_by_model(run)
    assert r["cnn"]["status"] == "ok" and r["mlp"]["status"] == "ok"
    assert list((run / ".attempts").iterdir())  # the interrupted attempt is set aside, not deleted
    assert "1 cells already have a result" in output


def test_an_environment_that_cannot_install_is_skipped_and_the_others_run(keras_home, tmp_path):
    matrix = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    broken = ("  keras3-broken:\n    python: \"3.11\"\n    keras: \"3.15.1\"\n    backends: [tensorflow]\n"
              "    requirements:\n      - kbm-this-package-does-not-exist==0.0.1\n")
    matrix.write_text(text.replace("  keras3-jax:\n", broken + "  keras3-jax:\n", 1))
    env = {**os.environ, "KERAS_HOME": str(keras_home), "KBM_CACHE": str(tmp_path / "cache")}
    # the broken environment builds in a private cache; the good one is found in the shared cache by a second run
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(matrix), "--results",
                           str(tmp_path / "results"), "--profile", "smoke", "--model", "mlp", "--env", "keras3-broken"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = results_by_model(the_run(tmp_path / "results")).values()
    assert result["status"] == "skipped" and result["stage"] == "environment"
    assert "could not be built" in result["error"] and ".install.log" in result["error"]
    assert not any((tmp_path / "cache" / "venvs").glob("keras3-broken-*/bin"))  # nothing half-built kept


def test_missing_data_skips_its_cells_without_starting_them(tmp_path):
    empty = tmp_path / "empty-keras-home"
    empty.mkdir()
    proc = start_runner(["--model", "cifar10_cnn", "--model", "babi_rnn"], empty, tmp_path / "results")
    code, output = finish(proc)
    assert code == 0, output[-3000:]
    run = the_run(tmp_path / "results")
    for result in results_by_model(run).values():
        assert result["status"] == "skipped" and result["stage"] == "data"
        assert "--data synthetic" in result["error"] and str(empty / "datasets") in result["error"]
        assert not (run / result["cell_id"] / "worker.log").exists()  # no process was started for it
    assert "data missing" in output


def test_a_truncated_result_is_reported_and_rerun_on_resume(keras_home, tmp_path):
    results = tmp_path / "results"
    code, output = finish(start_runner(["--model", "mlp", "--model", "babi_rnn"], keras_home, results))
    assert code == 0, output[-3000:]
    run = the_run(results)
    babi = run / "babi_rnn.tensorflow.keras3-tensorflow.smoke.default.r0" / "result.json"
    mlp = run / "mlp.tensorflow.keras3-tensorflow.smoke.default.r0" / "result.json"
    mlp_before = mlp.read_bytes()
    babi.write_bytes(babi.read_bytes()[:200])  # a disk that filled up, a copy cut short
    check = subprocess.run([sys.executable, "-m", "runner", "check", str(run)], cwd=REPO_ROOT, capture_output=True,
                           text=True)
    assert check.returncode == 1 and "unreadable" in check.stdout and "1 problems" in check.stdout
    code, output = finish(start_runner(["--model", "mlp", "--model", "babi_rnn", "--resume", str(run)], keras_home,
                                       results))
    assert code == 0, output[-3000:]
    assert mlp.read_bytes() == mlp_before
    assert json.loads(babi.read_text())["status"] == "ok"
