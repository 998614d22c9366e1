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
