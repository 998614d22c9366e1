"""Rankings that never group two figures whose own intervals are apart, one column order everywhere, and the answer
first (issue 33).

The fresh run's MLP row (tests/results_factory.FRESH_MLP) is the case that started it: overlaps chained from JAX's
0.96-1.21 s to PyTorch's 2.16-3.91 s and put 0.986 s and 3.43 s in one first place. Results are format-exact and
pass the contract; the report and the runner's closing lines are the real ones.
"""

from __future__ import annotations

import io
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from common.display import KERAS3, NATIVE, STACKS_2017, display_order, matrix_order
from common.ranking import BETWEEN, WITHIN, Entry, overlap, rank, ranking_spread
from common.results import iter_results
from reports.article import load_article
from reports.build import write_report
from reports.content import assemble
from reports.load import load_runs
from runner.paths import REPO_ROOT
from runner.summary import print_summary, rankings
from tests.results_factory import fresh_matrix_run, fresh_mlp_run

KERAS3_FIRST = ["TensorFlow", "JAX", "PyTorch", "TensorFlow (native)", "JAX (native)", "PyTorch (native)"]


# -- the ranking ----------------------------------------------------------------------------------------------------
@st.composite
def entries(draw) -> list[Entry]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        lo = draw(st.floats(0.01, 100, allow_nan=False))
        width = draw(st.floats(0, 50, allow_nan=False))
        median = draw(st.floats(lo, lo + width, allow_nan=False))
        out.append(Entry(f"e{i}", median, lo, lo + width))
    return out


@settings(database=None, max_examples=300, deadline=None)
@given(entries())
def test_no_two_entries_with_disjoint_intervals_share_a_letter(es):
    ranked = rank(es)
    assert [r.entry.median for r in ranked] == sorted(e.median for e in es)
    for i, a in enumerate(ranked):
        assert a.letters, a  # every entry is in a group
        for b in ranked[i + 1:]:
            shared = set(a.letters) & set(b.letters)
            assert bool(shared) == overlap(a.entry, b.entry), (a, b)  # apart: no letter; overlapping: one at least
    best = ranked[0]
    assert "a" in best.letters
    assert {r.label for r in ranked if r.first} == {r.label for r in ranked if overlap(r.entry, best.entry)}


def test_the_fresh_runs_mlp_row_puts_jax_first_and_pytorch_apart(tmp_path):
    """The recorded row: JAX first, with only what overlaps JAX's own interval; PyTorch's 3.43 s is not bold."""
    report = assemble("fresh", load_runs([fresh_mlp_run(tmp_path)]), load_article(), tmp_path / "out")
    row, = [r for r in report.glance.rows if r.model == "mlp"]
    assert row.best == {"JAX", "JAX (native)"}  # 0.88-1.63 overlaps 0.96-1.21; nothing else does
    letters = {r.label: r.letters for r in row.ranked}
    assert letters["JAX"] == "a" and "a" not in letters["PyTorch"] and "a" not in letters["TensorFlow"]
    assert row.basis == WITHIN
    assert report.verdicts[0].line == ("MNIST MLP, 30,000 samples: JAX fastest, 0.986 s/epoch (JAX (native) within "
                                       "its interval); PyTorch 3.5x slower; the Keras tax on PyTorch 2.4x")


def test_three_repeats_rank_on_the_between_run_interval():
    """Below three processes the interval is the epochs' spread, labelled so; from three, the processes' spread."""
    epochs = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2]
    sp, basis = ranking_spread([1.0], epochs)
    assert basis == WITHIN and (sp.lo, sp.hi) == (0.9, 1.2)
    sp, basis = ranking_spread([1.0, 1.3, 1.6], epochs)
    assert basis == BETWEEN.format(n=3) and (sp.lo, sp.hi) == (1.0, 1.6) and sp.kind == "min-max"


# -- the runner's closing lines -------------------------------------------------------------------------------------
def test_the_closing_lines_rank_like_the_report_and_fit_100_columns(tmp_path):
    results = [r for _, r in iter_results(fresh_mlp_run(tmp_path))]
    (heading, text), = rankings(results)
    assert heading == f"mlp (steady s/epoch; intervals: {WITHIN})"
    assert text.startswith("1. jax 0.986 s (a) · 1. jax-native 1.27 s (ab)"), text
    assert re.search(r"\d\. torch 3\.43 s \([b-z]+\)$", text), text
    whole = [r for _, r in iter_results(fresh_matrix_run(tmp_path / "whole"))]  # 31 cells, five rankings
    console = Console(width=100, file=io.StringIO(), color_system=None, force_terminal=False)
    print_summary(console, whole, "run fresh (31 of 31 cells)")
    lines = console.file.getvalue().splitlines()
    assert all(len(line) <= 100 for line in lines), lines
    rows = [line.split()[:2] for line in lines if line.split()[:1] in (["mlp"], ["hrnn"])]
    assert [b for m, b in rows if m == "mlp"] == ["tensorflow", "jax", "torch", "tensorflow-native", "jax-native",
                                                  "torch-native", "tensorflow1", "cntk", "theano", "mxnet"]
    assert lines.index(next(line for line in lines if line.startswith("mlp "))) < lines.index(
        next(line for line in lines if line.startswith("hrnn ")))  # tests in matrix.yaml's order
    start = next(i for i, line in enumerate(lines) if line.startswith("ranking of "))
    for line in lines[start:-2]:  # every entry whole on its line: a heading, or entries joined by " · "
        assert line.startswith(("ranking of ", "  1. ", "  · ")), line
        assert all(re.fullmatch(r"\d+\. \S+( \([^)]*\))? [\d.]+ s \([a-z]+\)", part.strip())
                   for part in line.strip().lstrip("· ").split(" · ")) or line.startswith("ranking of "), line
    assert lines[-2].startswith(f"(intervals: {WITHIN}; same letter")


# -- one column order -----------------------------------------------------------------------------------------------
def test_the_display_order_comes_from_the_matrix(tmp_path):
    order = matrix_order()
    assert {b for b, (g, _) in order.items() if g == KERAS3} == {"tensorflow", "jax", "torch"}
    assert {b for b, (g, _) in order.items() if g == NATIVE} == {"tensorflow-native", "jax-native", "torch-native"}
    assert {"tensorflow1", "cntk", "theano", "mxnet"} <= {b for b, (g, _) in order.items() if g == STACKS_2017}
    assert display_order(["mxnet", "torch-native", "jax", "tensorflow1", "torch", "jax-native", "tensorflow"]) == [
        "tensorflow", "jax", "torch", "jax-native", "torch-native", "tensorflow1", "mxnet"]
    # reorder matrix.yaml's backends: the order follows, twins after their framework's Keras 3 backend
    data = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    data["backends"] = {k: data["backends"][k] for k in ["torch", "jax", *[b for b in data["backends"]
                                                                            if b not in ("torch", "jax")]]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    mine = matrix_order(tmp_path / "m.yaml")
    assert sorted(["jax-native", "torch-native", "jax", "torch"], key=mine.__getitem__) == [
        "torch", "jax", "torch-native", "jax-native"]


def test_every_table_of_the_report_shares_the_order(tmp_path):
    index = write_report([fresh_mlp_run(tmp_path)], tmp_path / "report")
    md = index.with_name("summary.md").read_text()
    glance_head = next(line for line in md.splitlines() if line.startswith("| test |"))
    assert glance_head == "| test | " + " | ".join(KERAS3_FIRST) + " |"
    summary = md[md.index("## MNIST MLP"):]
    rows = [m for m in re.findall(r"^\| \[([^\]]+)\]", summary, flags=re.M)]
    assert rows[:6] == KERAS3_FIRST


# -- the answer first -----------------------------------------------------------------------------------------------
def test_summary_md_answers_within_30_lines_with_one_caveats_box(tmp_path):
    index = write_report([fresh_mlp_run(tmp_path)], tmp_path / "report")
    lines = index.with_name("summary.md").read_text().splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("- **MNIST MLP, 30,000 samples:**"))
    table = [i for i, line in enumerate(lines) if line.startswith("| MNIST MLP |")]
    assert verdict < 5 and table and table[-1] < 30, lines[:30]
    glance = lines[table[0]]
    assert "**0.986** a" in glance and "**1.27** ab" in glance and "**3.43" not in glance  # PyTorch not bold
    boxes = [i for i, line in enumerate(lines) if line.startswith("> **Caveats (")]
    assert len(boxes) == 1 and boxes[0] < 30 and table[-1] < boxes[0]
    box = lines[boxes[0]:lines.index("", boxes[0])]
    assert any(line.startswith("> - NOISY CELLS: 6 cells") for line in box)
    assert any(line.startswith("> - SKIPPED: 3 cells: cifar10: not in the Keras cache") for line in box)
    assert sum(line.startswith("> [!") for line in lines[:boxes[0] + 1]) == 1  # no other box before the answer
    assert "## Caveats in detail" in lines
