"""What `history show` and `history check` print: rich tables that fit the terminal, regressions first."""

from __future__ import annotations

from rich.table import Table

from history.view import Row, finding_text, sparkline, trend_text, value_text


def regression_lines(rows: list[Row]) -> list[str]:
    return [f"REGRESSION {row.series.key.name}: {row.series.metric.title}: {finding_text(row, f)}"
            for row in rows for f in row.regressions]


def _steps_text(row: Row) -> str:
    steps = [f for f in row.analysis.findings if f.kind == "step"]
    if not steps:
        return "none"
    last = steps[-1]
    more = f" (+{len(steps) - 1} earlier)" if len(steps) > 1 else ""
    return finding_text(row, last) + more


def series_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for name, kw in (("test", {}), ("backend", {}), ("cell", {"overflow": "fold"}), ("hardware", {"overflow": "fold"}),
                     ("figure", {}), ("runs", {"justify": "right"}), ("latest", {"justify": "right"}),
                     ("trend", {}), ("detected steps", {"overflow": "fold", "ratio": 1})):
        table.add_column(name, **kw)
    for row in rows:
        s, latest = row.series, row.latest
        key = s.key
        rest = " ".join((key.environment, key.profile, key.variant, key.data_source))
        hw = key.fingerprint + (" (ended)" if s.ended else "")  # the same cell has newer runs on other hardware
        trend = f"{sparkline(s.values)} {trend_text(row)}"
        style = "red" if row.regressions else None
        table.add_row(key.model, key.backend, rest, hw, s.metric.title, str(len(s.points)),
                      f"{value_text(latest.value, s.metric.unit)}\n{latest.time[:10]}", trend, _steps_text(row),
                      style=style)
    return table
