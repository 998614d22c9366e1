"""One timing method for every Keras generation, the CPU's estimated peak, whole-batch CIFAR epochs, and the
statistics that compare and bench-overhead judge with.

The worker-side helpers are plain Python (models/ imports nothing from a framework at module level), so their unit
tests run on the host; the fields themselves are checked on real smoke cells of a Keras 3 environment here and of a
2017 environment in tests/test_keras2017.py.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
from pathlib import Path

import pytest

from common.stats import between_run_cv, mean_interval, ratio_goal, t975
from models import provenance
from models.worker import fit_summary, samples_in_whole_batches
from runner.paths import REPO_ROOT
from tests.fixtures import run_results, run_runner

# -- the CPU peak estimate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "vendor", "family", "model", "per_cycle"), [
    ("fpu sse2 avx avx2 fma", "AuthenticAMD", 0x19, 0x01, 32),        # Zen 3: AVX2 + FMA
    ("sse2 avx avx2 fma avx512f avx512bw", "AuthenticAMD", 0x19, 0x11, 32),  # Zen 4: AVX-512 as 2 x 256 bit
    ("sse2 avx avx2 fma avx512f", "AuthenticAMD", 0x1A, 0x02, 64),    # Zen 5: full-width AVX-512
    ("sse2 avx avx2 fma avx512f", "GenuineIntel", 6, 0x55, 64),       # Skylake-SP, two FMA units assumed
    ("sse2 avx avx2 fma", "AuthenticAMD", 0x17, 0x01, 16),            # Zen 1: AVX2 as 2 x 128 bit
    ("sse2 avx avx2 fma", "GenuineIntel", 6, 0x3F, 32),               # Haswell
    ("sse2 avx", "GenuineIntel", 6, 0x2A, 16),                        # Sandy Bridge: no FMA
    ("sse2", "GenuineIntel", 6, 0x0F, 8),
    ("", "ARM", None, None, None),
])
def test_flop_per_cycle_follows_the_vector_extensions(flags, vendor, family, model, per_cycle):
    got, why = provenance.fp32_flop_per_cycle(flags.split(), vendor, family, model)
    assert got == per_cycle and why


def test_cpu_peak_is_cores_times_clock_times_flop_per_cycle_on_this_machine():
    """Recomputed from /proc/cpuinfo independently of the worker's parser."""
    peak = provenance.cpu_peak()
    with open("/proc/cpuinfo") as handle:
        text = handle.read()
    flags = next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split()
    mhz = float(next(line for line in text.splitlines() if line.startswith("cpu MHz")).split(":", 1)[1])
    assert peak["cores"] == provenance.usable_cores()
    if peak["clock_source"] == "/proc/cpuinfo cpu MHz":
        assert peak["clock_mhz"] == mhz
    if "avx2" in flags and "fma" in flags:
        assert peak["flop_per_cycle"] in (16, 32, 64)
    assert peak["fp32_gflops"] == pytest.approx(peak["cores"] * peak["clock_mhz"] / 1e3 * peak["flop_per_cycle"],
                                                abs=0.06)
    assert "estimate" in peak["method"] and peak["isa"]


def test_gpu_used_is_honest_about_what_it_cannot_tell():
    assert provenance.gpu_used(False, "cpu") is False
    assert provenance.gpu_used(False, "mxnet gpu(0)") is False  # no GPU: never claimed
    assert provenance.gpu_used(True, "mxnet gpu(0)") is True
    assert provenance.gpu_used(True, "theano cpu") is False
    assert provenance.gpu_used(None, "unknown") is None  # the framework could not say: unknown, not False
    assert provenance.gpu_used(None, "cuda:0") is True
    assert provenance.gpu_used(False, None) is False and provenance.gpu_used(True, None) is None  # never placed


# -- worker helpers ----------------------------------------------------------------------------------------------


def test_article_epoch_is_the_whole_fit_over_the_epochs():
    assert fit_summary(30.0, 3, 0.25) == {"article_epoch_s": 10.0, "build_fn_s": 0.25}
    assert fit_summary(1.0, 0, 0.1)["article_epoch_s"] is None
    assert fit_summary(1.0, 1, -1e-9)["build_fn_s"] == 0.0


def test_whole_batches_drop_the_partial_last_batch():
    assert samples_in_whole_batches(50000, 32) == 49984  # 1562 steps, as the example's 50000 // 32
    assert samples_in_whole_batches(200, 32) == 192
    assert samples_in_whole_batches(256, 32) == 256
    assert samples_in_whole_batches(20, 32) == 20  # fewer than one batch: train on what there is


# -- statistics for compare and bench-overhead ---------------------------------------------------------------------


def test_t_quantiles():
    assert t975(1) == 12.706 and t975(2) == 4.303 and t975(2.9) == 4.303 and t975(1000) == 1.96
    with pytest.raises(ValueError):
        t975(0.5)


def test_mean_interval_is_a_t_interval():
    iv = mean_interval([0.996, 1.054, 1.010])
    s = statistics.stdev([0.996, 1.054, 1.010])
    assert iv.estimate == pytest.approx(1.02)
    assert iv.hi - iv.estimate == pytest.approx(4.303 * s / math.sqrt(3))
    assert mean_interval([1.0]) is None


def test_between_run_cv_needs_two_processes():
    assert between_run_cv([2.95, 2.49, 2.32]) == pytest.approx(statistics.stdev([2.95, 2.49, 2.32]) / 2.5867,
                                                               rel=1e-3)
    assert between_run_cv([2.95]) is None


def test_overhead_goal_needs_a_narrow_interval_to_say_anything():
    wide = ratio_goal([0.996, 1.054])  # the two single-run ratios measured on this machine
    assert not wide.precise and wide.met is None and "wider than the 1% goal" in wide.message
    met = ratio_goal([1.002, 1.003, 1.001, 1.002])
    assert met.precise and met.met is True and "met" in met.message
    missed = ratio_goal([1.05, 1.051, 1.049])
    assert missed.precise and missed.met is False and "NOT met" in missed.message
    assert ratio_goal([1.0]).interval is None


# -- the fields on a real Keras 3 cell -----------------------------------------------------------------------------


@pytest.mark.venv
def test_keras3_cells_time_the_whole_fit_and_train_whole_cifar_batches(keras_home, tmp_path):
    """TensorFlow under Keras 3, smoke: the fixture's CIFAR-10 has 200 training images, so an epoch is 6 whole
    batches of 32 (192 images), not ceil(200 / 32) = 7, as the example's fit_generator ran."""
    proc = run_runner(["--only", "tensorflow@keras3@keras", "--model", "mlp", "--model", "cifar10_cnn", "--profile",
                       "smoke", "--no-report"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["cell"]["model"]: r for r in run_results(tmp_path)}
    for r in results.values():
        assert r["status"] == "ok", r.get("error")
        epochs = r["epochs"]
        assert r["article_epoch_s"] == pytest.approx(r["timeline"]["fit_s"] / len(epochs))
        # the whole fit holds every callback epoch and what precedes on_train_begin
        assert r["article_epoch_s"] * len(epochs) >= sum(e["wall_s"] for e in epochs) + r["build_fn_s"] - 1e-3
        assert 0 <= r["build_fn_s"] < r["first_epoch_s"]  # Keras 3 traces inside epoch 1, not before it
        assert r["host"]["cpu_peak"]["fp32_gflops"] > 0
        assert r["host"]["gpu"]["used"] is False and r["host"]["gpu"]["available"] is False
    cifar = results["cifar10_cnn"]
    assert cifar["data"]["train_samples"] == 200
    assert {e["samples"] for e in cifar["epochs"]} == {192} and cifar["fit_params"]["steps"] == 6
    assert results["mlp"]["fit_params"]["steps"] == 2 and results["mlp"]["epochs"][0]["samples"] == 256


# -- an asynchronous backend's queued training steps are training, not validation ---------------------------------
QUEUED_CHECK = r"""
import json, sys
import numpy as np
import keras
from models.queued import queued_work_waiter
from models.timing import EpochClock, EventLog, make_epoch_timer

events = []
wait = queued_work_waiter("jax", False)

def waiting(model):
    events.append(("queued",))
    wait(model)
    events.append(("ready", all(v.value.is_ready() for v in model.variables)))

class Clock(EpochClock):
    def validation_begin(self, at=None):
        events.append(("validation",))
        super().validation_begin(at)

model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(1024, 64).astype("float32"), np.random.randint(0, 10, 1024)
clock = Clock(EventLog(None))
timer = make_epoch_timer(keras, clock, lambda k: k, 3, waiting)
model.fit(x, y, batch_size=32, epochs=2, validation_data=(x[:128], y[:128]), callbacks=[timer], verbose=0)
json.dump({"events": events, "epochs": clock.epochs}, open(sys.argv[1], "w"))
"""


@pytest.mark.venv
def test_keras3_on_jax_starts_the_validation_clock_once_the_queued_training_steps_are_done(prepared, tmp_path):
    """JAX returns from each training step before it has run; the timer waits for the model's variables before it
    starts the validation clock, so `val_s` holds the validation pass, not the epoch's last training steps."""
    env = prepared("keras3-jax")
    script, out = tmp_path / "queued_check.py", tmp_path / "queued.json"
    script.write_text(QUEUED_CHECK)
    variables = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT), "KERAS_HOME": str(tmp_path)}
    variables.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(Path(env.location) / "bin" / "python"), str(script), str(out)], cwd=REPO_ROOT,
                          env=variables, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(out.read_text())
    kinds = [e[0] for e in found["events"]]
    assert kinds == ["queued", "ready", "validation"] * 2  # per epoch: wait, then the validation clock
    assert all(e[1] for e in found["events"] if e[0] == "ready")
    assert all(e["val_s"] is not None and 0 < e["val_s"] < e["wall_s"] for e in found["epochs"])


ASYNC_CHECK = r"""
import json, sys
import keras
from keras.src.callbacks.callback_list import CallbackList
from keras.src.utils.python_utils import is_default
from models import compat
from models.keras_driver import KerasDriver
from models.timing import EpochClock, EventLog, make_epoch_timer

api = compat.KerasAPI(keras)
timer = make_epoch_timer(keras, EpochClock(EventLog(None)), api.metric_name, api.generation, lambda model: None)
hooks = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
         "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")
overridden = [h for h in hooks if not is_default(getattr(timer, h))]
# a keras.io suite cell adds its step window (models/hub.py); whatever fit is given must keep the dispatch
from models.hub import StepWindow

window = StepWindow(keras).callback
listed = CallbackList([timer, window], add_history=True)
# what fit's own CallbackList decides for these callbacks, and the same for a bare fit (no callback)
bare = CallbackList(None, add_history=True)
json.dump({"overridden": overridden, "window_async_safe": window.async_safe,
           "async_train": listed._async_train, "async_test": listed._async_test,
           "bare_async_train": bare._async_train, "generation": api.generation,
           "driver_passes": KerasDriver.fit.__code__.co_names}, open(sys.argv[1], "w"))
"""


@pytest.mark.venv
@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_the_harness_passes_fit_no_batch_hook_so_keras_keeps_its_asynchronous_dispatch(prepared, tmp_path, backend):
    """On a GPU a per-batch callback costs Keras 40-65 % of an epoch (it switches off Keras 3's asynchronous
    callback dispatch and reads every step's logs); the harness's timer must override epoch- and test-level hooks
    alone, and the keras.io suite's step window (which needs batch hooks) must declare itself async-safe, so fit's
    CallbackList dispatches as it would for a bare fit."""
    env = prepared(f"keras3-{backend}")
    script, out = tmp_path / "async_check.py", tmp_path / "async.json"
    script.write_text(ASYNC_CHECK)
    variables = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT), "KERAS_HOME": str(tmp_path)}
    variables.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(Path(env.location) / "bin" / "python"), str(script), str(out)], cwd=REPO_ROOT,
                          env=variables, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(out.read_text())
    assert found["generation"] == 3 and found["overridden"] == [] and found["window_async_safe"] is True
    assert found["async_train"] == found["bare_async_train"]  # TensorFlow's is False for both (not thread-safe)
    assert found["async_test"] == found["bare_async_train"]
    # the driver passes the timer and nothing else: `callbacks=[timer]` in KerasDriver.fit
    assert "make_epoch_timer" in found["driver_passes"]
