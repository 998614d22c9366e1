"""Statistics over raw per-epoch samples: the median and a distribution-free interval, never a bare mean.

The first epoch of a process carries graph building and compilation, so "steady" means the epochs after it. Repeats
are separate processes; their steady epochs are pooled. The 95 % interval for the median comes from order
statistics (no normality assumed); it needs at least 6 samples, below that the report shows min-max and says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NOISY_CV = 0.05  # a cell whose steady epochs vary more than this is flagged as noisy
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Spread:
    median: float
    lo: float
    hi: float
    kind: str  # "95% CI", "min-max" or "single" (one sample: no interval)
    n: int
    cv: float | None  # coefficient of variation (sample std / mean); None below 2 samples

    @property
    def noisy(self) -> bool:
        return self.cv is not None and self.cv > NOISY_CV

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width relative to the median: a scale-free noise figure for comparisons."""
        return (self.hi - self.lo) / 2 / self.median if self.median else 0.0


def _binom_cdf(k: int, n: int) -> float:
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int] | None:
    """1-based ranks (j, n+1-j) of the order statistics bracketing the median with at least `level` coverage."""
    alpha = (1 - level) / 2
    j = 0
    while j + 1 <= n // 2 and _binom_cdf(j, n) <= alpha:
        j += 1
    return (j, n + 1 - j) if j >= 1 else None


def spread(values: Sequence[float]) -> Spread | None:
    xs = sorted(float(v) for v in values)
    n = len(xs)
    if not n:
        return None
    med = statistics.median(xs)
    cv = statistics.stdev(xs) / statistics.fmean(xs) if n >= 2 and statistics.fmean(xs) > 0 else None
    if n == 1:
        return Spread(med, med, med, "single", 1, None)
    ranks = median_ci_ranks(n)
    if ranks is None:
        return Spread(med, xs[0], xs[-1], "min-max", n, cv)
    j, k = ranks
    return Spread(med, xs[j - 1], xs[k - 1], "95% CI", n, cv)


def time_to_target(wall_s: Sequence[float], val_accuracy: Sequence[float | None], target: float) -> float | None:
    """DAWNBench-style: training wall time (validation passes included) until an epoch first reaches `target`."""
    total = 0.0
    for wall, acc in zip(wall_s, val_accuracy, strict=True):
        total += wall
        if acc is not None and acc >= target:
            return total
    return None


# Student's t, two-sided 95 % (0.975 quantile), by degrees of freedom; beyond 30 the normal's 1.96 is within 4 %.
# A fractional (Welch) df rounds down: the wider, conservative interval.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: float) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom {df} < 1")
    k = int(math.floor(df))
    return _T975[k - 1] if k <= len(_T975) else 1.96


@dataclass(frozen=True)
class Interval:
    estimate: float
    lo: float
    hi: float
    n: int

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width relative to the estimate (the precision a benchmark can claim)."""
        return (self.hi - self.lo) / 2 / self.estimate if self.estimate else math.inf


def mean_interval(values: Sequence[float]) -> Interval | None:
    """The mean with its 95 % t-interval (needs 2 or more values; the values are assumed independent, e.g. one
    per interleaved round)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n < 2:
        return None
    mean = statistics.fmean(xs)
    half = t975(n - 1) * statistics.stdev(xs) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def between_run_cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation of per-process figures (one per repeat): the spread that decides whether two
    runs differ, as opposed to the spread of epochs inside one process."""
    xs = [float(v) for v in values]
    if len(xs) < 2 or statistics.fmean(xs) <= 0:
        return None
    return statistics.stdev(xs) / statistics.fmean(xs)


@dataclass(frozen=True)
class GoalCheck:
    interval: Interval | None
    precise: bool  # the interval's half-width is within the goal: more rounds would not change the answer much
    met: bool | None  # True: the whole interval is at or below 1 + goal; False: all above; None: undecided
    message: str


def ratio_goal(ratios: Sequence[float], goal: float = 0.01) -> GoalCheck:
    """Is a cost ratio (harness / bare, one per interleaved round) within 1 + goal? The mean of per-round ratios
    with its 95 % t-interval; a verdict only where the interval says so, and plain words when it is too wide."""
    iv = mean_interval(ratios)
    if iv is None:
        return GoalCheck(None, False, None, f"{len(ratios)} round(s): at least 2 are needed for an interval")
    precise = iv.rel_halfwidth <= goal
    limit = 1 + goal
    met = True if iv.hi <= limit else False if iv.lo > limit else None
    text = f"ratio {iv.estimate:.4f}, 95% CI {iv.lo:.4f}-{iv.hi:.4f} (±{iv.rel_halfwidth:.2%}) over {iv.n} rounds"
    if met is True:
        text += f": goal <= {limit:g} met"
    elif met is False:
        text += f": goal <= {limit:g} NOT met"
    elif not precise:
        text += (f": the interval is wider than the {goal:.0%} goal, so this machine cannot show whether the "
                 f"goal is met (more rounds or a quieter machine)")
    else:
        text += f": undecided, the interval straddles {limit:g}"
    return GoalCheck(iv, precise, met, text)
