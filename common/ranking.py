"""Rankings that claim only what the intervals support: entries whose intervals overlap share a place ("tie").

Stdlib only, so the runner's end-of-run summary uses the same rule as the report without importing pandas.
Entries are sorted by their median; an entry joins the place above it when its interval overlaps the interval of
any entry already in that place (so a chain of overlaps is one tie: the ranking never separates what the
measurements cannot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    label: str
    median: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Place:
    rank: int  # 1-based; tied entries share it, the next place skips (1, 2, 2, 4)
    entries: tuple[Entry, ...]

    @property
    def tie(self) -> bool:
        return len(self.entries) > 1


def overlap(a: Entry, b: Entry) -> bool:
    return a.lo <= b.hi and b.lo <= a.hi


def rank(entries: Sequence[Entry]) -> list[Place]:
    """Places, fastest (lowest median) first; overlapping intervals make one place."""
    ordered = sorted(entries, key=lambda e: e.median)
    groups: list[list[Entry]] = []
    for entry in ordered:
        if groups and any(overlap(entry, other) for other in groups[-1]):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    places, position = [], 1
    for group in groups:
        places.append(Place(position, tuple(group)))
        position += len(group)
    return places


def ranking_text(places: Sequence[Place], fmt=lambda s: f"{s:.3g} s", esc=str) -> str:
    """`1. A 1.2 s · 2. tie: B 2.0 s, C 2.1 s (intervals overlap)`; empty when nothing ranked. `esc` escapes
    labels (HTML)."""
    parts = []
    for place in places:
        names = ", ".join(f"{esc(e.label)} {fmt(e.median)}" for e in place.entries)
        parts.append(f"{place.rank}. tie: {names} (intervals overlap)" if place.tie else f"{place.rank}. {names}")
    return " · ".join(parts)
