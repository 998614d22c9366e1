"""One test's part of index.html: its figures, the summary table (grouped by work where the backends did
different work), the serving and memory table, the 2017 comparison and the rankings."""

from __future__ import annotations

import pandas as pd

from common.ranking import LEGEND, ranking_text
from reports import fmt
from reports.content import Section
from reports.html_parts import caveats_html, e, label_link, swatch, table_html
from reports.serving import serving_table


def cv_html(row: pd.Series) -> str:
    if fmt.missing(row["cv"]):
        return "-"
    return fmt.pct(row["cv"]) + ('<span class="flag noisy">noisy</span>' if row["noisy"] else "")


def interval_html(row: pd.Series) -> str:
    if fmt.missing(row["steady_lo"]) or row["interval"] == "single":
        return "-"
    return (f'{fmt.seconds(row["steady_lo"])}\u2013{fmt.seconds(row["steady_hi"])} '
            f'<span class="muted">{e(row["interval"])}</span>' + interval_basis_html(row))


def ttt_html(row: pd.Series) -> str:
    if row["ttt_reached"] or fmt.missing(row["target_accuracy"]):
        return e(fmt.ttt(row))
    return f'not reached<br><span class="muted">best {fmt.acc(row["best_val_accuracy"])}</span>'


def ran_as_html(row: pd.Series, with_device: bool) -> str:
    out = e(fmt.ran_as(row, with_device))
    if row["data_source"] == "synthetic":
        out += '<span class="flag bad">synthetic</span>'
    return out


SUMMARY_HEADER = ["backend", "steady s/epoch", "interval", "CV", "CPU s/epoch (cores)", "1st epoch s (+compile)",
                  "samples/s", "steps/s", "GFLOP/s", "% of peak", "test acc", "time to target", "2017 K80 s/epoch",
                  "repeats"]


def ran_as_uniform(rows: pd.DataFrame) -> bool:
    return all(rows[c].nunique() <= 1 for c in ("executor", "profile", "data_source", "device"))


def cores_html(row: pd.Series) -> str:
    """CPU seconds per steady epoch and the cores they kept busy; flagged when that swung between epochs."""
    if fmt.missing(row.get("cpu_s")):
        return "-"
    text = f'{fmt.seconds(row["cpu_s"])} <span class="muted">({row["cores_used"]:.2f})</span>'
    return text + ('<span class="flag noisy">cores swung</span>' if row.get("cores_swing") else "")


def _figures(r: pd.Series, then: str) -> list[str]:
    return [
        f'<a href="#{e(r["anchor"])}" title="provenance">{fmt.seconds(r["steady_s"])}</a>',
        interval_html(r), cv_html(r), cores_html(r),
        f'{fmt.seconds(r["first_epoch_s"])} <span class="muted">(+{fmt.seconds(r["compile_s"])})</span>',
        fmt.rate(r["samples_per_s"]), fmt.rate(r["steps_per_s"]), fmt.rate(r["gflops"]), fmt.share(r["peak_share"]),
        fmt.acc(r["test_accuracy"]), ttt_html(r), then,
        e(f"{r['repeats_ok']}/{r['repeats']}" if r["repeats_ok"] != r["repeats"] else r["repeats"]),
    ]


def summary_html(section: Section) -> str:
    """One row per backend; where the test's backends did different work, a `work` column beside the figures
    (accuracy after different training is never shown without the work beside it)."""
    with_device = section.rows["device"].nunique() > 1
    uniform = ran_as_uniform(section.rows)
    works = section.several_works
    header = [*SUMMARY_HEADER[:1], *(["work"] if works else []), *SUMMARY_HEADER[1:], *([] if uniform else
                                                                                      ["ran as"])]
    all_busy = bool(section.rows["busy"].all())  # then ran_line says it once
    rows: list[list[str | tuple[str, int]]] = []
    for _, r in section.rows.iterrows():
        name = label_link(r) + ('<span class="flag busy">busy machine</span>' if r["busy"] and not all_busy else "")
        then = e(next((fmt.then_text(c) for c in section.comparison if c["backend"] == r["backend"]), "-"))
        head = [name, *([e(r["work_text"])] if works else [])]
        tail = [] if uniform else [ran_as_html(r, with_device)]
        if r["repeats_ok"] == 0:
            reason = f'<span class="flag bad">{e(r["status"])}</span> {e(r["error"])}'
            rows.append([*head, (reason, 11), then, e(r["repeats"]), *tail])
        else:
            rows.append([*head, *_figures(r, then), *tail])
    shift = 1 if works else 0
    numeric = {i + shift for i in range(1, 14)} - {2 + shift, 11 + shift}
    return table_html(header, rows, numeric=numeric, wrap=frozenset({11 + shift} | ({1} if works else set())))


def serving_html(section: Section) -> str:
    """Inference and memory beside training speed (docs/concepts/inference-memory.md)."""
    header, rows = serving_table(section.rows)
    if not rows:
        return ""
    body = [[label_link(r), *[e(c) for c in cells]] for r, cells in rows]
    return ("<h3>Serving and memory</h3><p class=\"legend\">Batch-1 latency of <code>predict_on_batch</code> (p50, "
            "p90: medians over repeats, range over repeats in brackets), <code>predict</code> at batch 1, the very "
            "first call (tracing, compilation); throughput of <code>predict</code> over the test split per batch "
            "size; the worker's peak resident set and the framework's GPU peak.</p>"
            + table_html(header, body, numeric=set(range(1, len(header)))))


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
    out = f'<p class="rank"><b>Ranking 2017 (K80)</b> {then}</p>'
    for work, ranked in section.ranking_now or [("", [])]:
        now = ranking_text(ranked, fmt.seconds, e) or "nothing ran"
        label = "<b>Ranking now (steady)</b>" + (f' <span class="muted">{e(work)}:</span>' if section.several_works
                                                 else "")
        out += f'<p class="rank">{label} {now}</p>'
    bases = "; ".join(dict.fromkeys(b for b in section.rows["interval_basis"] if b))
    return out + f'<p class="legend">{e(LEGEND)}. Intervals: {e(bases or "none")}.</p>'


def interval_basis_html(row: pd.Series) -> str:
    return f'<br><span class="muted">{e(row["interval_basis"])}</span>' if row.get("interval_basis") else ""


def figures_html(section: Section) -> str:
    out = []
    captions = {"speed": "Solid: steady s/epoch (median; whiskers: interval). Hatched: first epoch.",
                "accuracy": "Median over repeats per epoch (band: min-max). Solid: validation; dashed: train.",
                "latency": "Batch-1 latency of predict_on_batch: each repeat's calls (dots), the median p50 and p90."}
    for kind in ("speed", "accuracy", "latency"):
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
            + figures_html(section) + summary_html(section) + serving_html(section)
            + "<h3>Beside the 2017 article</h3>" + article_flags_html(section)
            + comparison_html(section) + rankings_html(section) + "</section>")


