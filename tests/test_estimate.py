"""Planned time from matrix.yaml's recorded seconds per step: `--dry-run` prints it, `--budget-s` keeps a sweep
inside the time a GPU machine is lent for, each backend's default variant first."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner.cells import Selection, plan
from runner.estimate import cell_seconds, describe, fit_budget, planned_time
from runner.matrix import MatrixError, load_matrix
from runner.paths import REPO_ROOT

GPU = Selection(backends=("jax@keras3", "torch@keras3"), profile="gpu")


def test_the_gpu_profile_fits_about_six_minutes_by_the_h200_figures(matrix):
    """The 12 cells of `make gpu-check`; the hierarchical RNN has a figure for Keras-on-JAX only."""
    cells, _ = plan(matrix, GPU)
    assert len(cells) == 12 and {c.variant for c in cells if c.backend == "jax"} == {"stock"}
    by_id = {c.id: cell_seconds(matrix, c, gpu=True) for c in cells}
    mlp_jax = next(t for i, t in by_id.items() if i.startswith("mlp.jax.keras3-jax"))
    assert mlp_jax == pytest.approx(5 * 469 * 0.00184 + 25)
    hrnn_jax = next(t for i, t in by_id.items() if i.startswith("hrnn.jax.keras3-jax"))
    assert hrnn_jax == pytest.approx(4 * 200 * 0.037 + 25)  # 6,400 images of batch 32
    total = planned_time(matrix, cells, GPU)
    assert total.known == 9 and len(total.unknown) == 3 and 250 < total.seconds < 330  # + the 3 RNN cells: ~6 min
    line = describe(total)
    assert line.startswith(f"planned time: about {total.seconds:.0f} s") and "H200" in line and "3 more without" in line


def test_no_figure_for_a_cpu_is_said_not_guessed(matrix):
    sel = Selection(backends=("jax@keras3",), models=("mlp",))
    assert describe(planned_time(matrix, plan(matrix, sel)[0], sel)).startswith("planned time: none recorded")


def test_a_budget_keeps_the_defaults_first_and_drops_whole_variants(matrix):
    sel = Selection(backends=("jax@keras3", "torch@keras3"), profile="gpu", models=("mlp", "cnn"), variants=("all",))
    cells, _ = plan(matrix, sel)
    kept, notes, unknown = fit_budget(matrix, cells, sel, 200)
    assert unknown == []  # the MLP and the CNN have figures on every backend
    assert {(c.backend, c.variant) for c in kept} <= {("jax", "stock"), ("jax-native", "stock"),
                                                      ("torch", "torch-channels-first"),
                                                      ("torch-native", "torch-channels-first")}
    assert ("jax", "stock") in {(c.backend, c.variant) for c in kept}
    assert sum(cell_seconds(matrix, c, True) for c in kept) <= 200
    assert any("variant mixed-float16 of jax" in n and "would not fit in --budget-s 200" in n for n in notes)
    # each variant all or nothing: every model of a kept variant
    assert all({c.model for c in kept if (c.backend, c.variant) == key} == {"mlp", "cnn"}
               for key in {(c.backend, c.variant) for c in kept})
    assert fit_budget(matrix, cells, sel, 1e9)[0] == cells
    with_rnn = Selection(backends=("torch@keras3",), profile="gpu", models=("hrnn",))
    kept, _, unknown = fit_budget(matrix, plan(matrix, with_rnn)[0], with_rnn, 1)
    assert len(kept) == 2 and len(unknown) == 2  # no figure: kept, said apart, nothing counted


def test_a_budget_nothing_fits_exits_2_and_a_bad_one_too():
    for budget, words in (("1", "no variant's cells fit"), ("0", "must be more than 0 seconds")):
        proc = subprocess.run([sys.executable, "-m", "runner", "sweep", "--profile", "gpu", "--only", "jax@keras3",
                               "--budget-s", budget, "--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert proc.returncode == 2 and words in " ".join(proc.stderr.split()), proc.stderr


def test_a_figure_for_an_unknown_backend_or_model_names_its_line(tmp_path):
    real = (REPO_ROOT / "matrix.yaml").read_text()
    old = "      torch: {mlp: 0.00758, cnn: 0.0102}"
    path = tmp_path / "matrix.yaml"
    path.write_text(real.replace(old, "      torch: {mlp: 0.00758, cnnn: 0.0102}"))
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    line = real[: real.index(old)].count("\n") + 1
    assert f"matrix.yaml:{line}: step_seconds.gpu.backends.torch.cnnn: unknown model 'cnnn'" in str(err.value)
