"""Series that never mix what differs: one cell identity on one hardware fingerprint, one figure, ordered by time.

The identity is what `compare` matches cells on, plus the variant: model, backend, environment, profile, variant,
data source. The fingerprint is the hardware (CPU model and usable cores, or GPU name and count): a series whose
fingerprint changes ends, and the new hardware starts a series of its own. The repeats of a cell in one run are
one point: their median, with their min-max and standard error (which weighs the point); each point carries its
run, time and git commit.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field

import pandas as pd

from history.judge import Rule

IDENTITY = ("model", "backend", "environment", "profile", "variant", "data_source")


@dataclass(frozen=True)
class Metric:
    column: str  # in the store's cells table
    title: str
    unit: str
    rule: Rule
    judged: bool = True  # whether `check` fails on it by default (the others are shown)
    real_data_only: bool = False  # accuracy on synthetic data means nothing


METRICS = (
    Metric("steady_epoch_s", "steady s/epoch", "s", Rule(worse=1)),
    Metric("article_epoch_s", "article-style s/epoch", "s", Rule(worse=1)),
    Metric("first_epoch_s", "first epoch s", "s", Rule(worse=1), judged=False),
    Metric("test_accuracy", "test accuracy", "", Rule(worse=-1, relative=False, threshold=0.01),
           real_data_only=True),
    Metric("latency_s", "inference latency", "s", Rule(worse=1)),
    Metric("throughput_per_s", "inference throughput", "/s", Rule(worse=-1)),
    Metric("peak_rss_mb", "peak RSS", "MB", Rule(worse=1)),
    Metric("gpu_peak_mb", "peak GPU memory", "MB", Rule(worse=1)),
)
BY_COLUMN = {m.column: m for m in METRICS}


@dataclass(frozen=True)
class Key:
    model: str
    backend: str
    environment: str
    profile: str
    variant: str
    data_source: str
    fingerprint: str

    @property
    def cell(self) -> str:
        return " ".join((self.model, self.backend, self.environment, self.profile, self.variant, self.data_source))

    @property
    def name(self) -> str:
        return f"{self.cell} on {self.fingerprint}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.name).strip("-").lower()


@dataclass(frozen=True)
class Point:
    run_id: str
    time: str
    commit: str | None
    value: float  # the median of the run's repeats
    lo: float
    hi: float
    repeats: tuple[float, ...]
    error: float | None  # standard error of the point (sd / sqrt(n)); None with one repeat
    busy: bool


@dataclass
class Series:
    key: Key
    metric: Metric
    points: list[Point] = field(default_factory=list)
    ended: bool = False  # the same cell has later points on other hardware

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points]

    @property
    def errors(self) -> list[float]:
        return [math.nan if p.error is None else p.error for p in self.points]


def _point(run: pd.DataFrame, column: str) -> Point | None:
    values = [float(v) for v in run[column] if v is not None and not pd.isna(v)]
    if not values:
        return None
    first = run.iloc[0]
    commit = first["git_commit"] if isinstance(first["git_commit"], str) else first["run_git_commit"]
    sd = statistics.stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else None
    time = first["run_started_at"] if isinstance(first["run_started_at"], str) else min(run["started_at"])
    return Point(str(first["run_id"]), str(time), commit if isinstance(commit, str) else None,
                 statistics.median(values), min(values), max(values), tuple(values), sd, bool(run["busy"].any()))


def build(cells: pd.DataFrame, metrics: tuple[Metric, ...] = METRICS) -> list[Series]:
    """Every series with at least one point, from the store's cells frame (ok results only)."""
    ok = cells[cells["status"] == "ok"] if not cells.empty else cells
    out: list[Series] = []
    for ident, group in ok.groupby([*IDENTITY, "fingerprint"], sort=True, dropna=False):
        key = Key(*(str(v) for v in ident))
        runs = sorted(group.groupby("run_id"), key=lambda item: str(item[1]["run_started_at"].iloc[0]))
        for metric in metrics:
            if metric.column not in group or (metric.real_data_only and key.data_source == "synthetic"):
                continue
            points = [p for _, run in runs if (p := _point(run, metric.column)) is not None]
            if points:
                out.append(Series(key, metric, points))
    _mark_ended(out)
    return out


def _mark_ended(series: list[Series]) -> None:
    """A series ends when the same cell's newest point is on other hardware."""
    newest: dict[tuple[str, str], str] = {}
    for s in series:
        ident = (s.key.cell, s.metric.column)
        newest[ident] = max(newest.get(ident, ""), s.points[-1].time)
    for s in series:
        s.ended = s.points[-1].time < newest[(s.key.cell, s.metric.column)]


def select(series: list[Series], patterns: list[str]) -> list[Series]:
    """Series whose name holds every pattern (case-insensitive); all when there is none."""
    lowered = [p.lower() for p in patterns]
    return [s for s in series if all(p in f"{s.key.name} {s.metric.column}".lower() for p in lowered)]
