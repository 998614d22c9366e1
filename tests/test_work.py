"""Like with like: no "fastest", ranking, tie or ratio across cells that did different work.

The run below is what the quick profile gives the 2017 stacks: a tenth of the samples per epoch, so their
seconds per epoch are smaller although they are slower per sample (the very case that made the report bold
TensorFlow 1.x as fastest). Results are format-exact (tests/results_factory.py) and pass the contract.
"""

from __future__ import annotations

import subprocess
import sys

from common.results import CellResult, iter_results
from reports.article import load_article
from reports.build import write_report
from reports.content import assemble
from reports.load import load_runs
from reports.tables import cores_used
from runner.paths import REPO_ROOT
from runner.summary import rankings
from tests.results_factory import make_result, make_spec, write_run

# Keras 3 backends on 60,000 samples per epoch; the 2017 ones on 6,000, three times slower per sample
KERAS3 = {"jax": [2.0, 2.02, 2.01], "tensorflow": [3.0, 3.02, 3.01]}
STACKS_2017 = {"tensorflow1": [0.6, 0.61, 0.605], "theano": [0.9, 0.91, 0.905]}


def mixed_work_run(tmp_path, name="20261201-000000-mixd"):
    cells = []
    for backend, steady in KERAS3.items():
        r = make_result("mlp", backend, steady=steady, train_samples=60000, val_samples=10000, val_s=0.2,
                        data="real")
        cells.append((r, make_spec(r)))
    for backend, steady in STACKS_2017.items():
        r = make_result("mlp", backend, "keras2017-tf-cntk" if backend == "tensorflow1" else "keras2017-theano",
                        variant="faithful-2017", steady=steady, train_samples=6000, val_samples=1000, val_s=0.02,
                        data="real")
        cells.append((r, make_spec(r)))
    return write_run(tmp_path, cells, name)


def test_the_closing_rankings_never_rank_across_work(tmp_path):
    run = mixed_work_run(tmp_path)
    results = [r for _, r in iter_results(run)]
    headings = dict(rankings(results))
    assert len(headings) == 2  # one ranking per work
    big = next(text for heading, text in headings.items() if "60,000 train" in heading)
    small = next(text for heading, text in headings.items() if "6,000 train" in heading)
    assert "jax" in big and "tensorflow" in big and "tensorflow1" not in big and "theano" not in big
    assert "tensorflow1" in small and "jax" not in small


def test_the_report_bolds_only_within_a_work_and_compares_across_works_per_sample(tmp_path):
    run = mixed_work_run(tmp_path)
    report = assemble("mixed", load_runs([run]), load_article(), tmp_path / "out")
    g = report.glance
    rows = {r.work_text.split(" per epoch")[0]: r for r in g.rows if r.model == "mlp"}
    assert set(rows) == {"60,000 train / 10,000 val", "6,000 train / 1,000 val"}
    assert rows["60,000 train / 10,000 val"].best == {"JAX"}
    assert set(rows["60,000 train / 10,000 val"].values) == {"JAX", "TensorFlow"}
    assert rows["6,000 train / 1,000 val"].best == {"TensorFlow 1.x"}  # the fastest of its own row, only
    # across works, per training sample with the validation pass taken out: JAX, as the samples/s say
    (per_sample,) = g.per_sample
    assert per_sample.best == {"JAX"}
    assert abs(per_sample.values["JAX"] - (2.01 - 0.2) / 60000 * 1e6) < 1e-6
    assert abs(per_sample.values["TensorFlow 1.x"] - (0.605 - 0.02) / 6000 * 1e6) < 1e-6
    assert "training samples/epoch 60,000 vs 6,000" in g.differences["mlp"]
    (section,) = report.sections
    assert section.several_works and len(section.ranking_now) == 2
    assert any(c.title == "DIFFERENT WORK" for c in section.caveats)
    assert any(c.title == "DIFFERENT WORK" for c in report.caveats)


def test_the_written_report_says_the_work_beside_each_row_and_accuracy(tmp_path):
    run = mixed_work_run(tmp_path)
    write_report([run], tmp_path / "out", "mixed")
    md = (tmp_path / "out" / "summary.md").read_text()
    glance = md[md.index("## At a glance"):md.index("## MNIST MLP")]
    rows = [line for line in glance.splitlines() if line.startswith("| MNIST MLP (")]
    per_work = [line for line in rows if "per epoch" in line]
    assert len(per_work) == 2 and all(line.count("**") == 2 for line in per_work)  # one bold figure per work row
    (per_sample,) = [line for line in rows if "per training sample" in line]
    assert per_sample.count("**") == 2
    assert "| MNIST MLP (60,000 train / 10,000 val per epoch" in glance
    assert "Across different work: microseconds per training sample" in glance
    table = md[md.index("| backend | work |"):]
    assert "| 6,000 train / 1,000 val per epoch" in table  # the work beside the accuracy column
    ranking_lines = [line for line in md.splitlines() if line.startswith("- **Ranking now")]
    assert len(ranking_lines) == 2 and all("6,000 train" in line or "60,000 train" in line for line in ranking_lines)


def test_compare_refuses_cells_whose_work_differs_unless_told(tmp_path):
    a = mixed_work_run(tmp_path, "20261201-000000-aaaa")
    b_cells = []
    for backend, steady in KERAS3.items():  # the same cells, on a tenth of the samples
        r = make_result("mlp", backend, steady=[s / 10 for s in steady], train_samples=6000, val_samples=1000,
                        data="real")
        b_cells.append((r, make_spec(r)))
    b = write_run(tmp_path, b_cells, "20261201-000000-bbbb")
    cmd = [sys.executable, "-m", "runner", "compare", str(a), str(b)]
    refused = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "different work" in refused.stderr and "training samples/epoch 60,000 vs 6,000" in refused.stderr
    allowed = subprocess.run([*cmd, "--allow-different-work"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=120)
    assert allowed.returncode in (0, 1) and "DIFFERENT WORK" in allowed.stdout, allowed.stderr


def test_cores_used_swinging_between_epochs_is_flagged_whatever_the_cv():
    """The hierarchical RNN case: the same work on one core, then on two (117, 75, 75 s of CPU in 85.6, 77.0,
    40.9 s of wall)."""
    import pandas as pd

    swung = cores_used(pd.DataFrame({"wall_s": [77.0, 40.9], "cpu_s": [75.0, 75.0]}))
    assert swung["cores_swing"] and swung["cores_lo"] < 1.0 < 1.8 < swung["cores_hi"]
    steady = cores_used(pd.DataFrame({"wall_s": [2.0, 2.1, 2.05], "cpu_s": [3.8, 4.0, 3.9]}))
    assert not steady["cores_swing"] and abs(steady["cores_used"] - 1.9) < 0.01


def test_a_made_result_passes_the_contract():
    assert CellResult.model_validate(make_result("mlp", "jax")).work.train_samples == 256
