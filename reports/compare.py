"""`python -m runner compare RUN_A RUN_B`: did B get slower or less accurate than A, beyond the noise?

Cells are matched on model, backend, environment, profile and data source. Per cell: the ratio of steady s/epoch
(B / A) and the test accuracy delta (B - A). A cell regresses when it got slower by more than `threshold` plus its
measured noise (the larger coefficient of variation of its steady epochs in either run), or lost more accuracy than
`acc_threshold` plus the larger spread of test accuracy over repeats, or ran in A but failed in B.
Runs on different hardware are refused unless `allow_mixed` (pyperf's rule: never compare silently across
metadata); versions may differ (that is what one compares) and are shown.

Exit status: 0 no significant regression, 1 a regression beyond noise, 2 bad input (nothing comparable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports import fmt
from reports.article import load_article
from reports.load import CELL_KEYS, load_runs
from reports.markdown import md_table
from reports.tables import summary_table

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


class CompareError(ValueError):
    """Input that cannot be compared (missing folders, no results, mixed hardware without --allow-mixed)."""


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["regression"]]

    @property
    def exit_status(self) -> int:
        return EXIT_REGRESSION if self.regressions else EXIT_OK


def _table(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    for d in run_dirs:
        if not Path(d).is_dir():
            raise CompareError(f"{d}: not a run folder")
    loaded = load_runs(run_dirs)
    table = summary_table(loaded, load_article())
    if table.empty:
        raise CompareError(f"{', '.join(map(str, run_dirs))}: no readable results")
    return table, loaded.problems


def _key(row: pd.Series) -> tuple:
    return tuple(row[k] for k in CELL_KEYS)


def _name(key: tuple) -> str:
    return " ".join(str(k) for k in key)


def _noise(a: Any, b: Any) -> float:
    vals = [float(v) for v in (a, b) if not fmt.missing(v)]
    return max(vals) if vals else 0.0


def compare_pair(a: pd.Series, b: pd.Series, threshold: float, acc_threshold: float) -> dict[str, Any]:
    row: dict[str, Any] = {"cell": _name(_key(a)), "model": a["model"], "backend": a["backend"],
                           "a_s": a["steady_s"], "b_s": b["steady_s"], "ratio": None, "noise": None,
                           "a_acc": a["test_accuracy"], "b_acc": b["test_accuracy"], "acc_delta": None,
                           "acc_noise": None, "verdict": "", "regression": False, "notes": []}
    a_ok, b_ok = a["repeats_ok"] > 0, b["repeats_ok"] > 0
    if a_ok and not b_ok:
        row.update(verdict=f"broke: {b['status']}", regression=True)
        row["notes"].append(str(b["error"]))
        return row
    if not a_ok:
        row["verdict"] = "fixed" if b_ok else f"not run in either ({a['status']})"
        return row
    verdicts = []
    if not fmt.missing(a["steady_s"]) and not fmt.missing(b["steady_s"]):
        ratio = b["steady_s"] / a["steady_s"]
        noise = _noise(a["cv"], b["cv"])
        band = threshold + noise
        row.update(ratio=ratio, noise=noise)
        if ratio > 1 + band:
            verdicts.append("slower")
            row["regression"] = True
        elif ratio < 1 / (1 + band):
            verdicts.append("faster")
        if fmt.missing(a["cv"]) or fmt.missing(b["cv"]):
            row["notes"].append("no noise estimate (fewer than 2 steady epochs)")
    if not fmt.missing(a["test_accuracy"]) and not fmt.missing(b["test_accuracy"]):
        delta = b["test_accuracy"] - a["test_accuracy"]
        acc_noise = _noise(a["test_accuracy_sd"], b["test_accuracy_sd"])
        row.update(acc_delta=delta, acc_noise=acc_noise)
        if "synthetic" in (a["data_source"], b["data_source"]):
            row["notes"].append("synthetic data: accuracy not judged")
        elif delta < -(acc_threshold + acc_noise):
            verdicts.append("less accurate")
            row["regression"] = True
        elif delta > acc_threshold + acc_noise:
            verdicts.append("more accurate")
    if a["versions"] != b["versions"]:
        row["notes"].append(f"versions {a['versions']} -> {b['versions']}")
    if a["busy"] or b["busy"]:
        row["notes"].append("machine busy in " + " and ".join(n for n, r in (("A", a), ("B", b)) if r["busy"]))
    row["verdict"] = ", ".join(verdicts) or "within noise"
    return row


def compare_runs(a_dirs: list[Path], b_dirs: list[Path], threshold: float = 0.05, acc_threshold: float = 0.01,
                 allow_mixed: bool = False) -> Comparison:
    if threshold < 0 or acc_threshold < 0:
        raise CompareError("thresholds must not be negative")
    a, problems_a = _table(a_dirs)
    b, problems_b = _table(b_dirs)
    a_rows = {_key(r): r for _, r in a.iterrows()}
    b_rows = {_key(r): r for _, r in b.iterrows()}
    common = [k for k in a_rows if k in b_rows]
    if not common:
        raise CompareError("the runs have no cell in common (model, backend, environment, profile, data source)")
    out = Comparison(rows=[], problems=[*problems_a, *problems_b])
    out.only_a = [_name(k) for k in a_rows if k not in b_rows]
    out.only_b = [_name(k) for k in b_rows if k not in a_rows]
    mixed = sorted({f"{a_rows[k]['device']} vs {b_rows[k]['device']}" for k in common
                    if a_rows[k]["repeats_ok"] and b_rows[k]["repeats_ok"]
                    and a_rows[k]["device"] != b_rows[k]["device"]})
    if mixed and not allow_mixed:
        raise CompareError(f"the runs ran on different hardware ({'; '.join(mixed)}); their times are not "
                           "comparable. Pass --allow-mixed to compare anyway (labelled as such).")
    if mixed:
        out.warnings.append(f"MIXED HARDWARE: {'; '.join(mixed)}: ratios compare different machines")
    for k in common:
        out.rows.append(compare_pair(a_rows[k], b_rows[k], threshold, acc_threshold))
    return out


HEADER = ["cell", "A s/epoch", "B s/epoch", "B/A", "noise", "A acc", "B acc", "acc delta", "verdict", "notes"]


def table_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for r in comparison.rows:
        rows.append([
            r["cell"], fmt.seconds(r["a_s"]), fmt.seconds(r["b_s"]), fmt.ratio(r["ratio"]),
            "-" if r["noise"] is None else f"±{r['noise'] * 100:.1f} %",
            fmt.acc(r["a_acc"]), fmt.acc(r["b_acc"]),
            "-" if r["acc_delta"] is None else f"{r['acc_delta']:+.4f}",
            ("REGRESSION: " if r["regression"] else "") + r["verdict"],
            "; ".join(r["notes"]),
        ])
    return rows


def summary_line(comparison: Comparison) -> str:
    n = len(comparison.rows)
    reg = len(comparison.regressions)
    return (f"{n} cell(s) compared: {reg} regression(s) beyond noise" + (
        f"; only in A: {len(comparison.only_a)}" if comparison.only_a else "") + (
        f"; only in B: {len(comparison.only_b)}" if comparison.only_b else ""))


def render_markdown(comparison: Comparison, a_name: str, b_name: str, threshold: float) -> str:
    lines = [f"### {b_name} compared with {a_name}", ""]
    lines += [f"> [!CAUTION]\n> {w}\n" for w in comparison.warnings]
    lines += md_table(HEADER, table_rows(comparison))
    lines += ["", f"{summary_line(comparison)}. A cell regresses when B/A exceeds 1 + {threshold:g} + noise "
                  "(the larger coefficient of variation of its steady epochs in A or B)."]
    for what, cells in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        if cells:
            lines.append(f"- {what}: {', '.join(cells)}")
    return "\n".join(lines) + "\n"
