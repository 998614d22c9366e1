"""Paths a user types are relative to the folder the command runs in: each one is made absolute once, where the
command line reads it, so the model probe, the workers (which run in another folder) and the run's record all see
the same file; run.json keeps what was typed, and the folder, beside it.

The runs start from a project folder outside the checkout (`cwd=`) with an empty cache of their own (the
environments linked in from the user's cache, as tests/conftest.py does), so no probe answer cached earlier can
stand in for the file: a model file by a relative path failed exactly that way before (issue 32).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.results import Status, iter_results
from common.userpaths import absolute, interpreter
from history.cli import make_absolute as history_absolute
from history.cli import parser as history_parser
from runner.cli import parse
from runner.paths import REPO_ROOT
from tests.fixtures import private_cache_in

TINY = '''
import keras
from keras import layers

INPUT_SHAPE = (8,)
NUM_CLASSES = 3

def build():
    inputs = keras.Input(INPUT_SHAPE)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES, activation="softmax")(layers.Dense(16)(inputs)))
'''


# -- where the command line reads them: every path option, in-process --------------------------------------------


@pytest.mark.parametrize(("option", "dest", "typed"), [
    ("--matrix", "matrix", "../x/matrix.yaml"),
    ("--model-file", "model_file", "../x/my_model.py"),
    ("--data-file", "data_file", "data/my_data.npz"),
    ("--results", "results", "out"),
    ("--resume", "resume", "results/20261204-120000-abcd"),
    ("--history", "history", "../history.sqlite"),
    ("--python", "python", "env/bin/python"),
])
def test_each_path_option_is_absolute_once_parsed_and_what_was_typed_is_kept(tmp_path, monkeypatch, option, dest,
                                                                            typed):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    args = parse([option, typed], sweep=False)
    value = getattr(args, dest)
    value = value[0] if isinstance(value, list) else value
    assert str(value) == os.path.normpath(project / typed) and os.path.isabs(value)
    typed_back = args.typed_paths[dest]
    assert (typed_back[0] if isinstance(typed_back, list) else typed_back) == typed


def test_the_default_results_folder_is_the_one_the_command_ran_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = parse([], sweep=True)
    assert args.results == tmp_path / "results" and args.typed_paths == {"results": "results"}


def test_a_url_a_bare_interpreter_name_and_a_symlink_stay_what_they_mean(tmp_path, monkeypatch):
    """A postgresql:// history is not a path; `--python python3` is PATH's python3, as a shell finds it; a venv's
    bin/python is a symlink whose own place decides the environment, so it is never resolved to its target."""
    monkeypatch.chdir(tmp_path)
    url = "postgresql://kbm@db.example:5432/history"
    assert parse(["--history", url], sweep=False).history == url
    assert parse(["--python", "python3"], sweep=False).python == interpreter("python3") != "python3"
    (tmp_path / "env" / "bin").mkdir(parents=True)
    (tmp_path / "env" / "bin" / "python").symlink_to(sys.executable)
    assert parse(["--python", "env/bin/python"], sweep=False).python == str(tmp_path / "env" / "bin" / "python")
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "deep")
    # after a symlinked folder `..` is the target's parent: folding it away would name another file
    assert absolute("link/../m.yaml") == tmp_path / "link" / ".." / "m.yaml"
    assert absolute("~/m.yaml") == Path.home() / "m.yaml"


@pytest.mark.parametrize("argv", [["add", "out/run-1", "--history", "h.sqlite"], ["rebuild", "out", "--history",
                                  "h.sqlite"], ["report", "--out", "site", "--history", "h.sqlite"]])
def test_the_history_command_makes_its_paths_absolute_too(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    args = history_parser().parse_args(argv)
    history_absolute(args)
    for dest in ("runs", "results", "out", "history"):
        value = getattr(args, dest, None)
        for v in value if isinstance(value, list) else [value] if value is not None else []:
            assert os.path.isabs(v) and str(v).startswith(str(tmp_path)), (dest, v)
    url = history_parser().parse_args(["check", "--history", "postgresql://h/db"])
    history_absolute(url)
    assert url.history == "postgresql://h/db"


# -- from another folder, with an empty cache: real runs -----------------------------------------------------------


def kbm(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`./kbm ARGS` as a user types it from another folder (the script finds its checkout itself)."""
    return subprocess.run([str(REPO_ROOT / "kbm"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def the_one_run(results: Path) -> Path:
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


@pytest.fixture(scope="module")
def relative_run(tmp_path_factory, shared_cache, keras_home):
    """One smoke run of a model file of the user's own, every path relative to the project folder it starts in:
    `./kbm --model-file ../x/tiny.py --data-file ../x/tiny.npz --matrix ../x/matrix.yaml --results out
    --history hist.sqlite`, with a cache nothing has probed anything in."""
    root = tmp_path_factory.mktemp("relative")
    cache = private_cache_in(root / "cache", shared_cache)
    (root / "x").mkdir()
    (root / "x" / "tiny.py").write_text(f"# {secrets.token_hex(8)}: bytes no probe has seen\n{TINY}")
    rng = np.random.default_rng(0)
    np.savez(root / "x" / "tiny.npz", x_train=rng.normal(size=(96, 8)).astype("float32"),
             y_train=rng.integers(0, 3, 96), x_test=rng.normal(size=(32, 8)).astype("float32"),
             y_test=rng.integers(0, 3, 32))
    (root / "x" / "matrix.yaml").write_text((REPO_ROOT / "matrix.yaml").read_text())
    project = root / "project"
    project.mkdir()
    env = {**os.environ, "KBM_CACHE": str(cache), "KERAS_HOME": str(keras_home), "KBM_HISTORY": ""}
    proc = kbm(["--model-file", "../x/tiny.py", "--data-file", "../x/tiny.npz", "--matrix", "../x/matrix.yaml",
                "--results", "out", "--history", "hist.sqlite", "--only", "jax", "--profile", "smoke",
                "--no-report"], project, env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = the_one_run(project / "out")
    manifest = json.loads((run / "run.json").read_text())
    ((_, result),) = list(iter_results(run))
    return {"root": root, "project": project, "cache": cache, "env": env, "run": run, "manifest": manifest,
            "result": result}


@pytest.mark.venv
def test_a_model_file_by_a_relative_path_is_probed_and_run_from_another_folder(relative_run):
    x = relative_run["root"] / "x"
    result, manifest = relative_run["result"], relative_run["manifest"]
    assert result.status is Status.ok and result.cell.model == "tiny"
    assert list((relative_run["cache"] / "model-probes").glob("*.json"))  # probed here, not answered from a cache
    assert manifest["selection"]["model_file"] == [str(x / "tiny.py")]
    assert manifest["typed_paths"]["model_file"] == ["../x/tiny.py"]
    assert manifest["cwd"] == str(relative_run["project"])


@pytest.mark.venv
def test_a_data_file_by_a_relative_path_feeds_the_cells(relative_run):
    x = relative_run["root"] / "x"
    result, manifest = relative_run["result"], relative_run["manifest"]
    assert result.data.source != "synthetic" and result.data.train_samples == 96 and result.work.train_samples == 96
    spec = json.loads((relative_run["run"] / result.cell_id / "spec.json").read_text())
    assert spec["model"]["data_file"] == str(x / "tiny.npz")
    assert manifest["selection"]["data_file"] == str(x / "tiny.npz")
    assert manifest["typed_paths"]["data_file"] == "../x/tiny.npz"


@pytest.mark.venv
def test_a_matrix_by_a_relative_path_is_the_one_the_run_used(relative_run):
    manifest = relative_run["manifest"]
    assert manifest["selection"]["matrix"] == str(relative_run["root"] / "x" / "matrix.yaml")
    assert manifest["typed_paths"]["matrix"] == "../x/matrix.yaml"


@pytest.mark.venv
def test_results_and_history_by_relative_paths_land_in_the_project_folder(relative_run):
    project, manifest = relative_run["project"], relative_run["manifest"]
    assert relative_run["run"].parent == project / "out" and (project / "out" / "latest").is_symlink()
    assert (project / "hist.sqlite").is_file() and not (REPO_ROOT / "hist.sqlite").exists()
    assert manifest["typed_paths"]["results"] == "out" and manifest["typed_paths"]["history"] == "hist.sqlite"
    # the history command reads relative paths from its own folder too
    other = project / "sub"
    other.mkdir()
    added = kbm(["history", "add", f"../out/{relative_run['run'].name}", "--history", "../hist2.sqlite"], other,
                relative_run["env"], timeout=300)
    assert added.returncode == 0 and (project / "hist2.sqlite").is_file(), added.stdout + added.stderr
    shown = kbm(["history", "--history", "../hist.sqlite"], other, relative_run["env"], timeout=300)
    assert shown.returncode == 0 and "tiny" in shown.stdout, shown.stdout[-2000:] + shown.stderr[-2000:]


@pytest.mark.venv
def test_resume_by_a_relative_path_continues_that_run(relative_run):
    project, run = relative_run["project"], relative_run["run"]
    elsewhere = relative_run["root"] / "elsewhere"
    elsewhere.mkdir()
    proc = kbm(["--resume", f"../project/out/{run.name}", "--no-report", "--no-history"], elsewhere,
               relative_run["env"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 cells already have a result for the same spec" in proc.stdout + proc.stderr
    (resumed,) = run.glob("run.resume-*.json")
    manifest = json.loads(resumed.read_text())
    assert manifest["typed_paths"]["resume"] == f"../project/out/{run.name}" and manifest["cwd"] == str(elsewhere)
    assert manifest["selection"]["model_file"] == [str(relative_run["root"] / "x" / "tiny.py")]
    assert not (elsewhere / "results").exists()  # nothing of the run was written where the resume started
    assert project.is_dir()


@pytest.mark.venv
def test_an_interpreter_by_a_relative_path_runs_the_cells(relative_run, prepared):
    """--python env/bin/python from the project folder: the existing executor's workers start in another folder."""
    project = relative_run["project"]
    python = Path(prepared("keras3-jax").location) / "bin" / "python"
    typed = os.path.relpath(python, project)
    proc = kbm(["--python", typed, "--model-file", "../x/tiny.py", "--only", "jax", "--profile", "smoke",
                "--results", "by-python", "--no-report", "--no-history"], project, relative_run["env"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = the_one_run(project / "by-python")
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["selection"]["python"] == os.path.normpath(project / typed) == str(python)
    assert manifest["typed_paths"]["python"] == typed
    ((_, result),) = list(iter_results(run))
    assert result.status is Status.ok and result.executor.name == "existing"
