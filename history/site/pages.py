"""The history site's HTML: the index (regressions first, then every series with its sparkline) and one page per
test (a trend plot per backend and figure, and every point's run, time and commit in a table). Inline CSS, no
script, nothing fetched."""

from __future__ import annotations

from html import escape

from history.site.svg import sparkline, trend_plot
from history.source import color_of, model_key
from history.view import Row, commit_range, finding_text, short, trend_text, value_text

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --alt:#f6f8fb; --accent:#0b5cad; --bad:#c62828; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:var(--fg); background:#fff; }
main { max-width:1280px; margin:0 auto; padding:0 24px 48px; }
header { border-bottom:1px solid var(--line); padding:18px 0 10px; margin-bottom:8px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:18px; margin:28px 0 8px; }
h3 { font-size:15px; margin:18px 0 4px; }
.meta, .muted { color:var(--muted); font-size:12px; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
table { border-collapse:collapse; margin:6px 0; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 7px; text-align:left; vertical-align:middle; }
th { background:var(--alt); font-weight:600; } td.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.regression td { background:#fdecea; }
.box { border-left:5px solid; padding:8px 12px; margin:8px 0; border-radius:3px; }
.box.bad { border-color:var(--bad); background:#fdecea; } .box.ok { border-color:#2e7d32; background:#edf7ee; }
.box ul { margin:4px 0; padding-left:20px; }
figure { margin:8px 0; border:1px solid var(--line); border-radius:4px; padding:6px; max-width:774px; }
figcaption { color:var(--muted); font-size:12px; }
svg text.tick { font-size:11px; fill:var(--muted); } svg text.axis { font-size:11px; fill:var(--fg); }
svg .plotbg { fill:#fbfcfe; stroke:var(--line); } svg .grid { stroke:#e8ecf2; }
svg .level { stroke:#334; stroke-width:1.5; stroke-dasharray:5 3; } svg .rep { fill:#8892a0; opacity:.6; }
svg .bar { stroke-width:2; opacity:.55; } svg .pt:hover circle { stroke:#000; }
svg line.stepmark { stroke:#ef8f00; stroke-width:1.5; stroke-dasharray:3 2; }
svg line.reg { stroke:var(--bad); stroke-width:2; } svg text.steplabel { font-size:11px; font-weight:600; }
svg text.reg { fill:var(--bad); } svg text.stepmark { fill:#a65f00; }
svg .driftband { fill:#ef8f00; opacity:.10; }
details summary { cursor:pointer; color:var(--accent); }
"""



def color(backend: str) -> str:
    """The run report's colour of a backend (common/display.py: matrix.yaml's), so it looks the same here."""
    return color_of(backend)


def e(value: object) -> str:
    return escape(str(value))


def page(title: str, body: str, subtitle: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><main><header><h1>{e(title)}</h1><p class="meta">{e(subtitle)}</p></header>{body}</main>'
            "</body></html>")


def test_file(model: str) -> str:
    return f"test-{model}.html"


def anchor(row: Row) -> str:
    return f"{row.series.key.slug}--{row.series.metric.column}"


def regressions_box(rows: list[Row]) -> str:
    items = [f'<li><a href="{test_file(r.series.key.model)}#{anchor(r)}">{e(r.series.key.name)}</a>: '
             f"{e(r.series.metric.title)}: {e(finding_text(r, f))}</li>" for r in rows for f in r.regressions]
    if not items:
        return ('<div class="box ok"><b>No new conclusive regression</b>: no series moved the wrong way by more than '
                "its threshold and its own noise within its recent runs.</div>")
    return (f'<div class="box bad"><b>{len(items)} new conclusive regression(s)</b> (what <code>history check</code> '
            f"fails on)<ul>{''.join(items)}</ul></div>")


def _steps_cell(row: Row) -> str:
    steps = [f for f in row.analysis.findings if f.kind == "step"]
    if not steps:
        return '<span class="muted">none</span>'
    return "<br>".join(e(f"{'REGRESSION ' if row.counts(f) else ''}{finding_text(row, f)}") for f in steps)


def index_html(rows: list[Row], where: str, generated: str) -> str:
    head = ("<tr><th>test</th><th>backend</th><th>cell</th><th>hardware</th><th>figure</th><th>runs</th>"
            "<th>trend</th><th>latest</th><th>drift</th><th>detected steps</th></tr>")
    body = []
    for r in rows:
        k, latest = r.series.key, r.latest
        cls = ' class="regression"' if r.regressions else ""
        body.append(
            f'<tr{cls}><td><a href="{test_file(k.model)}">{e(k.model)}</a></td><td>{e(k.backend)}</td>'
            f"<td>{e(' '.join((k.environment, k.profile, k.variant, k.data_source)))}</td>"
            f"<td>{e(k.fingerprint)}{' (ended)' if r.series.ended else ''}</td>"
            f'<td><a href="{test_file(k.model)}#{anchor(r)}">{e(r.series.metric.title)}</a></td>'
            f'<td class="num">{len(r.series.points)}</td><td>{sparkline(r, color(k.backend))}</td>'
            f'<td class="num">{e(value_text(latest.value, r.series.metric.unit))}<br>'
            f'<span class="muted">{e(latest.time[:10])}</span></td><td>{e(trend_text(r))}</td>'
            f"<td>{_steps_cell(r)}</td></tr>")
    tests = sorted({r.series.key.model for r in rows}, key=model_key)
    links = " ".join(f'<a href="{test_file(t)}">{e(t)}</a>' for t in tests)
    content = (regressions_box(rows) + f"<h2>Every test</h2><p>Pages: {links}</p>"
               f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>" + LEGEND)
    return page("Keras Backend Matrix: history", content, f"{where}; written {generated}")


LEGEND = ("<p class=\"muted\">One series per cell (model, backend, environment, profile, variant, data source) and "
          "hardware fingerprint; each point is one run (the median of its repeats). Steps: penalised L1 (Potts) fit "
          "with an information criterion, each step past its threshold and its series' own noise; drift: Theil-Sen "
          "slope over the recent runs. The manual has the method (docs/how-to/history.md) and its "
          "measured rates (docs/measurements.md).</p>")


def points_table(row: Row) -> str:
    unit = row.series.metric.unit
    rows = "".join(
        f"<tr><td>{e(p.time)}</td><td>{e(p.run_id)}</td><td><code>{e(short(p.commit))}</code></td>"
        f'<td class="num">{e(value_text(p.value, unit))}</td><td class="num">{p.lo:.4g}-{p.hi:.4g}</td>'
        f'<td class="num">{len(p.repeats)}</td><td>{"busy" if p.busy else ""}</td></tr>'
        for p in reversed(row.series.points))
    return ("<details><summary>every run, newest first (time, run, commit, median, min-max of repeats)</summary>"
            "<table><thead><tr><th>time</th><th>run</th><th>commit</th><th>median</th><th>min-max</th>"
            f"<th>repeats</th><th>machine</th></tr></thead><tbody>{rows}</tbody></table></details>")


def series_block(row: Row) -> str:
    k = row.series.key
    steps = [f"<li>{e(('REGRESSION: ' if row.counts(f) else '') + finding_text(row, f))} "
             f"(<code>git log {e(commit_range(row, f))}</code>)</li>" for f in row.analysis.findings]
    found = f"<ul>{''.join(steps)}</ul>" if steps else '<p class="muted">no step or drift detected</p>'
    return (f'<section id="{anchor(row)}"><h3>{e(k.backend)}: {e(row.series.metric.title)}</h3>'
            f'<p class="muted">{e(k.name)}; trend: {e(trend_text(row))}</p><figure>'
            f"{trend_plot(row, color(k.backend))}<figcaption>points: median of each run's repeats, bar: min-max, "
            "grey dots: the repeats; dashed: fitted levels; orange: a step, red: a regression (hover a point for its "
            f"run and commit)</figcaption></figure>{found}{points_table(row)}</section>")


def test_html(model: str, rows: list[Row], where: str, generated: str) -> str:
    mine = [r for r in rows if r.series.key.model == model]
    order = {}
    for r in mine:
        order.setdefault(r.series.metric.title, []).append(r)
    body = regressions_box(mine) + '<p><a href="index.html">all tests</a></p>'
    for title, group in order.items():
        body += f"<h2>{e(title)}</h2>" + "".join(series_block(r) for r in group)
    return page(f"History: {model}", body, f"{where}; written {generated}")
