"""The answer a reader came for, one line per test and work, before any table or warning:
"MNIST MLP, 30,000 samples: JAX fastest, 0.986 s/epoch; PyTorch 3.5x slower; the Keras tax on PyTorch 2.4x".

Built from the glance rows (common.ranking's first place, so the verdict never calls "fastest" what the
intervals cannot tell apart from another backend) and the Keras tax rows of the same test and work.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reports import fmt
from reports.glance import Glance, GlanceRow
from reports.tax import TaxRow


@dataclass(frozen=True)
class Verdict:
    model: str
    head: str  # "MNIST MLP, 30,000 samples"
    text: str  # "JAX fastest, 0.986 s/epoch; PyTorch 3.5x slower; the Keras tax on PyTorch 2.4x"
    basis: str  # what the intervals behind the call measure

    @property
    def line(self) -> str:
        return f"{self.head}: {self.text}"


def _samples(table: pd.DataFrame, row: GlanceRow) -> str:
    mine = table[(table["model"] == row.model) & (table["work_text"] == row.work_text)]
    samples = mine["train_samples"].dropna()
    return f", {int(samples.iloc[0]):,} samples" if len(samples) else ""


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + f" and {labels[-1]}"


def _speed(row: GlanceRow) -> str:
    """The fastest and the slowest apart from it, or, where the intervals tell nothing apart, says so."""
    if not row.ranked:
        (label, value), = row.values.items()
        return f"only {label} ran, {fmt.seconds(value)} s/epoch"
    best = row.ranked[0]
    close = [r.label for r in row.ranked[1:] if r.first]
    apart = [r for r in row.ranked if not r.first]
    if not apart:
        lo, hi = fmt.seconds(best.entry.median), fmt.seconds(max(r.entry.median for r in row.ranked))
        figures = f"{lo} s/epoch each" if lo == hi else f"{lo}-{hi} s/epoch"
        return f"{_names([r.label for r in row.ranked])} cannot be told apart ({figures}, intervals overlap)"
    out = f"{best.label} fastest, {fmt.seconds(best.entry.median)} s/epoch"
    if close:
        out += f" ({_names(close)} within its interval)"
    slowest = apart[-1]
    return out + f"; {slowest.label} {slowest.entry.median / best.entry.median:.1f}x slower"


def _tax(row: GlanceRow, taxes: list[TaxRow]) -> str:
    """The largest Keras tax of this test and work that the intervals support; a tie is said as one."""
    mine = [t for t in taxes if t.model == row.model and t.work_text == row.work_text and t.tax is not None]
    if not mine:
        return ""
    apart = [t for t in mine if not t.tie]
    if not apart:
        return "; no Keras tax beyond the noise"
    worst = max(apart, key=lambda t: t.tax[0])
    if worst.tax[0] < 1:
        return f"; Keras faster than the framework alone on {worst.framework} ({worst.tax[0]:.2f}x)"
    return f"; the Keras tax on {worst.framework} {worst.tax[0]:.1f}x"


def verdicts(glance: Glance | None, table: pd.DataFrame, taxes: list[TaxRow]) -> list[Verdict]:
    if glance is None:
        return []
    return [Verdict(row.model, row.title + _samples(table, row), _speed(row) + _tax(row, taxes), row.basis)
            for row in glance.rows if row.values]
