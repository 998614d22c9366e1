"""Inference and memory in every cell: measured after training (so no training figure can change), recorded with
units in the names, kept when inference fails, and judged by `compare` as steady epochs are.

The real cells here are smoke MLPs in the cached keras3-jax environment (seconds each); the compare test reads
format-exact results (tests/results_factory.py), so a doubled latency is exactly that.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.results import Status, iter_results
from runner.paths import REPO_ROOT
from tests.fixtures import run_runner, the_run
from tests.results_factory import latency, make_result, make_spec, write_run

TRAINING_STAGES = ["start", "import", "data", "build", "train", "evaluate"]


def _one(tmp_path, keras_home, *args, env=None):
    proc = run_runner(["--profile", "smoke", "--model", "mlp", "--only", "jax@keras", "--no-report", "--no-history",
                       *args], keras_home, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = the_run(tmp_path / "results")
    ((path, result),) = list(iter_results(run))
    events = [json.loads(line) for line in (path.parent / "events.jsonl").read_text().splitlines()]
    return result, json.loads((path.parent / "spec.json").read_text()), events


@pytest.mark.venv
def test_inference_runs_after_training_and_changes_nothing_of_it(tmp_path, keras_home):
    on, spec_on, events_on = _one(tmp_path / "on", keras_home)
    off, spec_off, events_off = _one(tmp_path / "off", keras_home, "--no-inference")
    # the same experiment but for the inference settings: the training the worker is told to do is identical
    strip = ("inference", "result_template", "spec_hash", "paths", "data")
    assert {k: v for k, v in spec_on.items() if k not in strip} == {k: v for k, v in spec_off.items()
                                                                    if k not in strip}
    assert spec_off["inference"] is None and spec_on["inference"]["calls"] == 10
    stages_on = [e["stage"] for e in events_on if e["kind"] == "stage"]
    stages_off = [e["stage"] for e in events_off if e["kind"] == "stage"]
    assert stages_on == [*TRAINING_STAGES, "inference", "record", "done"]
    assert stages_off == [*TRAINING_STAGES, "record", "done"]
    # the training window is closed before inference opens: every epoch ended before the inference stage began
    started = next(e["t"] for e in events_on if e.get("stage") == "inference")
    assert max(e["t"] for e in events_on if e["kind"] == "epoch") < started
    for result in (on, off):
        assert result.status is Status.ok and len(result.epochs) == 3
        assert abs(result.article_epoch_s * 3 - result.timeline.fit_s) < 1e-9  # timed around fit, nothing else
    assert off.inference is None and off.timeline.inference_s is None
    inf = on.inference
    assert inf.error is None and [s.method for s in inf.latency] == ["predict_on_batch", "predict"]
    pob = inf.latency_of("predict_on_batch")
    assert len(pob.samples_ms) == 10 and pob.p50_ms <= pob.p90_ms <= pob.p99_ms and pob.batch_size == 1
    assert [t.batch_size for t in inf.throughput] == [128, 256] and all(t.samples_per_s > 0 for t in inf.throughput)
    memory = on.memory
    assert 0 < memory.rss_before_build_mb <= memory.peak_rss_after_train_mb <= memory.peak_rss_mb
    assert memory.gpu_peak_mb is None and "no GPU" in memory.gpu_note
    assert memory.gpu_preallocate == "XLA_PYTHON_CLIENT_PREALLOCATE=false"  # the matrix sets it for JAX


@pytest.mark.venv
def test_a_failure_in_inference_keeps_the_training_result(tmp_path, keras_home):
    env = {"KBM_TESTING": "1", "KBM_FAULT": "raise@mlp@inference-call"}
    result, _, _ = _one(tmp_path, keras_home, env=env)
    assert result.status is Status.ok and len(result.epochs) == 3 and result.test.accuracy is not None
    assert result.inference.error.startswith("latency (predict_on_batch, batch 1) failed: RuntimeError: injected")
    assert any(w.startswith("inference: latency (predict_on_batch") for w in result.warnings)
    assert result.memory.peak_rss_mb > 0  # what comes after inference is still measured


def _latency_run(tmp_path, name, p50):
    cells = []
    for repeat in range(3):
        r = make_result("mlp", "jax", repeat=repeat, steady=[1.0, 1.01], inference=latency(p50 * (1 + 0.01 * repeat)))
        cells.append((r, make_spec(r)))
    return write_run(tmp_path, cells, name)


def test_compare_flags_a_doubled_p50_latency_as_a_regression(tmp_path):
    a = _latency_run(tmp_path, "20261201-000000-lat1", 0.30)
    same = _latency_run(tmp_path, "20261201-000000-lat2", 0.30)
    doubled = _latency_run(tmp_path, "20261201-000000-lat3", 0.60)

    def compare(b):
        return subprocess.run([sys.executable, "-m", "runner", "compare", str(a), str(b)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)

    unchanged = compare(same)
    assert unchanged.returncode == 0, unchanged.stdout
    slower = compare(doubled)
    assert slower.returncode == 1, slower.stdout
    assert "REGRESSION" in slower.stdout and "latency up (2.00x)" in slower.stdout
