"""The detector against brute force and against series whose answer is known, and the validation tool's figures on
a small seeded sample. Fast: numbers only, no runs."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from history.detect import best_fits, detect_steps, drift, weighted_levels, weights
from history.judge import Rule, analyse
from runner.paths import REPO_ROOT


def brute_level(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The least weighted L1 cost over every candidate level (an optimum lies on a data point)."""
    costs = [(float(np.sum(w * np.abs(y - c))), float(c)) for c in y]
    return min(costs)[1], min(costs)[0]


def test_every_ranges_level_and_cost_are_the_weighted_l1_optimum():
    rng = np.random.default_rng(1)
    y, w = rng.normal(1, 0.2, 9), rng.uniform(0.4, 2.0, 9)
    level, cost = weighted_levels(y, w)
    for left in range(9):
        for right in range(left, 9):
            _, best = brute_level(y[left:right + 1], w[left:right + 1])
            assert cost[left, right] == pytest.approx(best)
            assert float(np.sum(w[left:right + 1] * np.abs(y[left:right + 1] - level[left, right]))) \
                == pytest.approx(best)


def test_the_dynamic_programme_finds_the_least_cost_partition_for_every_k():
    rng = np.random.default_rng(2)
    y, w = rng.normal(1, 0.3, 10), np.ones(10)
    _, cost = weighted_levels(y, w)
    fits = best_fits(cost, kmax=4, min_size=2)
    for k in range(1, 5):
        best = min(sum(cost[a, b - 1] for a, b in zip((0, *cuts), (*cuts, 10), strict=True))
                   for cuts in itertools.combinations(range(2, 9), k - 1)
                   if all(b - a >= 2 for a, b in zip((0, *cuts), (*cuts, 10), strict=True)))
        assert fits[k][0] == pytest.approx(best)


def test_a_clear_step_is_found_where_it_is_and_a_flat_series_has_none():
    rng = np.random.default_rng(3)
    y = np.r_[rng.normal(1.0, 0.02, 12), rng.normal(1.12, 0.02, 8)]
    fit = detect_steps(y)
    assert [s.index for s in fit.steps] == [12] and fit.steps[0].change == pytest.approx(0.12, abs=0.03)
    assert detect_steps(rng.normal(1.0, 0.02, 20)).steps == []


def test_one_odd_night_is_an_outlier_not_a_step():
    y = np.r_[np.full(9, 1.0), 1.4, np.full(9, 1.0), 1.4] * (1 + 0.01 * np.random.default_rng(4).standard_normal(20))
    assert detect_steps(y).steps == []


def test_a_step_below_the_threshold_or_inside_the_noise_is_not_reported():
    rng = np.random.default_rng(5)
    small = np.r_[rng.normal(1.0, 0.002, 10), rng.normal(1.03, 0.002, 10)]  # 3 %, far beyond its tiny noise
    assert detect_steps(small).steps == [] and [s.index for s in detect_steps(small, threshold=0.02).steps] == [10]
    noisy = np.r_[rng.normal(1.0, 0.3, 10), rng.normal(1.1, 0.3, 10)]  # 10 %, a third of one night's noise
    assert detect_steps(noisy).steps == []


def test_a_point_whose_repeats_disagree_counts_less_but_never_outweighs_the_rest():
    y = np.r_[np.full(6, 1.0), 1.3, 1.3, np.full(6, 1.0)] + np.tile([0.005, -0.005], 7)
    agree, disagree = np.full(14, 0.005), np.r_[np.full(6, 0.005), 0.5, 0.5, np.full(6, 0.005)]
    assert list(weights(y, disagree)) == pytest.approx([1] * 6 + [1 / 3] * 2 + [1] * 6)  # clipped at 1/3
    lucky = weights(y, np.r_[np.full(7, 0.005), 1e-9, np.full(6, 0.005)])  # repeats that happened to agree
    assert 1 < lucky[7] < 1.2  # the noise between nights still counts
    sure, unsure = detect_steps(y, agree), detect_steps(y, disagree)
    assert [s.index for s in sure.steps] == [s.index for s in unsure.steps] == [6, 8]
    assert unsure.steps[0].z < sure.steps[0].z / 2


def test_drift_is_conclusive_on_a_ramp_and_not_on_noise():
    rng = np.random.default_rng(6)
    ramp = drift(np.linspace(1.0, 1.2, 10) * (1 + 0.01 * rng.standard_normal(10)))
    assert ramp.conclusive_sign == 1 and ramp.total(10) == pytest.approx(0.2 / 1.1, rel=0.25)
    assert drift(rng.normal(1, 0.05, 10)).conclusive_sign == 0
    assert drift([1.0, 1.1, 1.2]) is None  # too few points to say


def test_check_fails_on_a_new_regression_and_not_on_an_old_fixed_or_improving_one():
    rng = np.random.default_rng(7)
    base = rng.normal(1.0, 0.01, 30)
    slow = Rule(worse=1)
    new = base.copy()
    new[24:] *= 1.2
    assert [f.kind for f in analyse(new, None, slow).regressions] == ["step"]
    old = base.copy()
    old[5:] *= 1.2  # landed 25 runs ago: the baseline now
    assert analyse(old, None, slow).regressions == [] and len(analyse(old, None, slow).fit.steps) == 1
    fixed = base.copy()
    fixed[22:26] *= 1.2  # slower for four runs, then back
    assert analyse(fixed, None, slow).regressions == []
    faster = base.copy()
    faster[24:] *= 0.8
    assert analyse(faster, None, slow).regressions == []
    accuracy = np.r_[np.full(20, 0.98), np.full(6, 0.95)]  # deterministic: 3 points lost
    assert len(analyse(accuracy, None, Rule(worse=-1, relative=False, threshold=0.01)).regressions) == 1


def test_the_validation_tool_measures_rates_on_seeded_series():
    proc = subprocess.run([sys.executable, "-m", "history.validate", "--series", "60", "--after", "5"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" | ") for line in proc.stdout.splitlines()[2:]]
    assert len(rows) == 8  # 4 CVs x 2 noise models
    by = {(r[0].strip("| "), r[1]): [float(c.strip(" |%")) for c in r[3:]] for r in rows}
    assert by[("2%", "gaussian")][0] > 80  # a 10 % step on a quiet machine: found within five nights
    assert all(v[2] < 10 for v in by.values())  # an unchanged series rarely fails the check
    again = subprocess.run([sys.executable, "-m", "history.validate", "--series", "60", "--after", "5"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.stdout == proc.stdout  # seeded


def test_two_slow_nights_on_a_busy_machine_are_not_yet_a_regression():
    """The runner measured those runs as busy: they count a third each, so two of them do not confirm a step; two
    quiet nights at the new level do."""
    rng = np.random.default_rng(8)
    y = np.r_[rng.normal(1, 0.02, 12), 1.12, 1.12]
    assert len(analyse(y, None, Rule(worse=1)).regressions) == 1
    assert analyse(y, None, Rule(worse=1), busy=[False] * 12 + [True] * 2).regressions == []
    confirmed = np.r_[y, 1.12, 1.12]
    assert len(analyse(confirmed, None, Rule(worse=1), busy=[False] * 12 + [True] * 2 + [False] * 2).regressions) == 1


def test_a_step_into_busy_runs_is_listed_not_judged():
    """The machine, not the code, may have changed: most runs after the step were busy."""
    rng = np.random.default_rng(9)
    y = np.r_[rng.normal(1, 0.02, 10), rng.normal(1.5, 0.02, 6)]
    quiet = analyse(y, None, Rule(worse=1))
    busy = analyse(y, None, Rule(worse=1), busy=[False] * 10 + [True] * 6)
    assert len(quiet.regressions) == 1 and not quiet.findings[0].busy
    assert busy.regressions == [] and [(f.kind, f.index, f.busy) for f in busy.findings] == [("step", 10, True)]
