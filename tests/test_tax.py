"""The Keras tax (reports/tax.py): best Keras setting / best native setting per test and framework, with an
interval, a tie where the intervals overlap, and only for cells of the same work; rendered in both reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.results import CellResult
from reports import fmt
from reports.build import write_report
from reports.load import load_runs
from reports.tax import parts_text, table_cells, tax_rows
from tests.results_factory import make_result, make_spec, write_run

TWINS = {"torch": "PyTorch (native)", "jax": "JAX (native)", "tensorflow": "TensorFlow (native)"}


def cell(model: str, framework: str, *, native: bool = False, jit: bool = False, steady: list[float],
         variant: str | None = None, repeat: int = 0, **kwargs) -> tuple[dict, dict]:
    """A result of Keras on `framework` or of its twin (`native`), with the jit it resolved."""
    backend = f"{framework}-native" if native else framework
    variant = variant or ("compiled" if jit else "stock")
    result = make_result(model, backend, f"keras3-{framework}", variant=variant, repeat=repeat, steady=steady,
                         **kwargs)
    result["backend"].update(family=framework, driver="native" if native else "keras")
    if native:
        result["backend"]["title"] = TWINS[framework]
    result["settings"]["jit_compile_resolved"] = jit
    return CellResult.model_validate(result).dump(), make_spec(result)


def rows_of(tmp_path: Path, cells: list[tuple[dict, dict]]):
    return tax_rows(load_runs([write_run(tmp_path, cells)]))


def test_the_tax_divides_the_best_keras_setting_by_the_best_native_one_with_a_crosswise_interval(tmp_path):
    (row,) = rows_of(tmp_path, [
        cell("mlp", "torch", steady=[4.0, 4.2, 3.9]),
        cell("mlp", "torch", jit=True, steady=[3.0, 3.2, 3.1]),
        cell("mlp", "torch", native=True, steady=[2.0, 2.1, 1.9]),
        cell("mlp", "torch", native=True, jit=True, steady=[2.5, 2.4, 2.6]),
    ])
    assert row.framework == "PyTorch" and row.model == "mlp"
    assert {s: side.steady_s for s, side in row.sides.items()} == {
        ("keras", False): 4.0, ("keras", True): 3.1, ("native", False): 2.0, ("native", True): 2.5}
    assert row.best("keras").variant == "compiled" and row.best("native").variant == "stock"
    ratio, lo, hi = row.tax
    assert ratio == pytest.approx(3.1 / 2.0)
    assert (lo, hi) == (pytest.approx(3.0 / 2.1), pytest.approx(3.2 / 1.9))  # min-max below 6 steady epochs
    assert not row.tie and row.verdict == "Keras takes 1.55x the framework's time"


def test_overlapping_intervals_are_a_tie_and_repeats_pool_their_steady_epochs(tmp_path):
    (row,) = rows_of(tmp_path, [
        cell("cnn", "tensorflow", steady=[2.0, 2.6], repeat=0), cell("cnn", "tensorflow", steady=[2.2, 2.4], repeat=1),
        cell("cnn", "tensorflow", native=True, steady=[2.3, 2.5], repeat=0),
        cell("cnn", "tensorflow", native=True, steady=[2.1, 2.7], repeat=1),
    ])
    keras = row.best("keras")
    assert keras.repeats == 2 and (keras.lo, keras.hi) == (2.0, 2.6)  # four steady epochs from two processes
    assert row.tie and row.verdict.startswith("tie: the intervals overlap")
    ratio, lo, hi = row.tax
    assert lo < 1 < hi


def test_only_the_same_work_is_divided_and_a_missing_side_is_said(tmp_path):
    rows = rows_of(tmp_path, [
        cell("mlp", "jax", jit=True, steady=[1.0, 1.1], train_samples=60000),
        cell("mlp", "jax", native=True, jit=True, steady=[0.5, 0.6], train_samples=6000),
    ])
    assert len(rows) == 2 and all(r.tax is None for r in rows)
    by_work = {r.work_text.split(" train")[0]: r for r in rows}
    assert by_work["60,000"].verdict == "no native cell of this work ran: no tax"
    assert by_work["6,000"].verdict == "no Keras cell of this work ran: no tax"


def test_variants_that_change_the_numerics_do_not_count_and_keras_may_win(tmp_path):
    (row,) = rows_of(tmp_path, [
        cell("hrnn", "jax", jit=True, steady=[1.0, 1.1]),
        cell("hrnn", "jax", jit=True, steady=[0.1, 0.1], variant="faithful-2017", numerics=True),
        cell("hrnn", "jax", native=True, jit=True, steady=[2.0, 2.1]),
    ])
    assert row.best("keras").variant == "compiled"
    assert row.verdict == "Keras is faster: 0.51x the framework's time"


def test_no_twin_in_the_runs_means_no_section(tmp_path):
    run = write_run(tmp_path, [cell("mlp", "torch", steady=[1.0, 1.1]), cell("mlp", "jax", jit=True, steady=[1.0])])
    assert tax_rows(load_runs([run])) == []
    index = write_report([run], tmp_path / "report")
    assert "The Keras tax" not in index.read_text() and "The Keras tax" not in (index.parent / "summary.md").read_text()


def test_both_reports_show_the_tax_with_its_interval_and_say_what_did_not_run(tmp_path):
    run = write_run(tmp_path, [
        cell("mlp", "torch", steady=[4.0, 4.2, 3.9], busy=True),
        cell("mlp", "torch", native=True, steady=[2.0, 2.1, 1.9]),
        cell("mlp", "jax", jit=True, steady=[1.0, 1.1]),
        cell("mlp", "jax", native=True, jit=True, steady=[1.0, 1.05]),
    ])
    index = write_report([run], tmp_path / "report")
    summary = (index.parent / "summary.md").read_text()
    section = summary[summary.index("## The Keras tax"):]
    lines = {line.split(" | ")[1]: line for line in section.splitlines() if line.startswith("| MLP |")}
    assert "2.00x (1.86-2.21)" in lines["PyTorch"] and "Keras takes 2.00x" in lines["PyTorch"]
    assert "not run" in lines["PyTorch"]  # neither side compiled
    assert "- (JAX always jit-compiles)" in lines["JAX"] and "tie" in lines["JAX"]
    assert "Busy machine" in section
    html = index.read_text()
    assert '<section id="tax"><h2>The Keras tax</h2>' in html and "2.00x (1.86-2.21)" in html
    assert '<a href="#tax">The Keras tax</a>' in html  # in the page's navigation


def test_a_host_fed_twin_takes_the_tax_apart_into_step_feeding_and_keras(tmp_path):
    """With the twin fed from the host (variant native-host-feed) beside the twin as it ships: step + feeding +
    Keras = the Keras side, and the host-fed twin never counts as the best native setting."""
    host_fed = cell("mlp", "jax", native=True, jit=True, steady=[1.5, 1.5, 1.5], variant="native-host-feed",
                    cpu_ratio=0.5)
    host_fed[1]["variant"]["twin_feed"] = "host"
    (row,) = rows_of(tmp_path, [
        cell("mlp", "jax", jit=True, steady=[4.0, 4.0, 4.0], cpu_ratio=1.0),
        cell("mlp", "jax", native=True, jit=True, steady=[1.0, 1.0, 1.0]),
        host_fed,
    ])
    assert row.best("native").variant == "compiled" and row.host_fed.variant == "native-host-feed"
    assert row.parts == {"step": 1.0, "feeding": 0.5, "keras": 2.5}
    # steady epochs' process CPU time over the training steps: 256 samples at batch 128 are 2 steps
    assert row.host_fed.cpu_s_per_step == pytest.approx(1.5 * 0.5 / 2)
    assert row.best("keras").cpu_s_per_step == pytest.approx(4.0 / 2)
    assert parts_text(row).startswith(f"step {fmt.seconds(1.0)} + feeding {fmt.seconds(0.5)} + Keras "
                                      f"{fmt.seconds(2.5)} = {fmt.seconds(4.0)}")
    assert parts_text(row) in table_cells(row)
    (row,) = rows_of(tmp_path / "no-host", [cell("mlp", "jax", jit=True, steady=[4.0, 4.0]),
                                            cell("mlp", "jax", native=True, jit=True, steady=[1.0, 1.0])])
    assert row.parts is None


def test_cells_at_different_arithmetic_are_different_work_and_never_divided(tmp_path):
    """A TF32 Keras cell is not divided by a float32 twin: precision is part of the work (common/work.py)."""
    keras = cell("mlp", "torch", steady=[2.0, 2.0])
    keras[0]["work"]["precision"] = "tf32"
    rows = rows_of(tmp_path, [keras, cell("mlp", "torch", native=True, steady=[1.0, 1.0])])
    assert len(rows) == 2 and all(r.tax is None for r in rows)
    assert any("tf32 arithmetic" in r.work_text for r in rows)
