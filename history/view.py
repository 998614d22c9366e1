"""Each series analysed once, in the words the terminal and the site share: latest value, trend, steps with the
commit range they came in with, and the regressions `check` fails on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from history.judge import DEFAULT_WINDOW, Analysis, Finding, analyse
from history.series import Point, Series

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Settings:
    window: int = DEFAULT_WINDOW
    z: float | None = None  # None: detect.DEFAULT_Z
    threshold: float | None = None  # relative figures; None: each metric's own
    acc_threshold: float | None = None  # absolute figures (accuracy)


@dataclass
class Row:
    series: Series
    analysis: Analysis

    @property
    def latest(self) -> Point:
        return self.series.points[-1]

    @property
    def regressions(self) -> list[Finding]:
        """What `check` fails on: a judged figure's new regressions, in a series that has not ended."""
        return self.analysis.regressions if self.series.metric.judged and not self.series.ended else []

    def counts(self, finding: Finding) -> bool:
        return finding in self.regressions

    def before_after(self, finding: Finding) -> tuple[Point | None, Point]:
        points = self.series.points
        return (points[finding.index - 1] if finding.index else None), points[finding.index]


def _rule(series: Series, settings: Settings):
    rule = series.metric.rule
    override = settings.threshold if rule.relative else settings.acc_threshold
    return dataclasses.replace(rule, threshold=override) if override is not None else rule


def analyse_all(series: list[Series], settings: Settings) -> list[Row]:
    rows = []
    for s in series:
        kwargs = {} if settings.z is None else {"min_z": settings.z}
        busy = [p.busy for p in s.points]
        rows.append(Row(s, analyse(s.values, s.errors, _rule(s, settings), settings.window, busy=busy, **kwargs)))
    return rows


def short(commit: str | None) -> str:
    return commit[:10] if commit else "?"


def commit_range(row: Row, finding: Finding) -> str:
    """`git log A..B` holds the change: A ran before the step, B is the first run after it."""
    before, after = row.before_after(finding)
    if finding.kind == "drift":
        return f"{short(after.commit)}..{short(row.latest.commit)}"
    return f"{short(before.commit if before else None)}..{short(after.commit)}"


def change_text(row: Row, finding: Finding) -> str:
    if row.series.metric.rule.relative:
        return f"{finding.change * 100:+.1f} %"
    return f"{finding.change * 100:+.2f} points"


def finding_text(row: Row, finding: Finding) -> str:
    _, after = row.before_after(finding)
    what = "step" if finding.kind == "step" else "drift over the last nights since"
    z = f", {finding.z:.1f} s.e." if finding.z is not None else ""
    busy = "; the machine was busy in most runs since: not judged, rerun on a quiet machine" if finding.busy else ""
    return (f"{what} {change_text(row, finding)} at {after.time} (run {after.run_id}{z}), commits "
            f"{commit_range(row, finding)}{busy}")


def value_text(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.4f}"
    return f"{value:.4g} {unit}"


def sparkline(values: list[float], width: int = 24) -> str:
    vals = values[-width:]
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return SPARK[3] * len(vals)
    return "".join(SPARK[min(int((v - lo) / (hi - lo) * len(SPARK)), len(SPARK) - 1)] for v in vals)


def trend_text(row: Row) -> str:
    d = row.analysis.drift
    if d is None:
        return "-"
    points = len(row.series.points) - d.start
    relative = row.series.metric.rule.relative
    total = d.total(points) if relative else d.slope * (points - 1)
    unit = " %" if relative else " points"
    sign = "conclusive" if d.conclusive_sign else "within noise"
    return f"{total * 100:+.1f}{unit} over {points} runs ({sign})"
