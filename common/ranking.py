"""The one ranking every figure of the project goes through: a compact letter display that never groups two entries
whose own intervals are apart.

Stdlib only, so the runner's closing lines use the same rule as the report without importing pandas. Every ranking
(the runner's closing lines, the report's At a glance and per-test rankings, the sweep's best-versus-default call,
the Keras tax's tie) calls `rank` or `overlap` here.

Why not "a chain of overlaps is one tie": intervals overlap pairwise, not transitively. JAX's epochs 0.96-1.21 s
meet its twin's 0.88-1.63, which meet TensorFlow's, which meet PyTorch's 2.16-3.91: a chained tie put 0.99 s and
3.43 s in one place. Here each entry instead carries the letters of the groups it belongs to; a group is a maximal
set of entries whose intervals all overlap one another (for intervals: all share a point), lettered from the
fastest, so two entries share a letter only when their own intervals overlap. "a" is the group of the best entry.
`first` marks the best and every entry whose interval overlaps the best's own: the first place (the bold figures).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.stats import Spread, spread

WITHIN = "spread of epochs within one process"  # one repeat: says little about the next run
POOLED = "spread of epochs, {n} processes pooled"  # two repeats: too few processes for a between-run interval
BETWEEN = "between-run interval over {n} processes"  # --repeats 3 or more: one steady figure per process
MIN_BETWEEN_RUNS = 3  # processes needed before the interval is taken between runs


@dataclass(frozen=True)
class Entry:
    label: str
    median: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Ranked:
    entry: Entry
    position: int  # 1-based by median; every `first` entry shows 1
    letters: str  # the groups it belongs to: entries sharing a letter cannot be told apart
    first: bool  # the best, or its interval overlaps the best's: the first place, bold in the reports

    @property
    def label(self) -> str:
        return self.entry.label


def overlap(a: Entry, b: Entry) -> bool:
    return a.lo <= b.hi and b.lo <= a.hi


def _letter(i: int) -> str:
    """a..z, then aa, ab, ... (a ranking of more than 26 groups stays readable)."""
    letters = string.ascii_lowercase
    return letters[i] if i < len(letters) else _letter(i // len(letters) - 1) + letters[i % len(letters)]


def groups(ordered: Sequence[Entry]) -> list[frozenset[int]]:
    """The maximal sets of pairwise-overlapping entries (indexes into `ordered`), fastest group first.

    Intervals that overlap pairwise share a point (Helly's theorem in one dimension), and a maximal set's common
    part starts at one of its members' low ends: so the candidates are the entries alive at each low end."""
    cands = {frozenset(i for i, e in enumerate(ordered) if e.lo <= p.lo <= e.hi) for p in ordered}
    maximal = [g for g in cands if not any(g < other for other in cands)]
    return sorted(maximal, key=lambda g: (min(g), max(g)))


def rank(entries: Sequence[Entry]) -> list[Ranked]:
    """Entries fastest (lowest median) first, each with its letters and whether it is in the first place."""
    ordered = sorted(entries, key=lambda e: (e.median, e.label))
    letters: dict[int, str] = {i: "" for i in range(len(ordered))}
    for n, group in enumerate(groups(ordered)):
        for i in group:
            letters[i] += _letter(n)
    out = []
    for i, e in enumerate(ordered):
        first = i == 0 or overlap(e, ordered[0])
        out.append(Ranked(e, 1 if first else i + 1, letters[i], first))
    return out


def first_place(ranked: Sequence[Ranked]) -> set[str]:
    """The labels of the first place: the best and the entries whose interval overlaps the best's own."""
    return {r.label for r in ranked if r.first}


def ranking_parts(ranked: Sequence[Ranked], fmt: Callable[[float], str] = lambda s: f"{s:.3g} s",
                  esc: Callable[[str], str] = str) -> list[str]:
    """`1. A 1.00 s (a)` per entry, fastest first; letters only when more than one entry was ranked. `esc`
    escapes labels (HTML)."""
    show = len(ranked) > 1
    return [f"{r.position}. {esc(r.label)} {fmt(r.entry.median)}" + (f" ({r.letters})" if show else "")
            for r in ranked]


def ranking_text(ranked: Sequence[Ranked], fmt: Callable[[float], str] = lambda s: f"{s:.3g} s",
                 esc: Callable[[str], str] = str) -> str:
    """`1. A 1.00 s (a) · 1. B 1.05 s (ab) · 3. C 3.00 s (c)`; empty when nothing ranked."""
    return " · ".join(ranking_parts(ranked, fmt, esc))


LEGEND = ("same letter: the intervals overlap, the two cannot be told apart; 1.: the fastest, or its interval "
          "overlaps the fastest's")


def interval_basis(repeats: int) -> str:
    """What the interval of a figure pooled over `repeats` processes measures, in the words every table uses."""
    if repeats >= MIN_BETWEEN_RUNS:
        return BETWEEN.format(n=repeats)
    return WITHIN if repeats <= 1 else POOLED.format(n=repeats)


def ranking_spread(per_repeat: Sequence[float], steady_epochs: Sequence[float]) -> tuple[Spread, str] | None:
    """The figure (median of the steady epochs, repeats pooled) with the interval rankings use, and what that
    interval measures: with 3 or more processes, the spread of their steady figures (between runs, widened to
    hold the figure); below that, the spread of the epochs, which says little about the next run."""
    pooled = spread(steady_epochs)
    if pooled is None:
        return None
    runs = spread(per_repeat) if len(per_repeat) >= MIN_BETWEEN_RUNS else None
    if runs is None:
        return pooled, interval_basis(max(1, len(per_repeat)))
    lo, hi = min(runs.lo, pooled.median), max(runs.hi, pooled.median)
    return Spread(pooled.median, lo, hi, runs.kind, runs.n, pooled.cv), interval_basis(len(per_repeat))
