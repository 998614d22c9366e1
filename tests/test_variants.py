"""Variants, the sweep and honest rankings.

The ranking and sweep rules are checked on results built by hand (format-exact result.json and spec.json files, so
the numbers are known); the settings are checked on real smoke cells trained in the Keras 3 environments: the
variant's variables reach the worker's process, faithful-2017's LSTM gates compute Keras 2's hard sigmoid, and
repeats run interleaved with a seed each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import iter_results
from runner.paths import REPO_ROOT
from runner.summary import rankings
from tests.fixtures import run_results, run_runner
from tests.results_factory import make_result, make_spec, write_run


def hard_sigmoid_keras2(x: float) -> float:
    return min(max(0.2 * x + 0.5, 0.0), 1.0)


def _result(model: str, backend: str, variant: str, repeat: int, steady: list[float], *, default: bool,
            numerics: bool = False, env: str | None = None) -> tuple[dict, dict]:
    """A format-exact ok result (and its spec) whose epochs after the first take `steady` seconds."""
    result = make_result(model, backend, env, variant=variant, repeat=repeat, steady=steady, numerics=numerics)
    return result, make_spec(result, default=default)


def sweep_run(tmp_path: Path) -> Path:
    """JAX MLP: the default 20 % slower than jax-onednn, intervals apart (flag); torch MLP: the default 12 %
    slower but the intervals overlap (a tie, no flag); TensorFlow MLP: the default is the fastest."""
    cells = []
    for r in range(3):
        cells += [_result("mlp", "jax", "stock", r, [1.20 + 0.01 * r, 1.21], default=True),
                  _result("mlp", "jax", "jax-onednn", r, [1.00 + 0.01 * r, 1.01], default=False),
                  _result("mlp", "torch", "stock", r, [1.12, 0.9 + 0.3 * r], default=True),
                  _result("mlp", "torch", "torch-threads-1", r, [1.00, 0.95 + 0.1 * r], default=False),
                  _result("mlp", "tensorflow", "stock", r, [0.50, 0.51], default=True),
                  _result("mlp", "tensorflow", "faithful-2017", r, [0.60, 0.61], default=False, numerics=True)]
    return write_run(tmp_path, cells)


def test_sweep_report_flags_a_default_more_than_10_percent_slower(tmp_path):
    run = sweep_run(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "runner", "report", str(run), "--out", str(tmp_path / "reports")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "reports" / run.name / "summary.md").read_text()
    section = md[md.index("## Variants sweep"):]
    rows = {line.split(" | ")[1]: line for line in section.splitlines() if line.startswith("| MLP |")}
    assert set(rows) == {"JAX", "PyTorch", "TensorFlow"}, section
    assert "| jax-onednn | 1.01 | stock | 1.21 | 1.20 |" in rows["JAX"]
    assert "SLOWER: the default takes 20% longer" in rows["JAX"]
    assert "tie: the default's interval overlaps torch-threads-1's" in rows["PyTorch"]
    assert "SLOWER" not in rows["PyTorch"]
    assert "the default is the fastest" in rows["TensorFlow"]
    assert "(1 of 3)" in section
    html = (tmp_path / "reports" / run.name / "index.html").read_text()
    assert 'id="sweep"' in html and "SLOWER: the default takes 20% longer" in html
    # the per-test ranking letters PyTorch's two variants alike where their (between-run) intervals overlap
    ranking = next(line for line in md.splitlines() if line.startswith("- **Ranking now"))
    letters = dict(re.findall(r"PyTorch \((stock|torch-threads-1)\) [\d.]+ \(([a-z]+)\)", ranking))
    assert set(letters["stock"]) & set(letters["torch-threads-1"]), ranking
    assert "between-run interval over 3 processes" in md


def test_run_summary_ranks_with_letters_and_says_its_interval(tmp_path):
    run = sweep_run(tmp_path)
    results = [result for _, result in iter_results(run)]
    (heading, text), = rankings(results)
    assert heading == "mlp (steady s/epoch; intervals: between-run interval over 3 processes)"
    assert text.startswith("1. tensorflow (stock) 0.505 s (a)"), text
    letters = dict(re.findall(r"torch \((stock|torch-threads-1)\) [\d.]+ s \(([a-z]+)\)", text))
    assert set(letters["stock"]) & set(letters["torch-threads-1"]), text  # intervals overlap: a shared letter


def test_gpu_check_sets_the_sweeps_best_variant_beside_the_default_and_says_where_the_sweep_ran(tmp_path):
    """issue 29: `gpu-check --sweep DIR` adds the sweep's winner per test and backend to gpu-check.md; a sweep that
    ran on a CPU is said to be one, since its winners are not GPU decisions."""
    from runner.gpu_check import sweep_lines

    cpu = "\n".join(sweep_lines(sweep_run(tmp_path / "cpu"), ["jax", "torch"]))
    assert "not a GPU sweep" in cpu and "CPU: Test CPU" in cpu
    assert "| mlp | JAX | stock (1.210) | jax-onednn (1.010) | SLOWER" in cpu
    assert "| mlp | PyTorch | stock" in cpu and "TensorFlow" not in cpu  # only the backends gpu-check runs
    gpu_run = sweep_run(tmp_path / "gpu")
    for path in gpu_run.glob("*/result.json"):
        result = json.loads(path.read_text())
        result["host"]["gpu"] = {"available": True, "used": True, "name": "NVIDIA H200", "count": 1,
                                 "devices": ["cuda:0"]}
        path.write_text(json.dumps(result))
    gpu = "\n".join(sweep_lines(gpu_run, ["jax"]))
    assert "Ran on GPU: NVIDIA H200." in gpu and "not a GPU sweep" not in gpu and "| mlp | JAX |" in gpu
    assert "No test x backend" in "\n".join(sweep_lines(gpu_run, ["tensorflow1"]))


def test_sweep_dry_run_plans_every_applicable_variant_of_the_mnist_tests(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runner", "sweep", "--only", "jax", "--dry-run", "--results",
                           str(tmp_path / "results")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if " keras3-jax " in line and line.split()[0].isdigit()]
    from runner.cells import Selection, expand
    from runner.matrix import load_matrix

    expected = expand(load_matrix(REPO_ROOT / "matrix.yaml"),
                      Selection(backends=("jax",), models=("mlp", "cnn", "hrnn"), repeats=3, variants=("all",)))
    # model, backend, environment, variant, seed, repeat: every applicable variant, repeats interleaved
    assert [tuple(r[1:7]) for r in rows] == [(c.model, c.backend, c.environment, c.variant, str(c.seed),
                                               str(c.repeat)) for c in expected]
    keras_side = {c.variant for c in expected if c.backend == "jax"}  # the twin sweeps the variants it has
    assert len(keras_side) >= 6
    # a variant whose setting only one model has is planned for that model alone
    assert {r[1] for r in rows if r[4] == "time-folded"} == {"hrnn"}
    assert sum(r[2] == "jax" and r[1] == "mlp" for r in rows) == 3 * (len(keras_side) - 1)
    assert {r[2] for r in rows} == {"jax", "jax-native"}
    assert {r[1] for r in rows} == {"mlp", "cnn", "hrnn"}
    assert not (tmp_path / "results").exists()


def test_a_variant_for_one_model_is_planned_for_it_alone_and_said_when_named_for_another(matrix):
    from runner.cells import Selection, plan

    cells, notes = plan(matrix, Selection(backends=("jax",), models=("mlp", "hrnn"), variants=("time-folded",)))
    assert {(c.model, c.variant) for c in cells} == {("hrnn", "time-folded")}
    assert "variant time-folded applies to hrnn only: not planned for mlp" in notes


def test_the_gpu_sweeps_own_variants_are_planned_for_gpu_cells_only(matrix):
    """cuDNN's algorithm search and XLA's GPU flags are GPU settings: the sweep plans them with GPUs, never on a
    CPU (where XLA's CPU client would ignore the flags and the figures would say nothing)."""
    from runner.cells import Selection, plan

    gpu_only = {"torch-cudnn-benchmark", "jax-gpu-autotune-0", "jax-gpu-no-command-buffers"}
    sel = dict(backends=("jax", "torch"), models=("mlp",), variants=("all",))
    on_gpu, _ = plan(matrix, Selection(**sel, profile="gpu"))
    on_cpu, _ = plan(matrix, Selection(**sel, profile="quick"))
    assert gpu_only <= {c.variant for c in on_gpu} and not gpu_only & {c.variant for c in on_cpu}
    assert {c.backend for c in on_gpu if c.variant == "torch-cudnn-benchmark"} == {"torch", "torch-native"}


CUDNN_CHECK = """
import json
from models import precision
block = precision.apply("torch", "float32", {"available": False}, "float32", True)
print(json.dumps([block["cudnn_benchmark"], precision.apply("torch", "float32", {}, "float32")["cudnn_benchmark"]]))
"""


@pytest.mark.venv
def test_cudnn_benchmark_is_set_and_read_back_from_pytorch(prepared):
    """torch-cudnn-benchmark's setting reaches PyTorch and settings.precision reads it back (PyTorch keeps the
    switch on a CPU build too, so a CPU test can drive it); left unset, the framework's own stays."""
    env = prepared("keras3-torch")
    out = subprocess.run([str(Path(env.location) / "bin" / "python"), "-c", CUDNN_CHECK], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True]  # set, then left as it was


FOLD_CHECK = """
import json, numpy as np, keras
from models import compat, hrnn
from models.data import Dataset
ds = Dataset(None, None, None, None, (28, 28, 1), 10, {})
loop = hrnn.build(compat.KerasAPI(keras), ds)
folded = hrnn.build(compat.KerasAPI(keras, time_distributed="fold"), ds)
folded.set_weights(loop.get_weights())
x = np.random.RandomState(0).uniform(size=(5, 28, 28, 1)).astype("float32")
a, b = np.asarray(loop.predict(x, verbose=0)), np.asarray(folded.predict(x, verbose=0))
print(json.dumps({"params": [loop.count_params(), folded.count_params()], "diff": float(np.abs(a - b).max()),
                  "layers": sorted({type(layer).__name__ for layer in folded.layers})}))
"""


@pytest.mark.venv
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_folded_hierarchical_rnn_is_the_same_function(prepared, backend):
    """time-folded trains the function Keras' TimeDistributed does: the same parameters, and with the same weights
    the same predictions, on every Keras 3 backend."""
    env = prepared(f"keras3-{backend}")
    out = subprocess.run([str(Path(env.location) / "bin" / "python"), "-c", FOLD_CHECK], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["params"] == [199434, 199434] and found["diff"] < 1e-5
    assert "TimeDistributed" not in found["layers"]


# -- real cells -----------------------------------------------------------------------------------------------------
@pytest.mark.venv
def test_keras2_hard_sigmoid_is_the_2017_function(prepared):
    env = prepared("keras3-jax")
    xs = [-4.0, -2.5, -1.0, 0.0, 0.3, 2.5, 4.0]
    code = ("import json, sys; from models.compat import hard_sigmoid_keras2 as f; import keras; "
            f"print(json.dumps([float(v) for v in keras.ops.convert_to_numpy(f(keras.ops.convert_to_tensor({xs})))]))")
    out = subprocess.run([str(Path(env.location) / "bin" / "python"), "-c", code], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT)})
    ys = json.loads(out.stdout.strip().splitlines()[-1])
    assert ys == pytest.approx([hard_sigmoid_keras2(x) for x in xs], abs=1e-6)
    assert ys[4] == pytest.approx(0.56) and ys[4] != pytest.approx(0.3 / 6 + 0.5)  # not Keras 3's hard_sigmoid


@pytest.mark.venv
def test_variant_settings_reach_the_worker_and_repeats_interleave(keras_home, tmp_path):
    """Two variants x two repeats of the hierarchical RNN on TensorFlow (smoke): faithful-2017's gates are Keras 2's
    hard sigmoid in the built model, tf-interop-1's variable is what the worker's process saw, the order is
    round-robin, and each repeat trained from its own seed."""
    proc = run_runner(["--only", "tensorflow@keras3", "--model", "hrnn", "--profile", "smoke", "--variant",
                       "faithful-2017", "--variant", "tf-interop-1", "--repeats", "2", "--no-report"],
                      keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = run_results(tmp_path)
    assert {r["status"] for r in results} == {"ok"}
    by = {(r["cell"]["variant"], r["cell"]["repeat"]): r for r in results}
    assert set(by) == {("faithful-2017", 0), ("faithful-2017", 1), ("tf-interop-1", 0), ("tf-interop-1", 1)}
    for (variant, repeat), r in by.items():
        assert r["settings"]["variant"] == variant and r["cell_id"].endswith(f".{variant}.r{repeat}")
    faithful = by[("faithful-2017", 0)]["settings"]
    assert faithful["recurrent_activation"] == "hard_sigmoid_keras2" and faithful["data_format"] == "channels_last"
    probe = faithful["recurrent_activation_probe"]
    assert probe["y"] == pytest.approx([hard_sigmoid_keras2(x) for x in probe["x"]], abs=1e-6)
    plain = by[("tf-interop-1", 0)]["settings"]
    assert plain["recurrent_activation"] == "sigmoid"  # Keras 3's own gates where the variant says nothing
    assert plain["env_applied"]["TF_NUM_INTEROP_THREADS"] == "1" == plain["variant_env"]["TF_NUM_INTEROP_THREADS"]
    # TensorFlow honoured it: fewer threads in its inter-op pools (tf_Compute; the config getters report only the
    # config). Here 4 by default and 3 with the variable: one of its two pools follows TF_NUM_INTEROP_THREADS.
    threads = {v: by[(v, 0)]["settings"]["process_threads"].get("tf_Compute", 0) for v in ("faithful-2017",
                                                                                            "tf-interop-1")}
    assert threads["tf-interop-1"] < threads["faithful-2017"] or (os.cpu_count() or 1) == 1, threads
    assert "TF_NUM_INTEROP_THREADS" not in faithful["env_applied"]
    # round-robin: both variants' first repeats finished before either second repeat started
    run = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    order = json.loads((run / "run.json").read_text())["cells"]
    assert [c.rsplit(".", 1)[1] for c in order] == ["r0", "r0", "r1", "r1"]
    assert [by[(c.split(".")[4], int(c[-1]))]["started_at"] for c in order] == sorted(r["started_at"] for r in results)
    # a seed per repeat, so the repeats differ
    seeds = {r["cell"]["repeat"]: r["cell"]["seed"] for r in results}
    assert len(set(seeds.values())) == 2
    a, b = by[("tf-interop-1", 0)], by[("tf-interop-1", 1)]
    assert a["epochs"][0]["loss"] != b["epochs"][0]["loss"]
    assert "ranking of hrnn" in proc.stdout


@pytest.mark.venv
def test_the_precision_variants_run_on_every_keras3_backend_and_the_arithmetic_is_read_back(keras_home, tmp_path):
    """tf32 (a recorded no-op on a CPU) and mixed-bf16 (Keras' mixed_bfloat16 policy, which runs on a CPU too) train
    the MLP at smoke on TensorFlow, JAX and PyTorch; every result carries the precision block as the framework
    reports it after setup, and the arithmetic in its work, so a mixed cell never ranks with a float32 one."""
    proc = run_runner(["--only", "tensorflow@keras3@keras", "--only", "jax@keras", "--only", "torch@keras",
                       "--model", "mlp", "--profile", "smoke", "--variant", "tf32", "--variant", "mixed-bf16",
                       "--no-report", "--no-history", "--no-inference"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = run_results(tmp_path)
    by = {(r["cell"]["backend"], r["cell"]["variant"]): r for r in results}
    assert set(by) == {(b, v) for b in ("tensorflow", "jax", "torch") for v in ("tf32", "mixed-bf16")}
    for (backend, variant), r in by.items():
        assert r["status"] == "ok", r["error"]
        precision = r["settings"]["precision"]
        assert precision["flags"], backend  # the framework's own switches, read back
        if variant == "tf32":
            # asked for, and the framework's switch reads TF32, but a CPU has no TF32 units: float32 is what ran
            assert precision["requested"] == "tf32" and precision["dtype_policy"] == "float32"
            assert precision["effective"] == "float32" == r["work"]["precision"]
        else:
            assert precision["requested"] == "float32" and precision["dtype_policy"] == "mixed_bfloat16"
            assert precision["effective"] == "mixed_bfloat16" == r["work"]["precision"]
    jax_flags = by[("jax", "tf32")]["settings"]["precision"]["flags"]
    assert jax_flags == {"jax_default_matmul_precision": "tensorfloat32"}
    torch_flags = by[("torch", "tf32")]["settings"]["precision"]["flags"]
    assert torch_flags["torch.backends.cuda.matmul.fp32_precision"] == "tf32"
