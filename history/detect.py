"""Steps and drift in one series, each required to pass a relative threshold and the series' own noise.

Steps: asv's model (asv/step_detect.py, after Friedrich et al. 2008 and Yao 1988), implemented afresh. The series is
piecewise constant plus noise; a fit with k segments minimises the weighted L1 distance sum w_i |y_i - mu_seg(i)|
(each level a weighted median, robust to the odd busy night). The penalised "Potts" problem, gamma k + that sum, is
solved exactly for every k at once by dynamic programming (each gamma's solution is one of these), and k is chosen
by asv's information criterion, beta k + ln(floor + sum) with beta = 3 ln(n) / n (asv: 4; Schwarz's criterion for
a Laplace likelihood with a level and a break per segment: 1; 3 chosen by simulation). Every segment holds at least
two points: one odd point is an outlier (a busy neighbour's night), not a step, so a regression shows once two
runs confirm it. Each remaining step must then change the level by at least `threshold` (relative) and be `z` standard
errors away from zero, the error of the difference of two segment medians under the noise the series itself shows
between neighbouring points (`noise`); the weakest failing step is merged away until all pass.
Points are weighted by their total noise (`weights`): between nights, plus what their repeats show; a point from a
run the runner found busy counts a third at most.

Drift: the Theil-Sen slope over the last `window` points of the last segment with its 99.9 % interval (Sen's, from
Kendall's tau); conclusive when the interval excludes zero and the change over the window passes the threshold.
That catches the slow drift no single night shows (asv#932).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BETA_PER_SEGMENT = 3.0  # x ln(n)/n; Schwarz's criterion for a level and a break per segment is 1, asv uses 4
FLOOR = 1e-3  # measurement floor per point, relative to the level: keeps ln() finite on a flat series
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)  # s.e. of a median / s.e. of a mean, Gaussian noise
MAD_TO_SIGMA = 1.4826
DRIFT_Z = 3.29  # 99.9 % two-sided: a drift is judged every night
MIN_DRIFT_POINTS = 6
DEFAULT_Z = 3.0  # with BETA_PER_SEGMENT, chosen with `python -m history.validate` (docs/how-to/history.md)
DEFAULT_THRESHOLD = 0.05
BUSY_WEIGHT = 1 / 3  # a busy run's point: its times are suspect (the runner says so), so it counts a third at most


@dataclass(frozen=True)
class Segment:
    start: int  # first point
    end: int  # one past the last point
    level: float  # weighted median

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Step:
    index: int  # the first point after the step
    before: float
    after: float
    z: float  # the change in standard errors of the difference

    @property
    def change(self) -> float:
        """Relative change of the level (after / before - 1)."""
        return self.after / self.before - 1 if self.before else math.inf

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class Drift:
    start: int  # first point of the window
    slope: float  # per point, in the series' unit
    lo: float
    hi: float
    level: float  # the window's median, for relative figures

    def total(self, points: int) -> float:
        """The relative change the slope makes over `points` points."""
        return self.slope * (points - 1) / self.level if self.level else 0.0

    @property
    def conclusive_sign(self) -> int:
        """+1 rising, -1 falling, 0 when the interval holds zero."""
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0


def weighted_levels(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every range y[l..r]: its weighted median and weighted L1 cost around it ((n, n) arrays; inf for l > r)."""
    n = len(y)
    level, cost = np.full((n, n), np.nan), np.full((n, n), np.inf)
    for left in range(n):
        z, v = y[left:], w[left:]
        m = len(z)
        mask = np.tril(np.ones((m, m), dtype=bool))  # row r holds z[0..r]
        order = np.argsort(np.where(mask, z[None, :], np.inf), axis=1, kind="stable")
        zs = np.take_along_axis(np.broadcast_to(z, (m, m)), order, axis=1)
        ws = np.take_along_axis(np.where(mask, v[None, :], 0.0), order, axis=1)
        cw = np.cumsum(ws, axis=1)
        half = cw[:, -1:] / 2
        idx = np.argmax(cw >= half * (1 - 1e-12), axis=1)
        rows = np.arange(m)
        med = zs[rows, idx]
        tie = np.isclose(cw[rows, idx], half[:, 0]) & (idx + 1 <= rows)  # even weight split: the midpoint
        med = np.where(tie, (med + zs[rows, np.minimum(idx + 1, m - 1)]) / 2, med)
        level[left, left:] = med
        cost[left, left:] = np.sum(np.where(mask, v[None, :] * np.abs(z[None, :] - med[:, None]), 0.0), axis=1)
    return level, cost


def best_fits(cost: np.ndarray, kmax: int, min_size: int = 2) -> dict[int, tuple[float, list[int]]]:
    """The least-cost partition into k segments, for each reachable k <= kmax: {k: (cost, segment starts)}.
    Every segment holds at least `min_size` points."""
    n = cost.shape[0]
    allowed = cost.copy()
    sizes = np.arange(n)[None, :] - np.arange(n)[:, None] + 1
    allowed[sizes < min_size] = np.inf
    total = np.full((kmax + 1, n + 1), np.inf)
    total[0, 0] = 0.0
    back = np.zeros((kmax + 1, n + 1), dtype=int)
    for k in range(1, kmax + 1):
        cand = total[k - 1, :n, None] + allowed  # [l, r]: k-1 segments over 0..l-1, then l..r
        back[k, 1:] = np.argmin(cand, axis=0)
        total[k, 1:] = cand[back[k, 1:], np.arange(n)]
    out = {}
    for k in range(1, kmax + 1):
        if not np.isfinite(total[k, n]):
            continue
        starts, end = [], n
        for j in range(k, 0, -1):
            start = int(back[j, end])
            starts.append(start)
            end = start
        out[k] = (float(total[k, n]), starts[::-1])
    return out


def choose_k(fits: dict[int, tuple[float, list[int]]], n: int, scale: float) -> int:
    """asv's information criterion: beta k + ln(floor + cost), beta = 4 ln(n) / n."""
    beta = BETA_PER_SEGMENT * math.log(n) / n
    floor = FLOOR * scale
    return min(fits, key=lambda k: beta * k + math.log(floor + fits[k][0]))


def segments_of(starts: list[int], n: int, level: np.ndarray) -> list[Segment]:
    ends = [*starts[1:], n]
    return [Segment(s, e, float(level[s, e - 1])) for s, e in zip(starts, ends, strict=True)]


def noise(y: np.ndarray, w: np.ndarray) -> float:
    """The series' own noise per unit weight, from neighbouring points: 1.4826 x the median absolute difference,
    each scaled by its two points' weights, over sqrt(2). A step moves one difference only, and no fit is involved:
    residuals around fitted levels shrink with every level fitted (three points around their median: one is 0)."""
    if len(y) < 2:
        return FLOOR * float(np.median(np.abs(y))) if len(y) else 0.0
    scaled = np.diff(y) / np.sqrt(1 / w[:-1] ** 2 + 1 / w[1:] ** 2)
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(scaled)))
    return max(sigma, FLOOR * float(np.median(np.abs(y))))


def step_z(a: Segment, b: Segment, w: np.ndarray, sigma: float) -> float:
    w2a, w2b = float(np.sum(w[a.start:a.end] ** 2)), float(np.sum(w[b.start:b.end] ** 2))
    se = sigma * MEDIAN_EFFICIENCY * math.sqrt(1 / w2a + 1 / w2b)
    return abs(b.level - a.level) / se if se else math.inf


def passes(a: Segment, b: Segment, z: float, threshold: float, relative: bool, min_z: float) -> bool:
    size = abs(b.level / a.level - 1) if relative and a.level else abs(b.level - a.level)
    return z >= min_z and size >= threshold


@dataclass(frozen=True)
class Fit:
    segments: list[Segment]
    steps: list[Step]
    sigma: float  # the series' noise per unit weight


def weights(y: np.ndarray, errors: np.ndarray | list[float] | None) -> np.ndarray:
    """Each point's weight, 1 / its total noise: the noise between nights, which the repeats of one run do not see
    (estimated from the series: its total less the points' own), plus the point's own standard error from its
    repeats. A point whose repeats disagree counts less; repeats that happen to agree cannot make one night
    outweigh the others. Median 1, clipped to [1/3, 3]; a point without repeats gets the median error."""
    n = len(y)
    if errors is None or n < 3:
        return np.ones(n)
    se = np.asarray(errors, dtype=float)
    known = np.isfinite(se) & (se >= 0)
    if not known.any():
        return np.ones(n)
    se = np.where(known, se, np.median(se[known]))
    total = MAD_TO_SIGMA * float(np.median(np.abs(np.diff(y)))) / math.sqrt(2)
    floor = FLOOR * float(np.median(np.abs(y)))
    between = max(total**2 - float(np.median(se**2)), floor**2)
    w = 1 / np.sqrt(between + se**2)
    return np.clip(w / np.median(w), 1 / 3, 3.0)


def _screen(y: np.ndarray, w: np.ndarray, segments: list[Segment], level: np.ndarray, threshold: float,
            relative: bool, min_z: float) -> tuple[list[Segment], float]:
    """Merge away the weakest step that fails the threshold or the noise test until every step passes."""
    sigma = noise(y, w)
    while True:
        failing = []
        for i, (a, b) in enumerate(zip(segments, segments[1:], strict=False)):
            z = step_z(a, b, w, sigma)
            if not passes(a, b, z, threshold, relative, min_z):
                failing.append((z, i))
        if not failing:
            return segments, sigma
        _, i = min(failing)
        start, end = segments[i].start, segments[i + 1].end
        segments = [*segments[:i], Segment(start, end, float(level[start, end - 1])), *segments[i + 2:]]


def detect_steps(values: list[float] | np.ndarray, errors: list[float] | np.ndarray | None = None,
                 threshold: float = DEFAULT_THRESHOLD, relative: bool = True, min_z: float = DEFAULT_Z,
                 busy: list[bool] | np.ndarray | None = None) -> Fit:
    """The fitted levels of a series (oldest first) and the steps between them that pass both tests. `errors`: each
    point's standard error from its repeats (None or NaN where it has one repeat); `busy`: points from runs the
    runner measured as busy (other processes used over 20 % of the CPU), which count at most BUSY_WEIGHT."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    w = weights(y, errors)
    if busy is not None and len(busy) == n:
        w = np.where(np.asarray(busy, dtype=bool), np.minimum(w, BUSY_WEIGHT), w)
    if n == 0:
        return Fit([], [], 0.0)
    level, cost = weighted_levels(y, w)
    whole = [Segment(0, n, float(level[0, n - 1]))]
    if n < 4:  # two segments of two points at the least
        return Fit(whole, [], noise(y, w))
    fits = best_fits(cost, kmax=min(n, max(8, n // 4)))
    k = choose_k(fits, n, scale=float(np.median(np.abs(y)) * np.sum(w)))
    segments, sigma = _screen(y, w, segments_of(fits[k][1], n, level), level, threshold, relative, min_z)
    steps = [Step(b.start, a.level, b.level, step_z(a, b, w, sigma))
             for a, b in zip(segments, segments[1:], strict=False)]
    return Fit(segments, steps, sigma)


def sen_interval(slopes: np.ndarray, n: int, z: float | None = None) -> tuple[float, float]:
    """Sen's distribution-free interval for the Theil-Sen slope (Kendall's tau variance, no ties)."""
    z = DRIFT_Z if z is None else z
    m = len(slopes)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lo_rank = max(int(math.floor((m - c) / 2)), 0)
    hi_rank = min(int(math.ceil((m + c) / 2)), m - 1)
    ordered = np.sort(slopes)
    return float(ordered[lo_rank]), float(ordered[hi_rank])


def drift(values: list[float] | np.ndarray, start: int = 0) -> Drift | None:
    """Theil-Sen slope of values[start:] with its 99 % interval; None below MIN_DRIFT_POINTS points."""
    y = np.asarray(values, dtype=float)[start:]
    n = len(y)
    if n < MIN_DRIFT_POINTS:
        return None
    i, j = np.triu_indices(n, k=1)
    slopes = (y[j] - y[i]) / (j - i)
    lo, hi = sen_interval(slopes, n)
    return Drift(start, float(np.median(slopes)), lo, hi, float(np.median(y)))
