"""The venv executor against real virtualenvs: built once, reused by hash, never half-built, failures explained."""

from __future__ import annotations

import json
import time

import pytest

from runner.executors import EnvironmentBuildError
from runner.executors.base import CellJob
from runner.executors.venv import MARKER, VenvExecutor, venv_dir
from runner.matrix import Environment

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
    from runner.cells import Cell, worker_spec
    from runner.results import finalize, validate

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
    result = finalize(cell_dir, spec, returncode=code, timed_out=False, executor={"name": "venv"},
                      host_load={}, provenance={"git_commit": None}, launched_at=time.time())
    assert result["status"] == "failed" and result["stage"] == "import"
    assert "No module named 'keras'" in result["error"]
    assert any("ModuleNotFoundError" in line for line in result["log_tail"])
    validate(json.loads((cell_dir / "result.json").read_text()), "result.json")
