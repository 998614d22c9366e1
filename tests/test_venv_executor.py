"""The venv executor against real virtualenvs: built once, reused by hash, never half-built, failures explained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from runner.executors import EnvironmentBuildError
from runner.executors.base import CellJob
from runner.executors.venv import MARKER, VenvExecutor, venv_dir
from runner.interpreters import InterpreterNotFound
from runner.matrix import Environment
from runner.paths import REPO_ROOT
from tests.ci import missing

TINY = Environment(python="3.11", keras="none", backends=["tensorflow"], requirements=["six==1.16.0"])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KBM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_environment_is_built_once_and_reused_by_its_hash(cache):
    executor, notes = VenvExecutor(), []
    assert executor.plan("tiny", TINY)["cached"] is False
    first = executor.prepare("tiny", TINY, notes.append)
    assert not first.reused and (venv_dir("tiny", TINY) / MARKER).exists()
    assert "six==1.16.0" in first.info["freeze"]
    assert any("installing" in n for n in notes)
    assert (cache / "CACHEDIR.TAG").exists()

    started = time.perf_counter()
    again = executor.prepare("tiny", TINY, notes.append)
    assert again.reused and again.location == first.location
    assert time.perf_counter() - started < 1.0  # reuse installs nothing
    assert executor.plan("tiny", TINY)["cached"] is True

    changed = Environment(**{**TINY.model_dump(), "requirements": ["six==1.15.0"]})
    assert venv_dir("tiny", changed) != venv_dir("tiny", TINY)  # other inputs, other environment


def test_half_built_environment_is_removed_not_reused(cache):
    where = venv_dir("tiny", TINY)
    where.mkdir(parents=True)
    (where / "leftover").write_text("an interrupted install")
    notes: list[str] = []
    prepared = VenvExecutor().prepare("tiny", TINY, notes.append)
    assert not prepared.reused and not (where / "leftover").exists()
    assert any("half-built" in n for n in notes)


def test_failed_install_leaves_no_environment_and_points_to_its_log(cache):
    broken = Environment(python="3.11", keras="none", backends=["tensorflow"],
                         requirements=["kbm-this-package-does-not-exist==0.0.1"])
    with pytest.raises(EnvironmentBuildError) as err:
        VenvExecutor().prepare("broken", broken, lambda _: None)
    assert err.value.log is not None and err.value.log.exists()
    assert "kbm-this-package-does-not-exist" in err.value.log.read_text()
    assert str(err.value.log) in str(err.value)
    assert not venv_dir("broken", broken).exists()


def test_missing_interpreter_points_to_the_fix(cache):
    ancient = Environment(python="2.5", keras="1.0", backends=["tensorflow"], requirements=["six"])
    with pytest.raises(EnvironmentBuildError, match="Docker executor"):
        VenvExecutor().prepare("ancient", ancient, lambda _: None)


def test_worker_failure_becomes_a_failed_result_with_its_stage(cache, tmp_path, matrix):
    """A real worker in an environment without Keras: it fails at import, and says so in its result."""
    from common.results import validate
    from runner.cells import Cell, worker_spec
    from runner.record import finalize

    executor = VenvExecutor()
    env = executor.prepare("tiny", TINY, lambda _: None)
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    spec = worker_spec(matrix, Cell("mlp", "tensorflow", "keras3-tensorflow", "smoke", 0, 1), "synthetic")
    spec["paths"] = {"result": str(cell_dir / "worker-result.json"), "events": str(cell_dir / "events.jsonl")}
    (cell_dir / "spec.json").write_text(json.dumps(spec))
    handle = executor.launch(env, CellJob(cell_dir, cell_dir / "spec.json", cell_dir / "worker.log",
                                          {"KERAS_BACKEND": "tensorflow"}))
    code = None
    while code is None:
        code = handle.wait(1.0)
    assert code == 1
    result = finalize(cell_dir, spec, returncode=code, timed_out=False, executor={"name": "venv",
                      "environment": "tiny"}, host_load={}, provenance={"git_commit": None}, launched_at=time.time())
    assert result.status.value == "failed" and result.stage == "import"
    assert "No module named 'keras'" in result.error
    assert any("ModuleNotFoundError" in line for line in result.log_tail)
    validate(json.loads((cell_dir / "result.json").read_text()), "result.json")


# -- which Python ------------------------------------------------------------------------------------------------


def test_a_python_range_prefers_the_hosts_own_interpreter():
    from runner.interpreters import resolve, specifier

    host = "%d.%d.%d" % sys.version_info[:3]
    assert resolve(">=3.10,<3.14").version == host and resolve(">=3.10,<3.14").path == sys.executable
    assert specifier("3.6").contains("3.6.15") and not specifier("3.6").contains("3.7.0")  # plain X.Y: any X.Y.z
    with pytest.raises(InterpreterNotFound, match="pyenv install"):
        resolve(">=2.0,<2.1")


def test_the_matrix_rejects_a_python_that_is_no_version(tmp_path):
    from runner.matrix import MatrixError, load_matrix
    from runner.paths import REPO_ROOT

    bad = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    bad.write_text(text.replace('python: ">=3.11,<3.14"', 'python: "three eleven"', 1))
    with pytest.raises(MatrixError, match=r"matrix.yaml:\d+: environments.keras3-tensorflow.python: .*three eleven"):
        load_matrix(bad)
    bad.write_text(text.replace('      python: "3.11"\n', "", 1))  # a range needs the images' own X.Y
    with pytest.raises(MatrixError, match=r"environments.keras3-tensorflow.docker: python is the range"):
        load_matrix(bad)


@pytest.mark.venv
@pytest.mark.parametrize("version", ["3.12.1", "3.13.0"])
def test_keras3_jax_builds_and_trains_on_a_host_whose_python_is(version, matrix, keras_home, tmp_path, monkeypatch):
    """A host with only Python 3.12 or 3.13 (its runner's own interpreter): the JAX environment's range admits it,
    the venv is built with it (a folder of its own, beside the 3.11 one) and a smoke MLP cell trains there."""
    from runner import interpreters
    from runner.cells import Cell, worker_spec
    from runner.record import finalize
    from runner.runtime import add_runtime

    found = interpreters.pyenv_interpreter(version)  # pyenv's own folder, with or without the pyenv command
    if found is None:
        missing(f"no Python {version} here", f"pyenv install {version} (https://github.com/pyenv/pyenv#installation)")
    native = venv_dir("keras3-jax", matrix.environments["keras3-jax"])
    monkeypatch.setattr(sys, "executable", found.path)
    interpreters.resolve.cache_clear()
    try:
        env = matrix.environments["keras3-jax"]
        prepared = VenvExecutor().prepare("keras3-jax", env, print)  # the shared cache: built once, kept
        assert prepared.info["python"] == version and prepared.location != str(native)
        assert prepared.location == str(venv_dir("keras3-jax", env))
        spec = worker_spec(matrix, Cell("mlp", "jax", "keras3-jax", "smoke", 0, 1), "real")
    finally:
        interpreters.resolve.cache_clear()
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    add_runtime(spec, cell_dir, None)
    (cell_dir / "spec.json").write_text(json.dumps(spec))
    handle = VenvExecutor().launch(prepared, CellJob(cell_dir, cell_dir / "spec.json", cell_dir / "worker.log",
                                                     {"KERAS_BACKEND": "jax", "KERAS_HOME": str(keras_home)}))
    code = None
    while code is None:
        code = handle.wait(1.0)
    result = finalize(cell_dir, spec, returncode=code, timed_out=False, executor={"name": "venv",
                      "environment": "keras3-jax"}, host_load={}, provenance={"git_commit": None},
                      launched_at=time.time())
    assert result.status.value == "ok", result.error
    assert result.versions["python"].startswith(version.rsplit(".", 1)[0]) and len(result.epochs) == 3


# -- two runs at once ----------------------------------------------------------------------------------------------


@pytest.mark.venv
def test_two_runs_started_together_on_an_empty_cache_build_the_environment_once(cache, keras_home, tmp_path):
    """Two real runs share an empty venv cache: one builds the JAX environment (from pip's cache), the other waits
    for that build under its lock, says so, and reuses it; both train their cell."""
    env = {**os.environ, "KERAS_HOME": str(keras_home), "KBM_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "--results", str(tmp_path / f"results{i}"),
                               "--profile", "smoke", "--only", "jax@keras", "--model", "mlp", "--no-report",
                               "--executor", "venv"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=1200)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    built = [o for o in outputs if "creating a Python" in o]
    waited = [o for o in outputs if "another run is building" in o]
    assert len(built) == 1 and len(waited) == 1 and waited[0] is not built[0], outputs
    assert "environment keras3-jax: reused" in waited[0]
    (folder,) = [p for p in (cache / "venvs").iterdir() if p.is_dir()]  # one environment, complete
    assert (folder / MARKER).exists()
    for i in range(2):
        (run,) = [p for p in (tmp_path / f"results{i}").iterdir() if p.is_dir() and not p.is_symlink()]
        result = json.loads((run / "mlp.jax.keras3-jax.smoke.jax-ynn-no-conv.r0" / "result.json").read_text())
        assert result["status"] == "ok" and result["executor"]["location"] == str(folder)


# -- an environment whose interpreter is gone ------------------------------------------------------------------


def test_a_cached_environment_whose_base_python_vanished_fails_its_cells_alone(cache, tmp_path):
    """A venv made from a copy of this Python, then the copy deleted: launching its cells fails them, with why,
    and the run goes on to its end (exit 1, run.json finished)."""
    from runner.matrix import load_matrix

    copy = tmp_path / "gone" / "bin" / "python3"
    copy.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sys.executable), copy)
    matrix_path = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    tiny = ("  tiny:\n    python: \">=3.10\"\n    keras: \"3\"\n    backends: [tensorflow]\n"
            "    requirements: [six==1.16.0]\n")
    matrix_path.write_text(text.replace("  keras3-jax:\n", tiny + "  keras3-jax:\n", 1))
    where = venv_dir("tiny", load_matrix(matrix_path).environments["tiny"])
    subprocess.run([str(copy), "-m", "venv", "--without-pip", str(where)], check=True)
    (where / MARKER).write_text(json.dumps({"environment": "tiny", "python": "%d.%d.%d" % sys.version_info[:3]}))
    copy.unlink()
    assert not (where / "bin" / "python").exists()  # a dangling link, as after removing a pyenv version
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(matrix_path), "--env", "tiny", "--model",
                           "mlp", "--model", "cnn", "--profile", "smoke", "--data", "synthetic", "--results",
                           str(tmp_path / "results"), "--no-report", "--executor", "venv"], cwd=REPO_ROOT,
                          env={**os.environ, "KBM_CACHE": str(cache)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    for model in ("mlp", "cnn"):
        result = json.loads((run / f"{model}.tensorflow.tiny.smoke.stock.r0" / "result.json").read_text())
        assert result["status"] == "failed" and result["stage"] == "launch"
        assert "no longer exists" in result["error"] and f"delete {where}" in result["error"]
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["finished_at"] and manifest["interrupted"] is None
