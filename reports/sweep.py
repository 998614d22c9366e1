"""The variant sweep: per test and backend, the fastest variant, the default's distance from it, and a flag on a
default more than 10 % slower than the best.

Built from the report's summary rows (one per test x backend x environment x variant, repeats pooled), so the
sweep and the report cannot disagree. "Best" is the lowest median steady s/epoch; the default is the variant that
was its environment's default when the cells ran (recorded in each spec). A slower default is flagged only where
its interval does not overlap the best's (common.ranking's first place, the rule of every ranking): within the
noise, the sweep says "tie", not a verdict.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from common.ranking import first_place, rank
from reports import fmt
from reports.tables import entry

SLOWER_THAN_BEST = 0.10  # a default more than this much slower than its best variant is flagged
GROUP_KEYS = ["model", "backend", "environment", "profile", "data_source", "work_text"]  # variants of one work


def sweep_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per test x backend x environment that ran more than one variant."""
    if table.empty or "variant" not in table:
        return []
    ok = table.dropna(subset=["steady_s"])
    out = []
    for _, group in ok.groupby(GROUP_KEYS, sort=False, dropna=False):
        if group["variant"].nunique() < 2:
            continue
        best = group.loc[group["steady_s"].idxmin()]
        defaults = group[group["variant_default"]]
        default = defaults.iloc[0] if len(defaults) else None
        row: dict[str, Any] = {k: best[k] for k in GROUP_KEYS}
        row.update(
            model_title=best["model_title"],
            backend_title=best["backend_title"],
            variants=len(group),
            best_variant=best["variant"],
            best_s=float(best["steady_s"]),
            best_changes_numerics=bool(best["changes_numerics"]),
            default_variant=None if default is None else default["variant"],
            default_s=None if default is None else float(default["steady_s"]),
            # does the variant that trains fastest serve slower? the batch-1 p50 of both
            best_p50_ms=_p50(best), default_p50_ms=None if default is None else _p50(default),
        )
        if default is None:
            row.update(ratio=None, tie=False, flag=False, verdict="no default variant in this run")
        else:
            ratio = row["default_s"] / row["best_s"]
            # common.ranking's first place: the best and the variants whose interval overlaps the best's own
            first = first_place(rank([entry(r) for _, r in group.iterrows()]))
            tie = default["variant"] != best["variant"] and default["label"] in first
            flag = ratio > 1 + SLOWER_THAN_BEST and not tie
            row.update(ratio=ratio, tie=tie, flag=flag, verdict=verdict(row, ratio, tie, flag))
        out.append(row)
    return out


def _p50(row: pd.Series) -> float | None:
    value = row.get("latency_p50_ms")
    return None if fmt.missing(value) else float(value)


def latency_text(row: dict[str, Any]) -> str:
    """The best variant's batch-1 p50 against the default's: a variant that trains faster may serve slower."""
    best, default = row.get("best_p50_ms"), row.get("default_p50_ms")
    if best is None or default is None:
        return "-"
    if row["best_variant"] == row["default_variant"]:
        return f"{best:.3g}"
    return f"{best:.3g} / {default:.3g} ({best / default - 1:+.0%})"


def verdict(row: dict[str, Any], ratio: float, tie: bool, flag: bool) -> str:
    numerics = " (it changes numerics)" if row["best_changes_numerics"] else ""
    if row["default_variant"] == row["best_variant"]:
        return "the default is the fastest"
    if flag:
        return f"SLOWER: the default takes {ratio - 1:.0%} longer than {row['best_variant']}{numerics}"
    if tie:
        return f"tie: the default's interval overlaps {row['best_variant']}'s ({ratio - 1:+.0%})"
    return f"within {SLOWER_THAN_BEST:.0%} of {row['best_variant']} ({ratio - 1:+.0%})"


HEADER = ["test", "backend", "environment", "variants", "best variant", "best s/epoch", "default", "default s/epoch",
          "default / best", "verdict", "p50 ms best / default"]


def table_cells(row: dict[str, Any]) -> list[str]:
    best = row["best_variant"] + (" (changes numerics)" if row["best_changes_numerics"] else "")
    return [row["model_title"], row["backend_title"], row["environment"], str(row["variants"]), best,
            fmt.seconds(row["best_s"]), row["default_variant"] or "-", fmt.seconds(row["default_s"]),
            "-" if row["ratio"] is None else f"{row['ratio']:.2f}", row["verdict"], latency_text(row)]


def print_sweep(run_dir, console) -> list[dict[str, Any]]:
    """The sweep table of a run, on the console (what `python -m runner sweep` ends with)."""
    from rich.table import Table

    from reports.article import load_article
    from reports.load import load_runs
    from reports.tables import summary_table

    rows = sweep_rows(summary_table(load_runs([run_dir]), load_article()))
    if not rows:
        console.print("sweep: no test x backend ran more than one variant with a steady time", highlight=False)
        return rows
    out = Table(title=f"variants sweep (default flagged when > {SLOWER_THAN_BEST:.0%} slower than its best)",
                title_justify="left")
    for col in HEADER:
        out.add_column(col)
    for r in rows:
        out.add_row(*table_cells(r), style="red" if r["flag"] else None)
    console.print(out)
    return rows
