"""The pieces every HTML table of the report is made of: escaping, the table itself, column help, swatches.

Shared by the page (reports/html.py) and the per-test sections (reports/html_sections.py), so neither imports the
other."""

from __future__ import annotations

from html import escape

import pandas as pd

from reports.caveats import Caveat, worst_level
from reports.plots import color

COLUMN_HELP = {
    "steady s/epoch": "median wall time of the epochs after the first (training + validation pass), pooled over "
                      "repeats; each repeat is a separate process",
    "interval": "what the rankings use: with 3+ repeats, between runs (one steady figure per process); below, the "
                "spread of the steady epochs within the process(es), which says little about the next run. 95% CI "
                "of the median from order statistics (6+ values), else min-max",
    "CV": "coefficient of variation of the steady epochs; above 5% the cell is flagged noisy",
    "1st epoch s": "the first callback epoch (median over repeats): Keras 3's tracing and compilation included; "
                   "Keras 2.0.8/1.2.2 build their training function before it (counted in article-style only)",
    "1st epoch s (+compile)": "the first callback epoch (median over repeats): Keras 3's tracing and compilation "
                              "included, Keras 2.0.8/1.2.2's function build not (it precedes the first epoch); in "
                              "brackets, first minus steady epoch: the one-off cost the epoch saw",
    "samples/s": "training samples per epoch / steady s/epoch",
    "steps/s": "training steps (batches) per epoch / steady s/epoch",
    "GFLOP/s": "(3 x F x N_train + F x N_val) / steady s/epoch, F = forward FLOP per sample (models.md)",
    "% of peak": "achieved FLOP/s / the device's FP32 peak: a GPU's from its name, a CPU's estimated from cores x "
                 "clock x vector FLOP/cycle (see the caveat); '-' where unknown",
    "test acc": "accuracy of evaluate() on the test split after training (median over repeats)",
    "time to target": "training time until validation accuracy first reached the target (DAWNBench-style), median "
                      "over the repeats that reached it",
    "2017 K80 s/epoch": "the article's figure (%timeit around the whole fit / epochs: function build, first-epoch "
                        "compilation, validation and a progress bar included), K80 GPU",
    "now article-style s/epoch": "wall time around our whole fit call / epochs: function build, compilation and "
                                 "validation included (Keras 2/1 build before epoch 1, Keras 3 inside it); median "
                                 "over repeats",
    "ran as": "executor, profile, data source (a column only when the rows of a test differ)",
}


def e(value: object) -> str:
    return escape(str(value))


def caveats_html(caveats: list[Caveat]) -> str:
    return "".join(f'<div class="caveat {c.level}"><b>{e(c.title)}</b>: {e(c.text)}</div>' for c in caveats)


def caveats_box_html(caveats: list[Caveat]) -> str:
    """The one box the first screen shows: each kind of caveat once, its count or cause, a link to its detail."""
    if not caveats:
        return ""
    items = "".join(f'<li><a href="#caveat-{i}">{e(c.line)}</a></li>' for i, c in enumerate(caveats, 1))
    return (f'<div class="caveat {worst_level(caveats)}" id="caveats-box"><b>Caveats ({len(caveats)})</b>'
            f'<ul class="caveats">{items}</ul></div>')


def caveats_detail_html(caveats: list[Caveat]) -> str:
    """Every caveat in full, each with the anchor the box links to."""
    if not caveats:
        return ""
    boxes = "".join(f'<div class="caveat {c.level}" id="caveat-{i}"><b>{e(c.title)}</b>: {e(c.text)}</div>'
                    for i, c in enumerate(caveats, 1))
    return f'<section id="caveats"><h2>Caveats in detail</h2>{boxes}</section>'


def table_html(header: list[str] | None, rows: list[list[str | tuple[str, int]]], numeric: set[int],
               wrap: frozenset[int] = frozenset(), header_html: list[str] | None = None) -> str:
    """Rows of cell HTML; a (html, n) cell spans n columns (a failed row's reason across the figures). Header
    cells are text (with help from COLUMN_HELP) or, as `header_html`, markup; no header at all when both are None."""
    heads = "".join(
        "<th" + (' class="num"' if i in numeric else "")
        + (f' title="{e(COLUMN_HELP[h])}"' if h in COLUMN_HELP else "")
        + f">{header_html[i] if header_html else e(h)}</th>"
        for i, h in enumerate(header or header_html or []))
    thead = f"<thead><tr>{heads}</tr></thead>" if heads else ""
    body = []
    for row in rows:
        tds, col = [], 0
        for value in row:
            html, span = value if isinstance(value, tuple) else (value, 1)
            cls = "wrap" if span > 1 or col in wrap else "num" if col in numeric else ""
            attrs = (f' class="{cls}"' if cls else "") + (f' colspan="{span}"' if span > 1 else "")
            tds.append(f"<td{attrs}>{html}</td>")
            col += span
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<div class="scroll"><table>{thead}<tbody>{"".join(body)}</tbody></table></div>'


def swatch(backend: str) -> str:
    return f'<span class="swatch" style="background:{color(backend)}"></span>'


def label_link(row: pd.Series) -> str:
    return f'{swatch(row["backend"])}<a href="#{e(row["anchor"])}" title="provenance">{e(row["label"])}</a>'
