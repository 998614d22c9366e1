"""Hand-written inline SVG: a sparkline per series for the index, and a trend plot per series for its test's page.

Inline, so the site is one folder of HTML files that opens offline with nothing fetched; hover text comes from SVG
<title> elements (the browser shows them, no script needed).
"""

from __future__ import annotations

import math
from html import escape

from history.view import Row, change_text, short, value_text

W, H = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 34


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def sparkline(row: Row, color: str, width: int = 160, height: int = 30) -> str:
    """The series at a glance: its points, the latest one marked, detected steps as ticks."""
    values = row.series.values
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(hi) or 1.0
    n = len(values)

    def x(i: int) -> float:
        return 3 + (width - 6) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return height - 3 - (height - 6) * (v - lo) / span

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    ticks = "".join(f'<line x1="{(x(f.index - 1) + x(f.index)) / 2:.1f}" x2="{(x(f.index - 1) + x(f.index)) / 2:.1f}" '
                    f'y1="0" y2="{height}" class="{"reg" if row.counts(f) else "stepmark"}"/>'
                    for f in row.analysis.findings if f.kind == "step")
    label = escape(f"{row.series.key.name}: {row.series.metric.title}, {n} runs")
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}"><title>{label}</title>{ticks}<path d="{path}" fill="none" stroke="{color}" '
            f'stroke-width="1.5"/><circle cx="{x(n - 1):.1f}" cy="{y(values[-1]):.1f}" r="2.5" fill="{color}"/>'
            "</svg>")


class Frame:
    """Data to pixels for one trend plot."""

    def __init__(self, n: int, lo: float, hi: float):
        pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
        self.n, self.lo, self.hi = n, lo - pad, hi + pad

    def x(self, i: float) -> float:
        inner = W - LEFT - RIGHT
        return LEFT + inner * ((i + 0.5) / self.n)

    def y(self, v: float) -> float:
        """Pixels; a value beyond the frame sits on its edge (its hover text says where it was)."""
        v = min(max(v, self.lo), self.hi)
        return TOP + (H - TOP - BOTTOM) * (self.hi - v) / (self.hi - self.lo)


def _axes(frame: Frame, row: Row) -> list[str]:
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" class="plotbg"/>']
    for t in _nice_ticks(frame.lo, frame.hi):
        yy = frame.y(t)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
                   f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" class="tick" text-anchor="end">{_fmt(t)}</text>')
    points = row.series.points
    every = max(1, math.ceil(len(points) / 6))
    one_day = len({p.time[:10] for p in points}) == 1  # runs of one day: their times tell them apart
    for i in range(0, len(points), every):
        when = points[i].time[11:16] if one_day else points[i].time[:10]
        out.append(f'<text x="{frame.x(i):.1f}" y="{H - BOTTOM + 16}" class="tick" text-anchor="middle">'
                   f'{escape(when)}</text>')
    unit = f" ({row.series.metric.unit})" if row.series.metric.unit else ""
    out.append(f'<text x="14" y="{TOP + (H - TOP - BOTTOM) / 2:.0f}" class="axis" text-anchor="middle" '
               f'transform="rotate(-90 14 {TOP + (H - TOP - BOTTOM) / 2:.0f})">'
               f'{escape(row.series.metric.title + unit)}</text>')
    return out


def _levels(frame: Frame, row: Row) -> list[str]:
    return [f'<line x1="{frame.x(s.start - 0.4):.1f}" x2="{frame.x(s.end - 0.6):.1f}" y1="{frame.y(s.level):.1f}" '
            f'y2="{frame.y(s.level):.1f}" class="level"><title>fitted level {_fmt(s.level)}</title></line>'
            for s in row.analysis.fit.segments]


def _steps(frame: Frame, row: Row) -> list[str]:
    out = []
    for f in row.analysis.findings:
        cls = "reg" if row.counts(f) else "stepmark"
        if f.kind == "drift":
            x0 = frame.x(f.index - 0.5)
            out.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{frame.x(frame.n - 0.5) - x0:.1f}" '
                       f'height="{H - TOP - BOTTOM}" class="driftband"><title>drift {change_text(row, f)}</title>'
                       "</rect>")
            continue
        xx = frame.x(f.index - 0.5)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="{cls}"/>'
                   f'<text x="{xx + 4:.1f}" y="{TOP + 12}" class="steplabel {cls}">'
                   f'{escape(change_text(row, f))}</text>')
    return out


def _points(frame: Frame, row: Row, color: str) -> list[str]:
    out = []
    unit = row.series.metric.unit
    for i, p in enumerate(row.series.points):
        xx = frame.x(i)
        reps = "".join(f'<circle cx="{xx:.1f}" cy="{frame.y(v):.1f}" r="1.8" class="rep"/>' for v in p.repeats)
        tip = escape(f"{p.time}  run {p.run_id}  commit {short(p.commit)}\n{value_text(p.value, unit)} (median of "
                     f"{len(p.repeats)}: {', '.join(_fmt(v) for v in p.repeats)})"
                     + ("  busy machine" if p.busy else ""))
        out.append(f'<g class="pt"><title>{tip}</title><line x1="{xx:.1f}" x2="{xx:.1f}" y1="{frame.y(p.lo):.1f}" '
                   f'y2="{frame.y(p.hi):.1f}" stroke="{color}" class="bar"/>{reps}<circle cx="{xx:.1f}" '
                   f'cy="{frame.y(p.value):.1f}" r="3.6" fill="{color}"/></g>')
    return out


def trend_plot(row: Row, color: str) -> str:
    """Points with their min-max over repeats (each repeat a faint dot), fitted levels, steps and drift marked."""
    points = row.series.points
    core = [p.value for p in points] + [s.level for s in row.analysis.fit.segments]
    span = max(core) - min(core) or abs(max(core)) * 0.1 or 1.0
    # repeats far outside the points (a busy neighbour's 10x) would flatten the plot: the frame stops at half a
    # span beyond the points, and what lies further sits on its edge
    lo = max(min(p.lo for p in points), min(core) - span / 2)
    hi = min(max(p.hi for p in points), max(core) + span / 2)
    frame = Frame(len(points), lo, hi)
    label = escape(f"trend of {row.series.metric.title}: {row.series.key.name}")
    body = [*_axes(frame, row), *_steps(frame, row), *_levels(frame, row), *_points(frame, row, color)]
    return (f'<svg class="trend" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{label}">'
            + "".join(body) + "</svg>")
