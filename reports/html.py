"""index.html: one self-contained page that opens offline (inline CSS, no script, no CDN; images are files beside
it). Caveats first, then the tests at a glance, then per test the article's two figures, the summary table and the
2017 comparison, then provenance for every row and the data files."""

from __future__ import annotations

from html import escape

import pandas as pd

from common.ranking import ranking_text
from reports import fmt
from reports.article import Article
from reports.caveats import Caveat
from reports.content import Report, Section
from reports.plots import color
from reports.provenance import load_facts, raw_copy_name
from reports.sweep import HEADER as SWEEP_HEADER
from reports.sweep import SLOWER_THAN_BEST, table_cells
from reports.tables import overview

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#ffffff; --alt:#f6f8fb; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:var(--fg); background:var(--bg); }
main { max-width:1440px; margin:0 auto; padding:0 24px 48px; }
header { border-bottom:1px solid var(--line); padding:20px 0 12px; margin-bottom:8px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:18px; margin:32px 0 8px; padding-top:8px;
  border-top:1px solid var(--line); } h3 { font-size:15px; margin:18px 0 6px; }
.meta { color:var(--muted); margin:2px 0; }
nav { position:sticky; top:0; background:rgba(255,255,255,.96); border-bottom:1px solid var(--line); padding:6px 0;
      z-index:2; } nav a { margin-right:14px; white-space:nowrap; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.caveat { border-left:5px solid; padding:8px 12px; margin:8px 0; border-radius:3px; }
.caveat b { letter-spacing:.02em; }
.danger { border-color:#c62828; background:#fdecea; } .warn { border-color:#ef8f00; background:#fff4e0; }
.info { border-color:#6b7a90; background:#eef2f7; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; margin:6px 0 4px; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 7px; text-align:left; vertical-align:top;
          white-space:nowrap; }
td.wrap { white-space:normal; min-width:9em; }
.muted { color:var(--muted); font-size:12px; }
th { background:var(--alt); font-weight:600; white-space:normal; vertical-align:bottom; }
th[title] { text-decoration:underline dotted #9aa3b2; cursor:help; }
th.num { text-align:right; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr:nth-child(even) td { background:#fbfcfe; }
.best { font-weight:700; }
.flag { display:inline-block; font-size:11px; font-weight:600; padding:0 5px; border-radius:3px; margin-left:4px; }
.flag.noisy { background:#fff0c2; color:#7a5200; } .flag.bad { background:#fdecea; color:#a11; }
.flag.busy { background:#eef2f7; color:#384355; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:0; }
.figs { display:grid; grid-template-columns:repeat(auto-fit, minmax(440px, 1fr)); gap:12px; margin:8px 0; }
figure { margin:0; border:1px solid var(--line); border-radius:4px; padding:6px; background:#fff; }
figure img { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
.rank { margin:4px 0; } .rank b { display:inline-block; min-width:150px; }
.legend { color:var(--muted); font-size:12px; max-width:1000px; }
section.prov { border:1px solid var(--line); border-radius:4px; padding:4px 12px 8px; margin:10px 0; }
section.prov:target { border-color:var(--accent); box-shadow:0 0 0 3px #cfe2fa; }
section.prov table td:first-child { color:var(--muted); white-space:nowrap; }
footer { color:var(--muted); font-size:12px; margin-top:32px; }
"""

COLUMN_HELP = {
    "steady s/epoch": "median wall time of the epochs after the first (training + validation pass), pooled over "
                      "repeats; each repeat is a separate process",
    "interval": "95% CI of the median from order statistics (6+ samples), else min-max of the steady epochs",
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


def cv_html(row: pd.Series) -> str:
    if fmt.missing(row["cv"]):
        return "-"
    return fmt.pct(row["cv"]) + ('<span class="flag noisy">noisy</span>' if row["noisy"] else "")


def interval_html(row: pd.Series) -> str:
    if fmt.missing(row["steady_lo"]) or row["interval"] == "single":
        return "-"
    return (f'{fmt.seconds(row["steady_lo"])}\u2013{fmt.seconds(row["steady_hi"])} '
            f'<span class="muted">{e(row["interval"])}</span>')


def ttt_html(row: pd.Series) -> str:
    if row["ttt_reached"] or fmt.missing(row["target_accuracy"]):
        return e(fmt.ttt(row))
    return f'not reached<br><span class="muted">best {fmt.acc(row["best_val_accuracy"])}</span>'


def ran_as_html(row: pd.Series, with_device: bool) -> str:
    out = e(fmt.ran_as(row, with_device))
    if row["data_source"] == "synthetic":
        out += '<span class="flag bad">synthetic</span>'
    return out


SUMMARY_HEADER = ["backend", "steady s/epoch", "interval", "CV", "1st epoch s (+compile)", "samples/s", "steps/s",
                  "GFLOP/s", "% of peak", "test acc", "time to target", "2017 K80 s/epoch", "repeats"]


def ran_as_uniform(rows: pd.DataFrame) -> bool:
    return all(rows[c].nunique() <= 1 for c in ("executor", "profile", "data_source", "device"))


def summary_html(section: Section) -> str:
    with_device = section.rows["device"].nunique() > 1
    uniform = ran_as_uniform(section.rows)
    header = SUMMARY_HEADER if uniform else [*SUMMARY_HEADER, "ran as"]
    all_busy = bool(section.rows["busy"].all())  # then ran_line says it once

    def name(r: pd.Series) -> str:
        return label_link(r) + ('<span class="flag busy">busy machine</span>' if r["busy"] and not all_busy else "")
    rows: list[list[str | tuple[str, int]]] = []
    for _, r in section.rows.iterrows():
        then = e(next((fmt.then_text(c) for c in section.comparison if c["backend"] == r["backend"]), "-"))
        if r["repeats_ok"] == 0:
            reason = f'<span class="flag bad">{e(r["status"])}</span> {e(r["error"])}'
            rows.append([name(r), (reason, 10), then, e(r["repeats"]),
                         *([] if uniform else [ran_as_html(r, with_device)])])
            continue
        rows.append([
            name(r),
            f'<a href="#{e(r["anchor"])}" title="provenance">{fmt.seconds(r["steady_s"])}</a>',
            interval_html(r),
            cv_html(r),
            f'{fmt.seconds(r["first_epoch_s"])} <span class="muted">(+{fmt.seconds(r["compile_s"])})</span>',
            fmt.rate(r["samples_per_s"]),
            fmt.rate(r["steps_per_s"]),
            fmt.rate(r["gflops"]),
            fmt.share(r["peak_share"]),
            fmt.acc(r["test_accuracy"]),
            ttt_html(r),
            then,
            e(f"{r['repeats_ok']}/{r['repeats']}" if r["repeats_ok"] != r["repeats"] else r["repeats"]),
            *([] if uniform else [ran_as_html(r, with_device)]),
        ])
    return table_html(header, rows, numeric=set(range(1, 13)) - {2, 10}, wrap=frozenset({10}))


def comparison_html(section: Section) -> str:
    header = ["backend", "2017 K80 s/epoch", "2017 accuracy", "2017 framework", "now steady s/epoch",
              "now article-style s/epoch", "now / 2017", "now test acc", "now versions"]
    rows = []
    for c in section.comparison:
        name = swatch(c["backend"]) + (f'<a href="#{e(c["anchor"])}">{e(c["label"])}</a>' if c["anchor"]
                                       else e(c["label"]))
        then = f'<a href="#article">{e(fmt.then_text(c))}</a>'
        then_acc = fmt.published(c["then_accuracy"], c["then_accuracy_approx"])
        rows.append([name, then, then_acc, e(c["then_config"] or "-"),
                     fmt.seconds(c["now_steady_s"]), fmt.seconds(c["now_article_s"]),
                     fmt.ratio(c["ratio"]) if section.comparable else "not comparable",
                     fmt.acc(c["now_accuracy"]), e(c["now_versions"] or "-")])
    return table_html(header, rows, numeric={1, 2, 4, 5, 6, 7}, wrap=frozenset({8}))


def article_flags_html(section: Section) -> str:
    if not section.article_flags:
        return ""
    what = ("the ratio compares different setups" if section.comparable
            else "the 2017 figures are for reference only, no ratio")
    return (f'<div class="caveat danger"><b>{e(", ".join(section.article_flags))}</b>: {what}; '
            '<a href="#article">why</a>.</div>')


def rankings_html(section: Section) -> str:
    then = " · ".join(f"{i}. {e(t)} {fmt.published(f.s_per_epoch, f.approx)}"
                      for i, (t, f) in enumerate(section.ranking_then, 1)) or "no figures"
    if section.unranked_then:
        then += ' <span class="legend">(not ranked: ' + "; ".join(f"{e(t)}: {e(w)}" for t, w in
                                                                   section.unranked_then) + ")</span>"
    now = ranking_text(section.ranking_now, fmt.seconds, e)
    return (f'<p class="rank"><b>Ranking 2017 (K80)</b> {then}</p>'
            f'<p class="rank"><b>Ranking now (steady)</b> {now or "nothing ran"}</p>')


def figures_html(section: Section) -> str:
    out = []
    captions = {"speed": "Solid: steady s/epoch (median; whiskers: interval). Hatched: first epoch.",
                "accuracy": "Median over repeats per epoch (band: min-max). Solid: validation; dashed: train."}
    for kind in ("speed", "accuracy"):
        if kind in section.figures:
            f = section.figures[kind]
            out.append(f'<figure><img src="plots/{e(f["png"])}" alt="{e(section.title)}: {kind}" loading="eager">'
                       f'<figcaption>{captions[kind]} <a href="plots/{e(f["svg"])}">SVG</a></figcaption></figure>')
    return f'<div class="figs">{"".join(out)}</div>' if out else ""


def ran_line(section: Section) -> str:
    """How the test's rows ran, said once above the table when they all ran alike."""
    rows = section.rows
    devices = " / ".join(sorted(set(rows.loc[rows["repeats_ok"] > 0, "device"])))
    text = f"Ran on {e(devices)}" if devices else "No repeat finished"
    if ran_as_uniform(rows):
        r = rows.iloc[0]
        text += f"; executor {e(r['executor'])}, profile {e(r['profile'])}, data {e(r['data_source'])}"
        if r["data_source"] == "synthetic":
            text += '<span class="flag bad">synthetic</span>'
    if rows["busy"].all():
        text += '<span class="flag busy">busy machine</span>'
    if section.target:
        text += f". Time to target: validation accuracy {section.target:g}"
    return f'<p class="meta">{text}.</p>'


def section_html(section: Section) -> str:
    return (f'<section id="{section.anchor}"><h2>{e(section.title)} <small>({e(section.model)})</small></h2>'
            + caveats_html(section.caveats) + ran_line(section)
            + figures_html(section) + summary_html(section)
            + "<h3>Beside the 2017 article</h3>" + article_flags_html(section)
            + comparison_html(section) + rankings_html(section) + "</section>")


def overview_html(report: Report) -> str:
    grid = overview(report.table)
    if grid.empty:
        return ""
    backends = dict(zip(report.table["label"], report.table["backend"], strict=False))
    header = ["test", *grid.columns]
    rows = []
    for model, values in grid.iterrows():
        ok = values.dropna()
        title = report.article.tests[model].title if model in report.article.tests else model
        row = [f'<a href="#test-{e(model)}">{e(title)}</a>']
        for v in values:
            best = len(ok) > 1 and not fmt.missing(v) and v == ok.min()
            row.append(f'<span class="best">{fmt.seconds(v)}</span>' if best else fmt.seconds(v))
        rows.append(row)
    heads = ["test"] + [swatch(backends.get(c, c)) + e(c) for c in grid.columns]
    html = table_html(None, rows, numeric=set(range(1, len(header))), header_html=heads)
    return ('<section id="overview"><h2>At a glance: steady seconds per epoch</h2>'
            '<p class="legend">Lower is better; bold: the fastest backend of the test. Each test links to its '
            "figures and full table.</p>" + html + "</section>")


def sweep_html(report: Report) -> str:
    """The variants sweep (when a test x backend ran several variants); SLOWER defaults in red."""
    if not report.sweep:
        return ""
    rows = []
    for r in report.sweep:
        cells = [e(c) for c in table_cells(r)]
        if r["flag"]:
            cells[-1] = f'<b style="color:#b00">{cells[-1]}</b>'
        rows.append(cells)
    return ('<section id="sweep"><h2>Variants sweep</h2><p class="legend">Per test and backend: the fastest variant '
            f"(median steady s/epoch, repeats pooled) and the default's distance from it; a default more than "
            f"{SLOWER_THAN_BEST:.0%} slower, with intervals apart, is flagged SLOWER; overlapping intervals are a tie."
            "</p>" + table_html(None, rows, numeric={3, 5, 7, 8}, header_html=[e(h) for h in SWEEP_HEADER])
            + "</section>")


def article_html(report: Report) -> str:
    a = report.article
    confs = [[e(c.title), e(c.keras), e(c.framework), e(c.cuda), e(c.cudnn)] for c in a.configurations.values()]
    return ('<section id="article"><h2>The 2017 reference</h2>' + caveats_html(report.article_caveats)
            + f"<p>{e(a.citation())} Transcribed in <code>reports/article_2017.yaml</code> from "
            f"<code>{e(a.source.reference)}</code>.</p>"
            + f"<p><b>Hardware:</b> {e(a.hardware.name)}: {e(a.hardware.device)}, {a.hardware.peak_fp32_tflops} "
            f"TFLOP/s FP32 peak, {e(a.hardware.cpu)}, {a.hardware.memory_gb} GB; {e(a.hardware.os)}; Python "
            f"{e(a.python)}.</p><p><b>Method:</b> {e(a.method)}</p>"
            + table_html(["backend", "Keras", "framework", "CUDA", "cuDNN"], confs, set())
            + "<h3>Where each figure comes from</h3>"
            + table_html(["test", "backend", "s/epoch", "accuracy", "source", "note"], figure_sources(a), set(),
                         wrap=frozenset({4, 5}))
            + "</section>")


def figure_sources(article: Article) -> list[list[str]]:
    """Every 2017 figure with the notebook run (or the article's words) it was read from."""
    rows = []
    for test in article.tests.values():
        for backend, f in test.figures.items():
            rows.append([e(test.title), e(article.backend_title(backend)),
                         e(fmt.published(f.s_per_epoch, f.approx) if f.s_per_epoch else f.text or "-"),
                         e(fmt.published(f.accuracy, f.accuracy_approx)), e(f.source), e(f.note or "")])
    return rows


def provenance_html(report: Report) -> str:
    out = ['<section id="provenance"><h2>Provenance</h2><p class="legend">Every row of every table, with the '
           "results behind it. Raw result files are copied into this report folder.</p>"]
    for _, r in report.table.iterrows():
        out.append(f'<section class="prov" id="{e(r["anchor"])}"><h3>{e(r["model_title"])} x {e(r["label"])}</h3>'
                   f'<p class="meta">{e(r["environment"])}, profile {e(r["profile"])}, data {e(r["data_source"])}, '
                   f'seeds {e(", ".join(map(str, r["seeds"])))}</p>')
        for key in r["result_keys"]:
            facts = load_facts(report.raw[key])
            rows: list[list[str | tuple[str, int]]] = [[e(k), e(v)] for k, v in facts]
            rows.append(["raw result", f'<a href="{e(raw_copy_name(key))}">{e(raw_copy_name(key))}</a>'])
            out.append(table_html(None, rows, set(), wrap=frozenset({1})))
        out.append("</section>")
    return "".join(out) + "</section>"


def files_html() -> str:
    files = [("summary.md", "Markdown summary (README / PR comment)"), ("data/epochs.csv", "every epoch, tidy CSV"),
             ("data/epochs.parquet", "every epoch, Parquet"), ("data/summary.csv", "the summary rows, CSV"),
             ("data/cells.csv", "one row per result, CSV")]
    items = "".join(f'<li><a href="{f}">{f}</a>: {e(what)}</li>' for f, what in files)
    return f'<section id="files"><h2>Data files</h2><ul>{items}</ul></section>'


def page_header_html(report: Report) -> str:
    runs = []
    for rid in report.run_ids:
        run = report.runs.get(rid, {})
        commit = (run.get("git_commit") or "unknown")[:12] + (" (dirty)" if run.get("git_dirty") else "")
        host = run.get("host") or {}
        runs.append(f"{e(rid)}: {e(' '.join(run.get('argv') or []))}; started {e(run.get('started_at', '-'))}; "
                    f"host {e(host.get('node', '-'))}; commit {e(commit)}")
    ok = report.ok_rows
    n_results = int(report.table["repeats"].sum()) if not report.table.empty else 0
    summary = (f"{len(report.table)} test x backend cells ({len(ok)} with results) from {n_results} results, "
               f"profile(s) {e(', '.join(sorted(set(report.table['profile']))))}, "
               f"hardware {e('; '.join(sorted(set(ok['device']))) or '-')}") if not report.table.empty else "no rows"
    run_lines = "".join(f'<p class="meta">{r}</p>' for r in runs)
    return (f"<header><h1>Keras Backend Matrix: {e(report.name)}</h1><p class=\"meta\">{summary}; generated "
            f"{e(report.generated_at)}.</p>{run_lines}</header>")


def nav_html(report: Report) -> str:
    links = [("#overview", "At a glance")] + [(f"#{s.anchor}", s.title) for s in report.sections]
    links += [("#article", "2017 reference"), ("#provenance", "Provenance"), ("#files", "Data files")]
    return "<nav>" + "".join(f'<a href="{h}">{e(t)}</a>' for h, t in links) + "</nav>"


def render(report: Report) -> str:
    body = (page_header_html(report) + nav_html(report) + caveats_html(report.caveats) + overview_html(report)
            + sweep_html(report) + "".join(section_html(s) for s in report.sections)
            + (article_html(report) if report.sections else "") + provenance_html(report) + files_html()
            + f"<footer>Keras Backend Matrix report, generated {e(report.generated_at)}. Markdown: "
            '<a href="summary.md">summary.md</a>.</footer>')
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Keras Backend Matrix: {e(report.name)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
