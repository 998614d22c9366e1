"""The report's first table: every test at a glance, one row per test and work, bold only where it is true.

Seconds per epoch rank only epochs of the same work. So a test whose backends did different work (the quick
profile gives the 2017 stacks a smaller slice) gets one row per work, each row's heading saying what an epoch
trained and validated, and the bold figure is the fastest of that row: a backend is never called fastest against
a backend that did less. Across works the one fair unit is the training time per sample with the validation pass
taken out; those tests get a second table in that unit, with the difference named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from common.display import display_key
from common.ranking import Ranked, first_place, rank
from common.work import describe_difference
from reports.article import Article
from reports.tables import entry


@dataclass
class GlanceRow:
    model: str
    title: str
    work_text: str  # what each epoch of this row's backends trained and validated
    values: dict[str, float]  # backend label -> steady s/epoch (or µs per sample)
    best: set[str] = field(default_factory=set)  # the first place: the best and those overlapping its interval
    ranked: list[Ranked] = field(default_factory=list)  # common.ranking's letters; empty below two entries
    basis: str = ""  # what the row's intervals measure (common.ranking.interval_basis)


@dataclass
class Glance:
    labels: list[str]  # the columns, in common.display's order (Keras 3, native twins, 2017 stacks)
    rows: list[GlanceRow]  # steady s/epoch, one row per test and work
    per_sample: list[GlanceRow]  # tests whose backends did different work: µs per training sample
    differences: dict[str, str]  # test -> what differs between its works

    def several_works(self, model: str) -> bool:
        return model in self.differences

    def legend(self) -> str:
        """What the first table's bold and letters mean, and which interval decided them (HTML and Markdown)."""
        bases = "; ".join(dict.fromkeys(r.basis for r in self.rows if r.basis)) or "none"
        return ("Lower is better; one row per test and work (what an epoch trained and validated). Bold: the "
                "fastest of the row, and any backend whose interval overlaps the fastest's own. Letters: backends "
                "sharing one cannot be told apart (a: the fastest's group). Different work is never ranked "
                f"together. Intervals: {bases}.")


def _title(article: Article, model: str, rows: pd.DataFrame) -> str:
    return article.tests[model].title if model in article.tests else str(rows["model_title"].iloc[0])


def _row(model: str, title: str, work: str, group: pd.DataFrame) -> GlanceRow:
    values = {r["label"]: float(r["steady_s"]) for _, r in group.iterrows()}
    ranked = rank([entry(r) for _, r in group.iterrows()]) if len(group) > 1 else []
    basis = "; ".join(dict.fromkeys(b for b in group["interval_basis"] if b)) if "interval_basis" in group else ""
    return GlanceRow(model, title, work, values, first_place(ranked), ranked, basis)


def _per_sample_row(model: str, title: str, rows: pd.DataFrame) -> GlanceRow | None:
    known = rows.dropna(subset=["train_us_per_sample"])
    if len(known) < 2:
        return None
    values = {r["label"]: float(r["train_us_per_sample"]) for _, r in known.iterrows()}
    fastest = min(values.values())
    return GlanceRow(model, title, "µs per training sample, validation pass excluded", values,
                     {label for label, v in values.items() if v == fastest})


def labels(ok: pd.DataFrame) -> list[str]:
    """Every label once, by its backend's display order (a backend missing from the first test keeps its place)."""
    if not len(ok):
        return []
    keys = {}
    for i, r in enumerate(ok.itertuples()):
        keys.setdefault(r.label, (display_key(r.backend, r.driver, r.keras_version), i))
    return sorted(keys, key=keys.__getitem__)


def glance(table: pd.DataFrame, article: Article) -> Glance:
    ok = table.dropna(subset=["steady_s"]) if not table.empty else table
    out = Glance(labels(ok), [], [], {})
    for model in dict.fromkeys(ok["model"]) if len(ok) else []:
        rows = ok[ok["model"] == model]
        title = _title(article, model, rows)
        works = []
        for work, group in rows.groupby("work_text", sort=False):
            out.rows.append(_row(model, title, work, group))
            works.append(group["work"].iloc[0])
        if len(works) > 1:
            out.differences[model] = describe_difference(works)
            per_sample = _per_sample_row(model, title, rows)
            if per_sample is not None:
                out.per_sample.append(per_sample)
    return out
