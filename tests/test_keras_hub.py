"""The keras.io benchmark suite (models/hub.py): KerasHub's own models from matrix.yaml's configurations.

The logic tests check what the plan holds (keras.io's sizes in the `keras-io` profile, the configuration in the
work, the default matrix unchanged); the environment tests build the real Keras 3 environments and train the real
tiny KerasHub models on every backend, with KerasHub's own parameter count as the reference."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from common.results import CellResult, Status, iter_results
from common.work import describe, work_key
from models import hub_flops
from reports import fmt
from reports.hardware import gpu_peak_tflops
from reports.keras_io import lines_html, load_keras_io, suite_lines
from runner.cells import Selection, plan, worker_spec
from runner.matrix import load_matrix
from runner.paths import REPO_ROOT
from tests.fixtures import run_runner, the_run
from tests.results_factory import make_result

SUITE = ("bert", "gemma", "mistral", "vit")
KERAS3 = {"tensorflow": "keras3-tensorflow", "jax": "keras3-jax", "torch": "keras3-torch"}


def specs(matrix, profile, models=SUITE):
    cells, _ = plan(matrix, Selection(profile=profile, models=list(models)))
    return {(c.model, c.backend): worker_spec(matrix, c, "synthetic") for c in cells}


def test_the_keras_io_profile_plans_keras_io_sizes_on_every_keras3_backend(matrix):
    planned = specs(matrix, "keras-io", models=())
    assert set(planned) == {(m, b) for m in SUITE for b in KERAS3}  # no twin, no 2017 stack
    bert, gemma = planned["bert", "jax"]["model"], planned["gemma", "torch"]["model"]
    config = bert["config"]
    assert (bert["batch_size"], config["predict_batch_size"], config["sequence_length"]) == (32, 256, 512)
    assert bert["config"]["backbone"]["num_layers"] == 12 and bert["config"]["backbone"]["hidden_dim"] == 768
    assert (gemma["batch_size"], gemma["config"]["sequence_length"], gemma["config"]["lora_rank"]) == (8, 128, 4)
    assert gemma["config"]["dtype"] == "bfloat16" and gemma["config"]["generate"]["batch_sizes"] == [32, 1]
    assert gemma["config"]["generate"]["max_length"] == 50 and gemma["config"]["backbone"]["hidden_dim"] == 3072
    # one epoch holds keras.io's window: 101 steps, the first excluded
    assert planned["bert", "jax"]["run"]["train_samples"] == 101 * 32
    assert planned["gemma", "jax"]["run"]["train_samples"] == 101 * 8


def gemma_params(backbone: dict, lora_rank: int) -> int:
    """GemmaCausalLM's parameter count with LoRA on the query and value projections, counted from KerasHub's
    layer shapes: tied embedding, per layer q/k/v/o einsums, a gated feed-forward of intermediate_dim / 2 and two
    RMS norms, a final norm; LoRA adds A (heads, hidden, rank) and B (rank, head_dim) to q and v."""
    h, hd, nq, nkv = backbone["hidden_dim"], backbone["head_dim"], backbone["num_query_heads"], \
        backbone["num_key_value_heads"]
    ffw = backbone["intermediate_dim"] // 2
    layer = h * hd * (2 * nq + 2 * nkv) + 3 * h * ffw + 2 * h
    lora = (nq * h * lora_rank + lora_rank * hd) + (nkv * h * lora_rank + lora_rank * hd)
    return backbone["vocabulary_size"] * h + backbone["num_layers"] * (layer + lora) + h


def test_gemma_7b_is_counted_by_the_formula_that_gives_keras_hubs_count_at_small(matrix):
    """Gemma 7B does not fit a CPU test (17 GB in bfloat16); the formula that reproduces KerasHub's own count for
    the small configuration (checked against KerasHub in every environment below) gives keras-io's."""
    small, big = matrix.models["gemma"].configs["small"], matrix.models["gemma"].configs["keras-io"]
    assert gemma_params(small.backbone, small.lora_rank) == small.expected_params == 412800
    assert gemma_params(big.backbone, 0) == 8537680896  # gemma_7b_en's own count, without LoRA
    assert gemma_params(big.backbone, big.lora_rank) == big.expected_params


def mistral_params(backbone: dict, lora_rank: int) -> int:
    """MistralCausalLM's count from KerasHub's layer shapes: an untied input embedding and output layer, per layer
    q/k/v/o (head_dim = hidden / query heads), a gated MLP of intermediate_dim and two RMS norms, a final norm;
    LoRA adds A (hidden, heads, rank) and B (rank, head_dim) to q and v."""
    h, nq, nkv = backbone["hidden_dim"], backbone["num_query_heads"], backbone["num_key_value_heads"]
    hd = h // nq
    layer = h * hd * (2 * nq + 2 * nkv) + 3 * h * backbone["intermediate_dim"] + 2 * h
    lora = (h * nq * lora_rank + lora_rank * hd) + (h * nkv * lora_rank + lora_rank * hd)
    return 2 * backbone["vocabulary_size"] * h + backbone["num_layers"] * (layer + lora) + h


def test_mistral_7b_is_counted_by_the_formula_that_gives_keras_hubs_count_at_small(matrix):
    small, big = matrix.models["mistral"].configs["small"], matrix.models["mistral"].configs["keras-io"]
    assert mistral_params(small.backbone, small.lora_rank) == small.expected_params == 540800
    assert mistral_params(big.backbone, 0) == 7241732096  # Mistral 7B's published count, without LoRA
    assert mistral_params(big.backbone, big.lora_rank) == big.expected_params


def test_the_flop_count_of_a_suite_cell_is_its_configurations_and_not_part_of_its_hash(matrix, monkeypatch):
    """The share of peak needs a suite cell's work: counted for the configuration the cell runs (LoRA's step is 2x
    forward, full training's 3x); a better count later is not a new experiment."""
    small = specs(matrix, "smoke")
    big = specs(matrix, "keras-io")
    bert, gemma = small["bert", "jax"]["model"], big["gemma", "jax"]["model"]
    assert bert["train_flop_per_sample"] == 3 * bert["flop_per_sample"] and "hub_flops" in bert["flop_method"]
    assert gemma["train_flop_per_sample"] == 2 * gemma["flop_per_sample"]
    # Gemma 7B at sequence 128: about 2 x 8.5e9 parameters x 128 tokens forward, less the embedding's gather
    assert 1.5e12 < gemma["flop_per_sample"] < 2.5e12
    assert big["bert", "jax"]["model"]["flop_per_sample"] > 100 * bert["flop_per_sample"]
    cell = plan(matrix, Selection(profile="smoke", models=["bert"], backends=["jax"]))[0][0]
    spec = worker_spec(matrix, cell, "synthetic")
    monkeypatch.setitem(hub_flops.FORMULAS, "BertBackbone", lambda cfg: 2 * hub_flops.bert(cfg))  # a recount
    recounted = worker_spec(matrix, cell, "synthetic")
    assert recounted["model"]["flop_per_sample"] == 2 * spec["model"]["flop_per_sample"]
    assert recounted["spec_hash"] == spec["spec_hash"]
    monkeypatch.delitem(hub_flops.FORMULAS, "BertBackbone")  # an architecture without a formula: no share of peak
    assert worker_spec(matrix, cell, "synthetic")["model"]["flop_per_sample"] is None


def test_the_dry_run_names_each_suite_configuration(tmp_path):
    proc = subprocess.run(["./kbm", "--profile", "keras-io", "--dry-run", "--results", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "12 cells" in proc.stdout
    assert "gemma: configuration keras-io:" in proc.stdout and "LoRA rank 4" in proc.stdout
    assert "sequence 512" in proc.stdout and "bfloat16" in proc.stdout


def test_a_configuration_is_part_of_the_work_so_small_never_ranks_with_keras_io(matrix):
    small = specs(matrix, "smoke", ["bert"])["bert", "jax"]["model"]
    big = specs(matrix, "keras-io", ["bert"])["bert", "jax"]["model"]
    assert small["config_id"].startswith("small:") and big["config_id"].startswith("keras-io:")
    work = {"train_samples": 256, "val_samples": 128, "batch_size": 16, "epochs": 3, "data": "synthetic"}
    assert work_key(dict(work, config=small["config_id"])) != work_key(dict(work, config=big["config_id"]))
    assert "configuration small:" in describe(dict(work, config=small["config_id"]))


def test_the_default_matrix_keeps_its_five_models_and_their_specs(matrix):
    cells, _ = plan(matrix, Selection(profile="quick"))
    assert not {c.model for c in cells} & set(SUITE)  # opt-in: named, or the keras-io profile
    spec = worker_spec(matrix, cells[0], "real")
    assert not {"config", "config_id", "suite", "configs", "opt_in"} & set(spec["model"])


def test_a_profile_naming_a_configuration_a_model_lacks_is_refused_with_its_line(tmp_path):
    from runner.matrix import MatrixError, load_matrix

    text = (REPO_ROOT / "matrix.yaml").read_text().replace("    config: keras-io\n", "    config: huge\n", 1)
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    with pytest.raises(MatrixError, match="no configuration 'huge'"):
        load_matrix(path)


def test_the_mixed_bf16_variant_applies_to_the_keras3_backends_anywhere(matrix):
    variant = matrix.variants["mixed-bf16"]
    assert variant.mixed_precision == "mixed_bfloat16" and variant.changes_numerics is True
    assert matrix.variant_misfit("mixed-bf16", "jax", "keras3-jax") is None
    assert matrix.variant_misfit("mixed-bf16", "theano", "keras2017-theano") is not None


def suite_result(backend: str, config: str, fit_ms: float, device: str | None = None) -> CellResult:
    """A suite cell's result through the contract (tests/results_factory.py), with its suite section."""
    raw = make_result("bert", backend, batch_size=32)
    raw["work"]["config"] = f"{config}:0123abcd"
    body = load_matrix(REPO_ROOT / "matrix.yaml").models["bert"].configs[config].model_dump()
    forward, step = hub_flops.count("BertBackbone", body)
    raw["suite"] = {"suite": "keras-hub", "task": "text_classifier", "keras_hub": "0.32.0", "weights": "random",
                    "classes": {"backbone": "BertBackbone", "task": "BertTextClassifier"}, "config": body,
                    "flop_per_sample": forward, "train_flop_per_sample": step,
                    "config_name": config, "keras_io_fit": {"ms_per_step": fit_ms, "steps": 100, "window": 100}}
    if device:
        raw["host"]["gpu"] = {"available": True, "used": True, "devices": [device]}
    return CellResult.model_validate(raw)


def test_keras_io_figures_stand_only_beside_its_own_configuration_with_the_hardware_named():
    reference = load_keras_io()
    assert reference.hardware.device.startswith("NVIDIA A100 40GB")
    assert reference.figures["bert"][0].ms == {"tensorflow": 214.49, "jax": 222.37, "torch": 808.68}
    small = "\n".join(suite_lines([suite_result("jax", "small", 40.0)], reference))
    assert "configuration small:0123abcd" in small and "214.49" not in small
    assert "for its `keras-io` configuration only" in small
    big = "\n".join(suite_lines([suite_result("jax", "keras-io", 200.0, "NVIDIA H200")], reference))
    assert "| fit (batch 32) | jax | 222.37 | 200.00 | 0.90 |" in big
    assert "keras.io ran one NVIDIA A100 40GB" in big and "these cells ran on NVIDIA H200" in big
    assert "benchmarks.md" in big  # the source, with the figures
    # keras.io's window as a share of the H200's dense FP32 peak: BERT-base's training step x 32 in 0.2 s
    step = hub_flops.count("BertBackbone", load_matrix(REPO_ROOT / "matrix.yaml").models["bert"]
                           .configs["keras-io"].model_dump())[1]
    share = step * 32 / 0.2 / (gpu_peak_tflops("NVIDIA H200", "float32") * 1e12)
    assert f"| 200.0 | {fmt.share(share)} |" in big and 0.5 < share < 1  # 46 of the 67 TFLOP/s
    page = lines_html(suite_lines([suite_result("jax", "keras-io", 200.0, "NVIDIA H200")], reference))
    assert "<td>222.37</td><td>200.00</td>" in page and page.count("<table>") == 2  # index.html, too


# -- the real environments -----------------------------------------------------------------------------------------

KERAS_HUB_COUNTS = textwrap.dedent("""
    import json, sys
    import keras_hub
    from models.hub import build_task
    models = json.loads(sys.argv[1])
    out = {}
    for name, model in models.items():
        task = build_task(model["keras_hub"], model["config"])
        if model["config"].get("lora_rank"):
            task.backbone.enable_lora(rank=model["config"]["lora_rank"])
        out[name] = task.count_params()
    try:
        import tensorflow  # noqa: F401
        out["tensorflow"] = True
    except ImportError:
        out["tensorflow"] = False
    out["keras_hub"] = keras_hub.__version__
    print(json.dumps(out))
""")


@pytest.mark.parametrize("backend", list(KERAS3))
def test_keras_hub_counts_the_small_configurations_as_matrix_yaml_and_tensorflow_stays_out(matrix, prepared, backend):
    """KerasHub's own count_params for each small configuration (LoRA enabled for Gemma) is matrix.yaml's
    expected_params, which every suite cell checks its built model against; `import tensorflow` fails in the JAX and
    PyTorch environments (KerasHub is installed without its tensorflow-text dependency)."""
    env = prepared(KERAS3[backend])
    models = {m: {"keras_hub": matrix.models[m].keras_hub.model_dump(),
                  "config": matrix.models[m].configs["small"].model_dump()} for m in SUITE}
    proc = subprocess.run([f"{env.location}/bin/python", "-c", KERAS_HUB_COUNTS, json.dumps(models)],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                          env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {m: out[m] for m in SUITE} == {m: models[m]["config"]["expected_params"] for m in SUITE}
    assert out["tensorflow"] is (backend == "tensorflow")
    assert out["keras_hub"] == matrix.environments[KERAS3[backend]].pins["keras-hub"]


def test_the_flop_formulas_agree_with_xlas_cost_analysis_of_the_real_models(matrix, prepared, tmp_path):
    """models/hub_flops.py counts the matrix multiplications of each architecture; XLA's cost analysis of the real
    KerasHub model (forward, and the gradient of the loss over the trainable weights: LoRA's adapters only) counts
    every operation. At the small configurations the two agree within a few percent (2026-12-05: forward 1.01-1.09,
    training step 1.05-1.07)."""
    env = prepared("keras3-jax")
    cells, _ = plan(matrix, Selection(profile="smoke", models=list(SUITE), backends=["jax"]))
    for cell in cells:
        spec = worker_spec(matrix, cell, "synthetic")
        spec_path, out = tmp_path / f"{cell.model}.spec.json", tmp_path / f"{cell.model}.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run([f"{env.location}/bin/python", "-m", "models.probe_model", str(out), "--suite",
                               cell.model, str(spec_path)], capture_output=True, text=True, timeout=600,
                              cwd=REPO_ROOT, env={**os.environ, "KERAS_BACKEND": "jax"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        xla = json.loads(out.read_text())
        assert xla["params"] == spec["model"]["expected_params"], xla
        assert 0.95 < xla["flop_per_sample"] / spec["model"]["flop_per_sample"] < 1.15, (cell.model, xla)
        assert 0.95 < xla["train_step_flop_per_sample"] / spec["model"]["train_flop_per_sample"] < 1.15, (
            cell.model, xla)


def test_the_suite_trains_predicts_and_generates_at_smoke_on_every_keras3_backend(tmp_path, keras_home, prepared):
    for env in KERAS3.values():
        prepared(env)
    args = ["--profile", "smoke", "--no-history", "--no-report", *[a for m in SUITE for a in ("--model", m)]]
    proc = run_runner(args, keras_home, tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [r for _, r in iter_results(the_run(tmp_path / "results"))]
    assert {(r.cell.model, r.cell.backend) for r in results} == {(m, b) for m in SUITE for b in KERAS3}
    for r in results:
        assert r.status is Status.ok, (r.cell_id, r.error)
        assert not [w for w in r.warnings if "parameter count" in w or "generate" in w], r.warnings
        assert r.data.source == "synthetic" and r.work.config.startswith("small:")
        assert r.suite.weights == "random" and r.suite.keras_hub == r.versions["keras_hub"]
        assert r.suite.classes["backbone"].endswith("Backbone") and r.suite.train_flop_per_sample > 0
        assert r.suite.keras_io_fit.ms_per_step > 0 and r.suite.keras_io_fit.steps >= 1
        assert r.inference.latency_of().p50_ms > 0 and r.memory.peak_rss_mb > 0
        if r.cell.model in ("gemma", "mistral"):
            assert r.suite.trainable_params < r.params / 10  # LoRA: the backbone frozen but its adapters
            assert [g.batch_size for g in r.suite.generate.runs] == [8, 1]
            runs = r.suite.generate.runs
            assert all(g.time_to_first_token_ms > 0 for g in runs)
            # 16 tokens take longer than the first: the prompt was 8 tokens, the rest generated
            assert sum(g.generate_call_ms for g in runs) > sum(g.time_to_first_token_ms for g in runs)
        else:
            assert r.suite.generate is None
