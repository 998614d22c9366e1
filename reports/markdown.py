"""The Markdown summary: fit for a README or a PR comment. Same content and digits as index.html, fewer columns;
each backend name links to its provenance in index.html."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.ranking import LEGEND, ranking_text
from reports import fmt
from reports.caveats import Caveat, worst_level
from reports.content import Report, Section
from reports.glance import GlanceRow
from reports.serving import serving_table
from reports.sweep import HEADER as SWEEP_HEADER
from reports.sweep import SLOWER_THAN_BEST, table_cells
from reports.tax import markdown_lines as tax_lines

ALERT = {"danger": "CAUTION", "warn": "WARNING", "info": "NOTE"}


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: Iterable[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def caveat_lines(caveats: list[Caveat]) -> list[str]:
    out = []
    for c in caveats:
        out += [f"> [!{ALERT[c.level]}]", f"> **{c.title}**: {c.text}", ""]
    return out


def caveats_box_lines(caveats: list[Caveat]) -> list[str]:
    """The one box near the top: each kind once, its count or cause, a link to its full text below."""
    if not caveats:
        return []
    return [f"> [!{ALERT[worst_level(caveats)]}]", f"> **Caveats ({len(caveats)})**, in full under "
            "[Caveats in detail](#caveats-in-detail):", *(f"> - {c.line}" for c in caveats), ""]


def then_figure(section: Section, backend: str) -> str:
    for entry in section.comparison:
        if entry["backend"] == backend:
            return fmt.then_text(entry)
    return "-"


SUMMARY_HEADER = ["backend", "steady s/epoch", "interval", "CV", "CPU s/epoch (cores)", "1st epoch s", "compile s",
                  "samples/s", "steps/s", "GFLOP/s", "% of peak", "test acc", "time to target", "2017 K80 s/epoch",
                  "repeats", "ran as"]


def summary_header(section: Section) -> list[str]:
    """The summary's columns; with a `work` column where the test's backends did different work."""
    return [SUMMARY_HEADER[0], *(["work"] if section.several_works else []), *SUMMARY_HEADER[1:]]


def summary_rows(section: Section) -> list[list[object]]:
    with_device = section.rows["device"].nunique() > 1
    out = []
    for _, r in section.rows.iterrows():
        name = [f"[{r['label']}](index.html#{r['anchor']})", *([r["work_text"]] if section.several_works else [])]
        if r["repeats_ok"] == 0:
            out.append([*name, f"{r['status']}: {r['error']}", *["-"] * 12, r["repeats"], fmt.ran_as(r, with_device)])
            continue
        out.append([
            *name,
            fmt.seconds(r["steady_s"]),
            " ".join(x for x in (fmt.interval(r["steady_lo"], r["steady_hi"], r["interval"]),
                                 r.get("interval_basis") or "") if x),
            fmt.cv_text(r),
            fmt.cores_text(r),
            fmt.seconds(r["first_epoch_s"]),
            fmt.seconds(r["compile_s"]),
            fmt.rate(r["samples_per_s"]),
            fmt.rate(r["steps_per_s"]),
            fmt.rate(r["gflops"]),
            fmt.share(r["peak_share"]),
            fmt.acc(r["test_accuracy"]),
            fmt.ttt(r),
            then_figure(section, r["backend"]),
            f"{r['repeats_ok']}/{r['repeats']}" if r["repeats_ok"] != r["repeats"] else str(r["repeats"]),
            fmt.ran_as(r, with_device),
        ])
    return out


def ranking_then_text(section: Section) -> str:
    items = [f"{i}. {title} {fmt.published(f.s_per_epoch, f.approx)}"
             for i, (title, f) in enumerate(section.ranking_then, 1)]
    text = " · ".join(items) or "no figures"
    if section.unranked_then:
        text += " (not ranked: " + "; ".join(f"{t}: {why}" for t, why in section.unranked_then) + ")"
    return text


def ranking_now_lines(section: Section) -> list[str]:
    """One line per work: rows of different work are never ranked together."""
    out = []
    for work, ranked in section.ranking_now or [("", [])]:
        label = f"Ranking now (steady s/epoch{'; ' + work if section.several_works else ''})"
        out.append(f"- **{label}:** {ranking_text(ranked, fmt.seconds) or 'nothing ran'}")
    bases = "; ".join(dict.fromkeys(b for b in section.rows["interval_basis"] if b)) or "none"
    return [*out, f"- {LEGEND}. Intervals: {bases}."]


def serving_lines(section: Section) -> list[str]:
    header, rows = serving_table(section.rows)
    if not rows:
        return []
    body = [[f"[{r['label']}](index.html#{r['anchor']})", *cells] for r, cells in rows]
    return ["Serving and memory (batch-1 latency of predict_on_batch, p50 and p90 over repeats with their range; "
            "predict() over the test split per batch size; peak resident set; the framework's GPU peak):", "",
            *md_table(header, body), ""]


COMPARISON_HEADER = ["backend", "2017 K80 s/epoch", "2017 accuracy", "2017 framework", "now steady s/epoch",
                     "now article-style s/epoch", "now / 2017", "now test acc"]


def comparison_lines(section: Section) -> list[str]:
    rows = []
    for e in section.comparison:
        rows.append([
            e["label"],
            fmt.then_text(e),
            fmt.published(e["then_accuracy"], e["then_accuracy_approx"]),
            e["then_config"] or "-",
            fmt.seconds(e["now_steady_s"]),
            fmt.seconds(e["now_article_s"]),
            fmt.ratio(e["ratio"]) if section.comparable else "not comparable",
            fmt.acc(e["now_accuracy"]),
        ])
    return md_table(COMPARISON_HEADER, rows)


def section_lines(section: Section, report: Report) -> list[str]:
    out = [f"## {section.title} (`{section.model}`)", ""]
    out += caveat_lines(section.caveats)
    devices = sorted(set(section.rows.loc[section.rows["repeats_ok"] > 0, "device"]))
    target = f"; time to target: validation accuracy {section.target:g}" if section.target else ""
    ran = f"Ran on {' / '.join(devices)}" if devices else "No repeat finished"
    out += [f"{ran}. Steady = median of the epochs after the first, over all "
            f"repeats{target}.", ""]
    for kind in ("speed", "accuracy", "latency"):
        if kind in section.figures:
            out += [f"![{section.title}: {kind}](plots/{section.figures[kind]['png']})", ""]
    out += md_table(summary_header(section), summary_rows(section)) + [""]
    out += serving_lines(section)
    flags = f" **{', '.join(section.article_flags)}** (see [the 2017 comparison](#the-2017-comparison))" \
        if section.article_flags else ""
    out += [f"Beside the 2017 article (K80 GPU, full data, the article's epochs):{flags}", ""]
    out += comparison_lines(section) + [""]
    out += [f"- **Ranking 2017 (K80, s/epoch):** {ranking_then_text(section)}", *ranking_now_lines(section), ""]
    return out


def render(report: Report) -> str:
    """The answer first (verdicts, then the glance table), then one caveats box, then the details."""
    ok = report.ok_rows
    out = [f"# Keras Backend Matrix report: {report.name}", ""]
    out += [f"- **{v.head}:** {v.text}" for v in report.verdicts] + ([""] if report.verdicts else [])
    glanced = not ok.empty and report.glance is not None and report.glance.rows
    if glanced:
        out += ["## At a glance: steady seconds per epoch", ""]
        out += glance_lines(report, report.glance.rows, fmt.seconds) + [""]
        out += [report.glance.legend(), ""]
    out += caveats_box_lines(report.caveats)
    runs = ", ".join(report.run_ids)
    n_results = sum(int(r) for r in report.table["repeats"]) if not report.table.empty else 0
    out += [f"Run(s) {runs}; {n_results} results in {len(report.table)} test x backend cells; generated "
            f"{report.generated_at}. "
            "Full report with provenance: [index.html](index.html); every epoch: "
            "[data/epochs.csv](data/epochs.csv).", ""]
    if glanced:
        if report.glance.per_sample:
            out += ["Across different work: microseconds per training sample, validation pass excluded "
                    "(**bold**: the fastest). What differs: " + "; ".join(
                        f"{r.title}: {report.glance.differences[r.model]}" for r in report.glance.per_sample) + ".",
                    ""]
            out += glance_lines(report, report.glance.per_sample, fmt.rate) + [""]
    out += sweep_lines(report.sweep)
    out += tax_lines(report.tax)
    for section in report.sections:
        out += section_lines(section, report)
    if report.caveats:
        out += ["## Caveats in detail", "", *caveat_lines(report.caveats)]
    if report.sections:
        out += ["## The 2017 comparison", ""]
        out += caveat_lines(report.article_caveats)
        out += [f"Source: {report.article.citation()} Figures transcribed in `reports/article_2017.yaml`, each "
                "with the notebook run it was read from (`docs/article-2017.md`).", ""]
    return "\n".join(out).rstrip() + "\n"


def glance_lines(report: Report, rows: list[GlanceRow], unit) -> list[str]:
    g = report.glance
    body = []
    for row in rows:
        head = row.title + (f" ({row.work_text})" if g.several_works(row.model) or unit is not fmt.seconds else "")
        cells: list[object] = [head]
        letters = {r.label: r.letters for r in row.ranked}
        for label in g.labels:
            value = row.values.get(label)
            text = unit(value) if value is not None else ""
            text = f"**{text}**" if label in row.best else text
            cells.append(text + (f" {letters[label]}" if label in letters else ""))
        body.append(cells)
    return md_table(["test", *g.labels], body)


def sweep_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    flagged = sum(r["flag"] for r in rows)
    out = ["## Variants sweep: each backend's best variant and the default's distance", "",
           f"Steady s/epoch (median, repeats pooled). A default more than {SLOWER_THAN_BEST:.0%} slower than its best "
           f"variant, with intervals apart, is flagged SLOWER ({flagged} of {len(rows)}); overlapping intervals are a "
           "tie.", ""]
    return out + md_table(SWEEP_HEADER, [table_cells(r) for r in rows]) + [""]
