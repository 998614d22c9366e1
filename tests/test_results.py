"""The result contract: what a report may rely on, and what the loader refuses."""

from __future__ import annotations

import json
import os

import pytest

from runner.results import ResultError, describe_exit, load_result, new_run_dir, validate, write_json_atomic

GOOD = {
    "schema_version": 1, "status": "ok", "error": None, "stage": "done",
    "cell": {"environment": "keras3-jax", "backend": "jax", "model": "mlp", "profile": "smoke", "repeat": 0,
             "seed": 1},
    "cell_id": "mlp.jax.keras3-jax.smoke.r0", "spec_hash": "abc", "executor": {"name": "venv"}, "params": 669706,
    "epochs": [{"epoch": 1, "wall_s": 2.0, "cpu_s": 3.0, "samples": 256, "loss": 2.3, "accuracy": 0.1}],
    "first_epoch_s": 2.0, "compile_s": None, "steady_epoch_s": None,
    "data": {"source": "synthetic", "sha256": "0" * 64, "dataset": "mnist", "train_samples": 256,
             "test_samples": 128},
    "versions": {"keras": "3.15.1"}, "host": {}, "git_commit": None, "started_at": "t", "finished_at": "t",
}


def test_a_complete_result_validates():
    assert validate(GOOD, "r.json").cell.backend == "jax"
    timed = validate({**GOOD, "article_epoch_s": 2.4, "build_fn_s": 0.3}, "r.json")
    assert (timed.article_epoch_s, timed.build_fn_s) == (2.4, 0.3)


@pytest.mark.parametrize(("change", "words"), [
    ({"schema_version": 2}, "schema_version 2 is not 1"),
    ({"status": "ok", "epochs": []}, "status ok but missing epochs"),
    ({"status": "failed", "error": None}, "needs an `error`"),
    ({"status": "exploded", "error": "x"}, "status"),
    ({"cell": {"backend": "jax"}}, "cell.environment"),
    ({"article_epoch_s": 1.5}, "article_epoch_s 1.5 is below the mean epoch 2"),  # not timed around the whole fit
    ({"build_fn_s": -0.1}, "build_fn_s"),
])
def test_broken_results_are_refused_with_the_field_named(change, words):
    with pytest.raises(ResultError, match=words):
        validate({**GOOD, **change}, "r.json")


def test_atomic_write_leaves_no_temporary_and_reads_back(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, GOOD)
    assert load_result(path).params == 669706
    assert os.listdir(tmp_path) == ["result.json"]
    path.write_text(json.dumps(GOOD)[:50])
    with pytest.raises(ResultError, match="unreadable"):
        load_result(path)


def test_each_run_gets_a_new_folder_and_latest_follows(tmp_path):
    first, second = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    assert (tmp_path / "latest").resolve() == second.resolve()


def test_exit_descriptions_name_the_signal():
    assert describe_exit(-6) == "killed by signal SIGABRT" and describe_exit(3) == "exited with status 3"
