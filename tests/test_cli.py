"""The command line a user meets first: --help, --dry-run, and bad input stopping before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys

from runner.paths import REPO_ROOT


def runner(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_help_explains_the_options_and_subcommands():
    proc = runner("--help")
    assert proc.returncode == 0
    for words in ("--only BACKEND", "--dry-run", "--data {real,synthetic}", "--executor", "kbm check",
                  "make bench-overhead", "examples:", "exit status:"):
        assert words in proc.stdout, words


def test_every_subcommand_lives_in_its_own_module_with_one_help_layout():
    """`kbm NAME --help` for each entry of the one list of subcommands: prog `kbm NAME`, a description, options,
    and the exit statuses last; each module of runner/commands/ is in the list."""
    from runner.commands import COMMANDS

    modules = {p.stem for p in (REPO_ROOT / "runner" / "commands").glob("*.py")} - {"__init__"}
    assert modules == {c.module for c in COMMANDS.values()}
    for name, command in COMMANDS.items():
        proc = runner(name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: kbm {name} "), name
        assert "options:" in proc.stdout and "exit status:" in proc.stdout.split("options:")[-1], name
        assert command.parser().prog == f"kbm {name}"


def test_no_subcommand_is_run_and_run_is_the_same_parser():
    from runner.commands import COMMANDS
    from runner.options import build_parser

    ours = {a.dest for a in build_parser("kbm")._actions}
    assert ours == {a.dest for a in COMMANDS["run"].parser()._actions}
    assert ours == {a.dest for a in COMMANDS["sweep"].parser()._actions}
    assert runner("run", "--dry-run", "--only", "jax", "--model", "mlp").stdout == \
        runner("--dry-run", "--only", "jax", "--model", "mlp").stdout


def test_tooling_is_not_a_runner_subcommand_and_says_where_it_went():
    proc = runner("bench-overhead")
    assert proc.returncode == 2 and "make bench-overhead" in proc.stderr and "tooling.bench" in proc.stderr


def test_dry_run_lists_cells_and_installs_without_running(tmp_path):
    proc = runner("--dry-run", "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    assert "43 cells" in proc.stdout and "tensorflow-cpu==2.21.0" in proc.stdout and "torch==2.13.0" in proc.stdout
    assert "theano==0.9.0" in proc.stdout and "mxnet==0.11.0" in proc.stdout  # the whole matrix, 2017 included
    assert not (tmp_path / "results").exists()


def test_bad_input_exits_2_and_starts_nothing(tmp_path):
    bad = tmp_path / "matrix.yaml"
    bad.write_text((REPO_ROOT / "matrix.yaml").read_text().replace("batch_size: 128", "batch_sise: 128", 1))
    proc = runner("--matrix", str(bad), "--results", str(tmp_path / "results"))
    assert proc.returncode == 2
    assert f"{bad}:" in proc.stderr and "batch_sise: unknown key" in proc.stderr
    proc = runner("--only", "caffe2", "--results", str(tmp_path / "results"))
    assert proc.returncode == 2 and "--only caffe2: no such backend" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_check_flags_a_corrupt_result(tmp_path):
    cell = tmp_path / "run" / "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0"
    cell.mkdir(parents=True)
    (cell / "result.json").write_text('{"schema_version": 1, "status": "ok", "cell": {')
    proc = runner("check", str(tmp_path / "run"))
    assert proc.returncode == 1 and "unreadable" in proc.stdout and "1 problems" in proc.stdout


def test_an_environment_this_machine_cannot_serve_is_listed_at_the_end_with_the_fix(tmp_path):
    """Never a silent omission: no interpreter for an environment's Python skips its cells and says what to do."""
    matrix = (REPO_ROOT / "matrix.yaml").read_text()
    old = '''  keras2017-mxnet:\n    python: "3.6"'''
    assert old in matrix
    (tmp_path / "matrix.yaml").write_text(matrix.replace(old, '''  keras2017-mxnet:\n    python: "3.1"'''))
    proc = runner("--matrix", str(tmp_path / "matrix.yaml"), "--executor", "venv", "--env", "keras2017-mxnet",
                  "--model", "mlp", "--profile", "smoke", "--results", str(tmp_path / "results"), "--no-report",
                  "--data", "synthetic")  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # skipped, not failed; but no cell ran, which exits 1
    line = next(x for x in proc.stderr.splitlines() if x.startswith("not served here:"))
    assert "keras2017-mxnet" in line and "no Python 3.1 interpreter found" in " ".join(proc.stderr.split())
    assert "pyenv install 3.1" in " ".join(proc.stderr.split())


def test_a_time_limit_or_seed_that_cannot_be_is_bad_input(tmp_path):
    for args, words in ((["--timeout", "0"], "--timeout 0: a time limit must be more than 0"),
                        (["--timeout", "-5"], "--timeout -5: a time limit must be more than 0"),
                        (["--seed", "-1"], "--seed -1: seeds are 0 or more")):
        proc = runner(*args, "--profile", "smoke", "--results", str(tmp_path / "results"))
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "results").exists()


def test_the_bench_profile_plans_what_it_says_it_runs(tmp_path, matrix):
    proc = runner("--dry-run", "--profile", "bench", "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    backends = {b for e in matrix.defaults.environments for b in matrix.environments[e].backends}
    assert f"{len(backends)} cells (real data, " in proc.stdout and "bench profile" in proc.stdout, proc.stdout
    rows = [r for r in map(str.split, proc.stdout.splitlines()) if len(r) == 8 and r[0].isdigit()]
    assert [row[1] for row in rows] == ["mlp"] * len(backends)  # the MLP, on each default backend
    proc = runner("--dry-run", "--profile", "bench", "--model", "cnn")
    assert proc.returncode == 2 and "--model cnn: profile bench runs only mlp" in proc.stderr


def test_check_counts_a_planned_cell_without_a_result_and_refuses_a_missing_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"cells": ["mlp.tensorflow.keras3-tensorflow.smoke.stock.r0"]}')
    proc = runner("check", str(run))
    assert proc.returncode == 1 and "planned but has no result.json" in proc.stdout, proc.stdout
    proc = runner("check", str(tmp_path / "no-such-run"))
    assert proc.returncode == 2 and "no such run folder" in proc.stderr


def interrupted_run(tmp_path) -> tuple[str, ...]:
    """A run folder as an interrupted `--profile smoke --model mlp --data synthetic --only jax` run leaves it."""
    run = tmp_path / "results" / "20260101-000000-abcd"
    run.mkdir(parents=True, exist_ok=True)
    selection = {"only": ["jax"], "model": ["mlp"], "env": [], "profile": "smoke", "repeats": 1, "seed": 1337,
                 "data": "synthetic", "matrix": str(REPO_ROOT / "matrix.yaml"), "executor": "venv", "gpus": None,
                 "parallel": 1, "timeout": None}
    (run / "run.json").write_text(json.dumps({"argv": [], "cells": ["mlp.jax.keras3-jax.smoke.jax-ynn-no-conv.r0"],
                                              "selection": selection}))
    return ("--resume", str(run))


def test_resume_replans_from_the_runs_own_options(tmp_path):
    proc = runner(*interrupted_run(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # the title wraps where the terminal is narrow
    assert "1 cells (synthetic data, " in text and "smoke profile" in text, proc.stdout
    assert " mlp " in text and " keras3-jax " in text
    proc = runner(*interrupted_run(tmp_path), "--dry-run", "--timeout", "900")  # more time: the same experiment
    assert proc.returncode == 0 and "timeout 900 s" in " ".join(proc.stdout.split()), proc.stderr


def test_resume_refuses_options_that_contradict_the_run(tmp_path):
    for args, words in ((["--profile", "quick"], "--profile quick: the run being resumed used --profile smoke"),
                        (["--data", "real"], "--data real: the run being resumed used --data synthetic"),
                        (["--seed", "7"], "--seed 7: the run being resumed used --seed 1337"),
                        (["--model", "cnn"], "--model cnn: the run being resumed has no such cells"),
                        (["--only", "torch"], "--only torch: the run being resumed has no such cells")):
        proc = runner(*interrupted_run(tmp_path), *args)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
    proc = runner("--resume", str(tmp_path / "nothing-here"))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr
