"""The result contract (schema 2): what a report may rely on, what the loader refuses, how schema 1 files migrate,
and what `finalize` does with a worker result that breaks the contract."""

from __future__ import annotations

import copy
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import (
    SCHEMA_VERSION,
    CellResult,
    ResultError,
    Status,
    iter_results,
    load_result,
    new_result,
    new_run_dir,
    skeleton,
    validate,
    write_json_atomic,
)
from runner.paths import REPO_ROOT
from runner.record import INVALID_WORKER_RESULT, describe_exit, finalize

V1_RUN = REPO_ROOT / "tests" / "data" / "schema1-run"

SPEC = {
    "cell": {"environment": "keras3-jax", "backend": "jax", "model": "mlp", "profile": "smoke", "repeat": 0,
             "seed": 1, "variant": "stock"},
    "cell_id": "mlp.jax.keras3-jax.smoke.stock.r0", "spec_hash": "abc", "timeout_s": 60,
    "backend": {"title": "JAX", "keras_backend": "jax", "framework": "jax", "family": None, "driver": "keras"},
}
GOOD = {
    **skeleton(SPEC, Status.ok, "done"),
    "executor": {"name": "venv", "environment": "keras3-jax"}, "params": 669706,
    "epochs": [{"epoch": 1, "wall_s": 2.0, "cpu_s": 3.0, "samples": 256, "loss": 2.3, "accuracy": 0.1}],
    "first_epoch_s": 2.0, "test": {"loss": 2.2, "accuracy": 0.12, "samples": 128},
    "work": {"train_samples": 256, "val_samples": 128, "batch_size": 128, "epochs": 1, "data": "synthetic"},
    "data": {"source": "synthetic", "sha256": "0" * 64, "dataset": "mnist", "train_samples": 256,
             "test_samples": 128},
    "settings": {"variant": "stock", "data_format": "channels_last", "jit_compile": "auto"},
    "versions": {"keras": "3.15.1"},
}


def test_a_complete_result_validates():
    assert validate(GOOD, "r.json").cell.backend == "jax"
    timed = validate({**GOOD, "article_epoch_s": 2.4, "build_fn_s": 0.3}, "r.json")
    assert (timed.article_epoch_s, timed.build_fn_s) == (2.4, 0.3)


@pytest.mark.parametrize(("change", "words"), [
    ({"schema_version": 3}, "schema_version 3 is neither 1 nor 2"),
    ({"epochs": []}, "status ok but missing epochs"),
    ({"work": None}, "status ok but missing work"),
    ({"status": "failed", "error": None}, "needs an `error`"),
    ({"status": "exploded", "error": "x"}, "status"),
    ({"cell": {"backend": "jax"}}, "cell.environment"),
    ({"article_epoch_s": 1.5}, "article_epoch_s 1.5 is below the mean epoch 2"),  # not timed around the whole fit
    ({"build_fn_s": -0.1}, "build_fn_s"),
    ({"epoch_times": [1.0]}, "epoch_times: Extra inputs are not permitted"),  # a field nobody declared
    ({"memory": {"peak_rss_MB": 1.0}}, "memory.peak_rss_MB: Extra inputs"),  # a typo in a nested block
    ({"started_at": "2026-12-02 12:00"}, "started_at"),  # not a UTC timestamp
])
def test_broken_results_are_refused_with_the_field_named(change, words):
    with pytest.raises(ResultError, match=words):
        validate({**GOOD, **change}, "r.json")


def test_the_skeleton_the_worker_fills_never_validates_before_it_is_completed():
    """What the host hands the worker says `failed` with no error: a worker that stopped half-way cannot pass."""
    template = skeleton(SPEC)
    assert template["status"] == "failed" and template["schema_version"] == SCHEMA_VERSION
    with pytest.raises(ResultError, match="needs an `error`"):
        validate(template, "worker-result.json")
    skipped = new_result(SPEC, Status.skipped, "data", "no data", {"name": "venv", "environment": "keras3-jax"})
    assert skipped.status is Status.skipped and skipped.cell.variant == "stock"


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


# -- schema 1, recorded by the code of the day (tests/data/schema1-run: a smoke run of 12 real cells) -------------


def test_every_schema1_result_recorded_by_the_old_code_loads_as_schema2():
    loaded = list(iter_results(V1_RUN))
    assert len(loaded) == 12
    for path, result in loaded:
        assert isinstance(result, CellResult), result
        raw = json.loads(path.read_text())
        assert raw["schema_version"] == 1 and result.schema_version == 2  # read as 2, the file left as it was
        assert result.status is Status.ok and result.work is not None
        assert result.work.train_samples == raw["epochs"][-1]["samples"]
        assert result.work.batch_size == 128 and result.work.data == "real"
        assert result.backend.title == raw["settings"]["title"]
        assert result.settings.limits == raw["settings"]["profile"]


def test_schema1s_default_variant_is_the_stock_variant_now():
    """`default` meant the backends as they ship; each environment's default is another idea: `stock` now."""
    results = {r.cell_id: r for _, r in iter_results(V1_RUN)}
    old_ids = sorted(p.name for p in V1_RUN.iterdir() if p.is_dir())
    assert "mlp.tensorflow.keras3-tensorflow.smoke.default.r0" in old_ids
    assert "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0" in results
    stock = results["mlp.tensorflow.keras3-tensorflow.smoke.stock.r0"]
    assert stock.cell.variant == "stock" and stock.settings.variant == "stock"
    assert results["mlp.jax.keras3-jax.smoke.jax-ynn-no-conv.r0"].cell.variant == "jax-ynn-no-conv"


def test_a_schema1_result_without_its_spec_still_migrates(tmp_path):
    source = next(V1_RUN.glob("mlp.jax*/result.json"))
    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / "result.json").write_text(source.read_text())
    result = load_result(tmp_path / "cell" / "result.json")
    assert result.work.batch_size == 128  # from Keras' own steps per epoch: ceil(256 / 128) = 2


# -- finalize: the worker's JSON is validated before it becomes result.json ---------------------------------------


def _finalize(cell_dir: Path, payload: dict) -> CellResult:
    cell_dir.mkdir()
    (cell_dir / "worker-result.json").write_text(json.dumps(payload))
    (cell_dir / "worker.log").write_text("the worker's last words\n")
    return finalize(cell_dir, SPEC, returncode=0, timed_out=False, executor={"name": "venv", "environment":
                    "keras3-jax", "pid": 1}, host_load={"busy": False, "other_cpu_share": 0.01},
                    provenance={"git_commit": "abc", "git_dirty": False}, launched_at=0.0)


def test_finalize_writes_a_valid_worker_result_with_the_hosts_facts(tmp_path):
    result = _finalize(tmp_path / "cell", GOOD)
    assert result.status is Status.ok and result.executor.pid == 1 and result.host.load.other_cpu_share == 0.01
    assert load_result(tmp_path / "cell" / "result.json") == result
    assert not (tmp_path / "cell" / "worker-result.json").exists()


def test_a_worker_result_that_breaks_the_contract_fails_the_cell_and_is_kept(tmp_path):
    bad = copy.deepcopy(GOOD)
    bad["epochs"][0]["wall_seconds"] = 2.0  # a field the contract does not declare
    result = _finalize(tmp_path / "cell", bad)
    assert result.status is Status.failed
    assert "breaks the result contract" in result.error and "epochs.0.wall_seconds" in result.error
    kept = json.loads((tmp_path / "cell" / INVALID_WORKER_RESULT).read_text())
    assert kept == bad  # nothing lost
    assert result.log_tail == ["the worker's last words"]
    assert load_result(tmp_path / "cell" / "result.json").status is Status.failed


# -- time: UTC whatever TZ says -------------------------------------------------------------------------------------


def test_run_json_and_results_say_utc_under_any_time_zone(tmp_path):
    """Tokyo is 9 hours ahead of UTC: a local time with a `Z` would be 9 hours off."""
    code = ("import sys; from pathlib import Path; from common.timeutil import utc_stamp; "
            "from common.results import new_run_dir; print(utc_stamp()); print(new_run_dir(Path(sys.argv[1])).name)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={**os.environ, "TZ": "Asia/Tokyo"}, check=True).stdout.split()
    now = datetime.datetime.now(datetime.UTC)
    stamp = datetime.datetime.strptime(out[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    run_id = datetime.datetime.strptime(out[1][:15], "%Y%m%d-%H%M%S").replace(tzinfo=datetime.UTC)
    assert abs((now - stamp).total_seconds()) < 60 and abs((now - run_id).total_seconds()) < 60
