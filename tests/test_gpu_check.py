"""`make gpu-check` end to end on this CPU machine: the smoke profile with the CPU explicitly allowed, in an existing
interpreter (the cached keras3-jax virtualenv's python stands in for a GPU machine's own), and in one that lacks Keras
and gets it from a carried wheel. Without the override, a cell that ran on the CPU is a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import iter_results
from runner.gpu_check import report
from runner.paths import REPO_ROOT

pytestmark = pytest.mark.venv


def _run(args: list[str], keras_home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, env={**os.environ, "KERAS_HOME": str(keras_home), **env},
                          capture_output=True, text=True, timeout=1200)  # fmt: skip


def test_make_gpu_check_runs_end_to_end_on_a_cpu_with_the_override(prepared, keras_home, tmp_path):
    python = Path(prepared("keras3-jax").location) / "bin" / "python"
    proc = _run(["make", "-s", "gpu-check", "PROFILE=smoke", "ALLOW_CPU=1", f"GPU_PYTHON={python}",
                 f"ARGS=--results {tmp_path / 'results'}"], keras_home)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Keras 3 backends present: jax" in proc.stderr
    run = (tmp_path / "results" / "latest").resolve()
    results = [json.loads(p.read_text()) for p in sorted(run.glob("*/result.json"))]
    assert {(r["cell"]["model"], r["cell"]["backend"], r["status"]) for r in results} == {
        (m, b, "ok") for m in ("mlp", "cnn", "hrnn") for b in ("jax", "jax-native")}  # each beside its twin
    assert all(r["executor"]["name"] == "existing" and r["host"]["gpu"]["used"] is False for r in results)
    text = (run / "gpu-check.md").read_text()
    assert "| mlp | JAX (keras3-jax) |" in text and "ok (CPU)" in text and "--allow-cpu" in text
    assert "K80" in text and "| mlp | tensorflow | 2.77 |" in text  # the 2017 figures beside ours
    # without the override, every one of these CPU cells is a failure, not a result
    strict, failures = report(run, [r for _, r in iter_results(run)], allow_cpu=False)
    assert len(failures) == 6 and all("ran on the CPU" in f for f in failures) and "Failures:" in strict


def test_an_interpreter_without_keras_gets_it_from_a_carried_wheel(prepared, keras_home, tmp_path):
    """A GPU machine's Python with JAX but no Keras: the wheel goes into a --target folder put on PYTHONPATH."""
    jax_env = Path(prepared("keras3-jax").location)
    (site,) = jax_env.glob("lib/python3.*/site-packages")
    bare = tmp_path / "machine-python"
    subprocess.run([str(jax_env / "bin" / "python"), "-m", "venv", "--without-pip", str(bare)], check=True)
    (own,) = bare.glob("lib/python3.*/site-packages")
    for entry in site.iterdir():  # everything the JAX environment has, but Keras
        if not entry.name.startswith("keras"):
            (own / entry.name).symlink_to(entry)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "keras==3.15.1", "-d", str(wheels)], check=True)  # fmt: skip
    python = str(bare / "bin" / "python")
    args = [sys.executable, "-m", "runner.gpu_check", "--python", python, "--profile", "smoke", "--model", "mlp",
            "--results", str(tmp_path / "results")]  # fmt: skip
    refused = _run([*args, "--allow-cpu"], keras_home, KERAS_WHEEL="")
    assert refused.returncode == 2 and "has no Keras and no wheel was given" in refused.stderr
    proc = _run([*args, "--allow-cpu", "--keras-wheel", str(wheels)], keras_home, KBM_CACHE=str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "installing keras-3.15.1-py3-none-any.whl" in proc.stderr
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "latest").glob("mlp.jax.*/result.json")]
    assert result["status"] == "ok" and result["versions"]["keras"] == "3.15.1"
    assert result["executor"]["python"] == python
    strict = _run(args + ["--keras-wheel", str(wheels)], keras_home, KBM_CACHE=str(tmp_path / "c"))
    assert strict.returncode == 1 and "ran on the CPU" in strict.stdout
