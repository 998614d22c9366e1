"""index.html: one self-contained page that opens offline (inline CSS, no script, no CDN; images are files beside
it). The answer first (a verdict per test and work), then the tests at a glance, then one caveats box linking to
each caveat's detail; then per test the article's two figures, the summary table and the 2017 comparison, then
provenance for every row and the data files."""

from __future__ import annotations

from reports import fmt
from reports.article import Article
from reports.content import Report
from reports.html_parts import caveats_box_html, caveats_detail_html, caveats_html, e, swatch, table_html
from reports.html_sections import section_html
from reports.provenance import load_facts, raw_copy_name
from reports.sweep import HEADER as SWEEP_HEADER
from reports.sweep import SLOWER_THAN_BEST, table_cells
from reports.tax import html_section as tax_html

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
      z-index:2; overflow-x:auto; white-space:nowrap; } nav a { margin-right:14px; white-space:nowrap; }
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
.best { font-weight:700; } sup.cld { color:var(--muted); font-size:10px; margin-left:2px; }
#verdict { margin:10px 0 4px; } #verdict ul { margin:0; padding-left:20px; font-size:15px; }
#verdict li { margin:2px 0; } ul.caveats { margin:4px 0 0; padding-left:20px; }
.flag { display:inline-block; font-size:11px; font-weight:600; padding:0 5px; border-radius:3px; margin-left:4px; }
.flag.noisy { background:#fff0c2; color:#7a5200; } .flag.bad { background:#fdecea; color:#a11; }
.flag.busy { background:#eef2f7; color:#384355; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:0; }
.figs { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(440px, 100%), 1fr)); gap:12px;
        margin:8px 0; }
.meta, .caveat, .legend, #verdict { overflow-wrap:anywhere; }
@media (max-width: 600px) { main { padding:0 10px 32px; } h1 { font-size:18px; } #verdict ul { font-size:14px; } }
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

def _glance_table(report: Report, rows: list, unit) -> str:
    g = report.glance
    backends = dict(zip(report.table["label"], report.table["backend"], strict=False))
    body = []
    for row in rows:
        head = f'<a href="#test-{e(row.model)}">{e(row.title)}</a>'
        if g.several_works(row.model) or unit is not fmt.seconds:
            head += f'<br><span class="muted">{e(row.work_text)}</span>'
        cells = [head]
        letters = {r.label: r.letters for r in row.ranked}
        for label in g.labels:
            value = row.values.get(label)
            text = unit(value) if value is not None else ""
            text = f'<span class="best">{text}</span>' if label in row.best else text
            cells.append(text + (f'<sup class="cld">{e(letters[label])}</sup>' if label in letters else ""))
        body.append(cells)
    heads = ["test"] + [swatch(backends.get(c, c)) + e(c) for c in g.labels]
    return table_html(None, body, numeric=set(range(1, len(heads))), header_html=heads)


def overview_html(report: Report) -> str:
    """Steady s/epoch per test and work, bold the first place of each row (common.ranking); then the one caveats
    box; then, for tests whose backends did different work, training time per sample, validation taken out."""
    g = report.glance
    if g is None or not g.rows:
        return caveats_box_html(report.caveats)
    html = ('<section id="overview"><h2>At a glance: steady seconds per epoch</h2>'
            + _glance_table(report, g.rows, fmt.seconds)
            + f'<p class="legend">{e(g.legend())}</p>' + caveats_box_html(report.caveats))
    if g.per_sample:
        html += ("<h3>Across different work: microseconds per training sample (validation pass excluded)</h3>"
                 '<p class="legend">For tests whose backends did different work: steady epoch less its validation '
                 "pass, per training sample; bold: the fastest. What differs: "
                 + e("; ".join(f"{r.title}: {g.differences[r.model]}" for r in g.per_sample)) + ".</p>"
                 + _glance_table(report, g.per_sample, fmt.rate))
    return html + "</section>"


def verdict_html(report: Report) -> str:
    """The answer first: one line per test and work."""
    if not report.verdicts:
        return ""
    items = "".join(f'<li><a href="#test-{e(v.model)}"><b>{e(v.head)}</b></a>: {e(v.text)}</li>'
                    for v in report.verdicts)
    return f'<section id="verdict"><ul>{items}</ul></section>'


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
    return (f"<header><h1>Keras Backend Matrix: {e(report.name)}</h1>{verdict_html(report)}<p class=\"meta\">"
            f"{summary}; generated {e(report.generated_at)}.</p>{run_lines}</header>")


def nav_html(report: Report) -> str:
    links = [("#overview", "At a glance")] + ([("#caveats", "Caveats")] if report.caveats else [])
    links += [("#tax", "The Keras tax")] if report.tax else []
    links += [(f"#{s.anchor}", s.title) for s in report.sections]
    links += [("#article", "2017 reference"), ("#provenance", "Provenance"), ("#files", "Data files")]
    return "<nav>" + "".join(f'<a href="{h}">{e(t)}</a>' for h, t in links) + "</nav>"


def render(report: Report) -> str:
    body = (page_header_html(report) + nav_html(report) + overview_html(report)
            + sweep_html(report) + tax_html(report.tax) + "".join(section_html(s) for s in report.sections)
            + caveats_detail_html(report.caveats)
            + (article_html(report) if report.sections else "") + provenance_html(report) + files_html()
            + f"<footer>Keras Backend Matrix report, generated {e(report.generated_at)}. Markdown: "
            '<a href="summary.md">summary.md</a>.</footer>')
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Keras Backend Matrix: {e(report.name)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
