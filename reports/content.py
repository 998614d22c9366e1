"""Everything a report shows, assembled once (tables, caveats, rankings, figures) and rendered twice, as HTML and
Markdown, so the two cannot disagree."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.ranking import Ranked
from reports import plots
from reports.article import Article, Figure
from reports.caveats import Caveat, article_caveats, comparable_to_article, different_work, mixed, report_caveats
from reports.glance import Glance, glance
from reports.load import Loaded
from reports.sweep import sweep_rows
from reports.tables import comparison_rows, model_order, ranking_now, summary_table
from reports.tax import TaxRow, tax_rows
from reports.verdict import Verdict, verdicts


@dataclass
class Section:
    """One test (model): its rows, figures, 2017 comparison and rankings."""

    model: str
    title: str
    rows: pd.DataFrame
    figures: dict[str, dict[str, str]]
    caveats: list[Caveat]
    comparable: bool
    comparison: list[dict[str, Any]]
    ranking_then: list[tuple[str, Figure]]
    unranked_then: list[tuple[str, str]]
    ranking_now: list[tuple[str, list[Ranked]]]  # per work: lettered where the intervals overlap (common.ranking)
    target: float | None
    article_flags: list[str]  # the danger titles of the 2017 comparison, shown where the comparison is

    @property
    def anchor(self) -> str:
        return f"test-{self.model}"

    @property
    def several_works(self) -> bool:
        """The test's backends did different work: tables group by work, rankings are per work."""
        return self.rows["work_text"].nunique() > 1


@dataclass
class Report:
    name: str
    run_ids: list[str]
    runs: dict[str, dict[str, Any]]
    table: pd.DataFrame
    epochs: pd.DataFrame
    caveats: list[Caveat]
    article_caveats: list[Caveat]
    sections: list[Section]
    article: Article
    raw: dict[str, Path]
    glance: Glance | None = None  # the first table: per test and work
    sweep: list[dict[str, Any]] = field(default_factory=list)  # where a test x backend ran several variants
    tax: list[TaxRow] = field(default_factory=list)  # Keras against its native twin (reports/tax.py)
    verdicts: list[Verdict] = field(default_factory=list)  # the first lines: per test and work, the answer
    generated_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))

    @property
    def ok_rows(self) -> pd.DataFrame:
        return self.table[self.table["repeats_ok"] > 0] if not self.table.empty else self.table


def build_section(model: str, rows: pd.DataFrame, epochs: pd.DataFrame, article: Article,
                  plot_dir: Path) -> Section:
    test = article.tests.get(model)
    title = test.title if test else str(rows["model_title"].iloc[0])
    mine = epochs[epochs["model"] == model]
    target = test.target_accuracy if test else None
    comparable = comparable_to_article(rows)
    return Section(
        model=model,
        title=title,
        rows=rows,
        figures=plots.test_figures(model, title, rows, mine, target, plot_dir),
        caveats=mixed(rows, f"The {title} table") + different_work(rows, f"The {title} table"),
        comparable=comparable,
        comparison=comparison_rows(rows, article, comparable),
        ranking_then=[(article.backend_title(b), f) for b, f in test.ranking()] if test else [],
        unranked_then=[(article.backend_title(b), f.text or "no figure") for b, f in test.figures.items()
                       if f.s_per_epoch is None] if test else [],
        ranking_now=ranking_now(rows),
        target=target,
        article_flags=[c.title for c in article_caveats(rows, article) if c.level == "danger"],
    )


def assemble(name: str, loaded: Loaded, article: Article, out_dir: Path) -> Report:
    table = summary_table(loaded, article)
    overview, tax = glance(table, article), tax_rows(loaded)
    sections = []
    if not table.empty:
        for model in model_order(article, list(table["model"])):
            rows = table[table["model"] == model]
            sections.append(build_section(model, rows, loaded.epochs, article, out_dir / "plots"))
    return Report(
        name=name,
        run_ids=loaded.run_ids,
        runs=loaded.runs,
        table=table,
        epochs=loaded.epochs,
        caveats=report_caveats(table, loaded.problems, loaded.runs),
        article_caveats=article_caveats(table, article) if not table.empty else [],
        sections=sections,
        article=article,
        raw=loaded.raw,
        glance=overview,
        sweep=sweep_rows(table),
        tax=tax,
        verdicts=verdicts(overview, table, tax),
    )
