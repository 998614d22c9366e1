"""What `history check` fails on: a new conclusive change the wrong way, in one series of one figure.

A step is new while it is recent (it landed within the last `window` points) and still in effect (the series' last
level is still worse than the level before it by the threshold); a regression that was fixed, or that has stood for
`window` nights and become the baseline, no longer fails the check (the site keeps listing every step). A drift is
judged over the last `window` points after the latest step. A change whose runs were mostly busy (the runner
measured other processes taking the CPU, and says such times are suspect) is listed, not judged: the machine, not
the code, may have changed (rerun on a quiet machine). Wrong way: slower, more memory (up); less accurate,
lower throughput (down).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from history.detect import DEFAULT_THRESHOLD, DEFAULT_Z, Drift, Fit, Step, detect_steps, drift

DEFAULT_WINDOW = 10


@dataclass(frozen=True)
class Rule:
    """How one figure is judged: which way is worse, and whether its threshold is relative (times) or absolute
    (accuracy: 0.01 is one point of accuracy, whatever the level)."""

    worse: int  # +1: up is worse, -1: down is worse
    relative: bool = True
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Finding:
    kind: str  # "step" or "drift"
    index: int  # the first point after the step, or the first point of the drift's window
    change: float  # relative (or absolute, for an absolute rule): after vs before, or over the drift's window
    z: float | None
    regression: bool  # new, conclusive and the wrong way: what fails `check`
    busy: bool = False  # most runs after it were busy (the runner says their times are suspect): not judged


@dataclass
class Analysis:
    fit: Fit
    drift: Drift | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.regression]


def _size(before: float, after: float, rule: Rule) -> float:
    return (after / before - 1 if before else 0.0) if rule.relative else after - before


def _mostly_busy(busy: np.ndarray, start: int, end: int) -> bool:
    return bool(len(busy) and busy[start:end].mean() > 0.5)


def _step_finding(step: Step, fit: Fit, n: int, rule: Rule, window: int, busy: np.ndarray) -> Finding:
    change = _size(step.before, step.after, rule)
    still = _size(step.before, fit.segments[-1].level, rule)
    wrong = np.sign(change) == rule.worse
    in_effect = np.sign(still) == rule.worse and abs(still) >= rule.threshold
    recent = step.index >= n - window
    end = next(s.end for s in fit.segments if s.start == step.index)
    suspect = _mostly_busy(busy, step.index, end)
    return Finding("step", step.index, change, step.z, bool(wrong and in_effect and recent and not suspect), suspect)


def _drift_finding(d: Drift, n: int, rule: Rule, busy: np.ndarray) -> Finding | None:
    points = n - d.start
    change = d.total(points) if rule.relative else d.slope * (points - 1)
    if not d.conclusive_sign or abs(change) < rule.threshold:
        return None
    suspect = _mostly_busy(busy, d.start, n)
    return Finding("drift", d.start, change, None, bool(d.conclusive_sign == rule.worse and not suspect), suspect)


def analyse(values: list[float] | np.ndarray, errors: list[float] | np.ndarray | None, rule: Rule,
            window: int = DEFAULT_WINDOW, min_z: float = DEFAULT_Z, busy: list[bool] | None = None) -> Analysis:
    """Steps and drift of one series (oldest first), each with whether it fails the check."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    flags = np.asarray(busy if busy is not None and len(busy) == n else [False] * n, dtype=bool)
    fit = detect_steps(y, errors, rule.threshold, rule.relative, min_z, busy)
    out = Analysis(fit, None, [_step_finding(s, fit, n, rule, window, flags) for s in fit.steps])
    if n:
        out.drift = drift(y, max(fit.segments[-1].start, n - window))
        if out.drift and (finding := _drift_finding(out.drift, n, rule, flags)):
            out.findings.append(finding)
    return out
