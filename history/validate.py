"""`python -m history.validate`: how often `history check` finds a real step, and how often it cries wolf, measured
on seeded random series with this machine's noise.

Each synthetic night is one point, the median of `repeats` repeats, and the repeats' spread is its error, as in a
real series. A repeat is level x (1 + night + own): `night` (shared by the night's repeats) ~ N(0, (0.7 CV)^2) and
`own` ~ N(0, CV^2), so the points vary by about CV between nights and the repeats by about CV within one, as
measured here (smoke MLP, ten unchanged runs: JAX 21 % between nights and 17 % within; PyTorch 10 % and 12 %).
`outliers` adds what a shared machine does: 5 % of repeats twice as slow (a neighbour's burst) and 5 % of nights
27 % slower (the largest drift seen between unchanged runs here). A step series moves the level by `step` (+10 %)
after `before` nights and has `after` nights past it; a null series never moves and has as many nights.

- found: the share of step series with a step detected at the right night (+-1), upwards (what the site marks);
  check fails on it: the share whose check fails on the last night for that step (it must still be new: within
  `window` nights, so a step 20 nights old no longer fails it);
- false alarms: the share of null series whose check fails on the last night (a new step or a drift the wrong
  way), i.e. the chance that one unchanged series fails one night's check; and the share with any step at all,
  either way, anywhere in the series (what the site would mark).

Exit status 0; the table is Markdown, for docs/measurements.md.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from history.detect import DEFAULT_THRESHOLD, DEFAULT_Z
from history.judge import DEFAULT_WINDOW, Rule, analyse

CVS = (0.02, 0.05, 0.10, 0.15)  # 2 %: a quiet GPU, for comparison; 5-15 %: this VM
NOISES = ("gaussian", "outliers")
BUSY_REPEAT_SHARE, BUSY_REPEAT_FACTOR = 0.05, 2.0
BUSY_NIGHT_SHARE, BUSY_NIGHT_FACTOR = 0.05, 1.27


@dataclass(frozen=True)
class Scenario:
    cv: float
    noise: str
    before: int
    after: int
    step: float
    repeats: int = 3


def night_points(rng: np.random.Generator, sc: Scenario, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, standard errors, busy) of one synthetic series: level 1, `step` from night `before` on; busy marks
    the nights made slower, as the runner flags a night whose CPU other processes took."""
    n = sc.before + sc.after
    level = np.where(np.arange(n) < sc.before, 1.0, 1.0 + step)
    night = 0.7 * sc.cv * rng.standard_normal((n, 1))
    reps = level[:, None] * (1 + night + sc.cv * rng.standard_normal((n, sc.repeats)))
    busy = np.zeros(n, dtype=bool)
    if sc.noise == "outliers":
        slow = rng.random((n, sc.repeats)) < BUSY_REPEAT_SHARE
        reps *= np.where(slow, BUSY_REPEAT_FACTOR, 1.0)
        slow_night = rng.random((n, 1)) < BUSY_NIGHT_SHARE
        reps *= np.where(slow_night, BUSY_NIGHT_FACTOR, 1.0)
        busy = slow.any(axis=1) | slow_night[:, 0]
    return np.median(reps, axis=1), reps.std(axis=1, ddof=1) / np.sqrt(sc.repeats), busy


def rates(sc: Scenario, series: int, seed: int, z: float, threshold: float, window: int,
          flagged: bool = False) -> dict[str, float]:
    """The four shares for one scenario; `flagged`: the slow nights and repeats are marked busy, as the runner
    marks CPU contention (a GPU's neighbours or thermal throttling would not be)."""
    rng = np.random.default_rng(seed)
    rule = Rule(worse=1, threshold=threshold)
    hits = fails = alarms = steps = 0
    for _ in range(series):
        y, e, busy = night_points(rng, sc, sc.step)
        result = analyse(y, e, rule, window, z, busy if flagged else None)
        hits += any(abs(s.index - sc.before) <= 1 and s.delta > 0 for s in result.fit.steps)
        fails += any(f.kind == "step" and abs(f.index - sc.before) <= 1 for f in result.regressions)
        y, e, busy = night_points(rng, sc, 0.0)
        null = analyse(y, e, rule, window, z, busy if flagged else None)
        alarms += bool(null.regressions)
        steps += bool(null.fit.steps)
    return {"found": hits / series, "check": fails / series, "false_check": alarms / series,
            "false_steps": steps / series}


def table(args: argparse.Namespace) -> list[str]:
    noises = ("outliers",) if args.flagged else NOISES
    lines = [f"| CV | noise | nights after the step | +{args.step:.0%} step found | check fails on it | "
             "null: check fails | null: any step |", "|---|---|---|---|---|---|---|"]
    for cv in CVS:
        for noise in noises:
            for after in args.after:
                sc = Scenario(cv, noise, args.before, after, args.step, args.repeats)
                r = rates(sc, args.series, args.seed, args.z, args.threshold, args.window, args.flagged)
                lines.append(f"| {cv:.0%} | {noise} | {after} | {r['found']:.1%} | {r['check']:.1%} | "
                             f"{r['false_check']:.1%} | {r['false_steps']:.1%} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m history.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=1000, help="random series per row and kind (default 1000)")
    p.add_argument("--seed", type=int, default=24, help="the simulation's seed (default 24)")
    p.add_argument("--before", type=int, default=10, help="nights before the step (default 10)")
    p.add_argument("--after", type=int, nargs="+", default=[1, 3, 5, 10, 20],
                   help="nights after the step, one row each (default 1 3 5 10 20)")
    p.add_argument("--step", type=float, default=0.10, help="the step, relative (default 0.10)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per night (default 3)")
    p.add_argument("--z", type=float, default=DEFAULT_Z, help=f"the noise test (default {DEFAULT_Z})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="the relative threshold")
    p.add_argument("--flagged", action="store_true",
                   help="mark the outliers' slow nights busy, as the runner marks CPU contention (default: unmarked)")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"nights a change stays new (default {DEFAULT_WINDOW})")
    args = p.parse_args(argv)
    print("\n".join(table(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
