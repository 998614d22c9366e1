"""`python -m runner compare RUN_A RUN_B`: did B get slower or less accurate than A, beyond the noise?

Cells are matched on model, backend, environment, profile and data source. Per cell: the ratio of steady s/epoch
(B / A) and the test accuracy delta (B - A). Noise is judged between processes, not between the epochs of one
process: two unchanged runs of one cell on a shared 2-core VM gave 2.95, 2.49 and 2.32 s/epoch (a 0.79x "change")
while each run's epochs varied by 4-7 %.

- Both sides with 2+ repeats (separate processes): the spread is measured, the larger coefficient of variation of
  the per-repeat steady times on either side (or of the epochs within a run, if larger).
- Otherwise the spread between runs is not measured, so it is assumed: `between_run_spread` (default 30 %; the
  largest drift seen between unchanged runs here was 27 %), or the larger within-run CV or measured between-repeat
  CV of either side if bigger.
- A ratio past 1 + threshold + spread (or below its inverse) is "slower" (a regression) or "faster"; past the
  threshold but inside the spread it is "inconclusive", never a verdict.
- A cell also regresses when it lost more accuracy than `acc_threshold` plus the larger spread of test accuracy
  over repeats, or ran in A but failed in B.

Runs on different hardware are refused unless `allow_mixed` (pyperf's rule: never compare silently across
metadata); versions may differ (that is what one compares) and are shown.

Exit status: 0 no conclusive regression, 1 a conclusive regression, 2 bad input (nothing comparable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import BadInput
from common.stats import between_run_cv
from common.work import describe_difference
from reports import fmt
from reports.article import load_article
from reports.load import CELL_KEYS, load_runs
from reports.markdown import md_table
from reports.tables import summary_table

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


class CompareError(BadInput):
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


DEFAULT_BETWEEN_RUN_SPREAD = 0.30  # assumed run-to-run drift when a side has a single repeat (see the docstring)


def _noise(*values: Any) -> float:
    vals = [float(v) for v in values if not fmt.missing(v)]
    return max(vals) if vals else 0.0


def judge_ratio(ratio: float, a_runs: list[float], b_runs: list[float], within_cv: list[Any], threshold: float,
                between_run_spread: float, worse: str, better: str) -> dict[str, Any]:
    """B/A of a figure where higher is worse, judged against the spread between runs: measured over the repeats
    when both sides have 2 or more (the larger CV of per-repeat figures, or of the epochs, if larger), else assumed.
    `verdict` is "", `worse`, `better` or "inconclusive (...)"; `regression` only for a conclusive `worse`."""
    out: dict[str, Any] = {"ratio": ratio, "noise": None, "noise_kind": "", "verdict": "", "regression": False}
    direction = worse if ratio > 1 + threshold else better if ratio < 1 / (1 + threshold) else ""
    measured = _noise(*within_cv, between_run_cv(a_runs), between_run_cv(b_runs))
    if len(a_runs) >= 2 and len(b_runs) >= 2:
        noise, kind = measured, f"measured over {len(a_runs)}+{len(b_runs)} repeats"
    else:
        noise = max(between_run_spread, measured)
        kind = "measured" if measured > between_run_spread else "assumed between runs"
    out.update(noise=noise, noise_kind=kind)
    band = threshold + noise
    conclusive = ratio > 1 + band or ratio < 1 / (1 + band)
    if direction:
        out["verdict"] = direction if conclusive else f"inconclusive ({direction}, within the between-run spread)"
        out["regression"] = direction == worse and conclusive
    return out


def judge_speed(a: pd.Series, b: pd.Series, threshold: float, between_run_spread: float) -> dict[str, Any]:
    """B/A of steady s/epoch (see judge_ratio)."""
    return judge_ratio(b["steady_s"] / a["steady_s"], list(a["repeat_steady_s"]), list(b["repeat_steady_s"]),
                       [a["cv"], b["cv"]], threshold, between_run_spread, "slower", "faster")


# the serving figures compare judges as it judges steady epochs: (column, higher is worse, worse, better)
SERVING = (("latency_p50_ms", True, "latency up", "latency down"),
           ("peak_rss_mb", True, "more memory", "less memory"),
           ("gpu_peak_mb", True, "more GPU memory", "less GPU memory"))


def judge_serving(a: pd.Series, b: pd.Series, threshold: float, between_run_spread: float) -> list[dict[str, Any]]:
    """Batch-1 p50 latency, peak memory and throughput at the largest batch both measured, each as a verdict."""
    out = []
    for column, _, worse, better in SERVING:
        if fmt.missing(a.get(column)) or fmt.missing(b.get(column)) or not a[column]:
            continue
        judged = judge_ratio(b[column] / a[column], list(a.get(f"repeat_{column}") or []),
                             list(b.get(f"repeat_{column}") or []), [], threshold, between_run_spread, worse, better)
        out.append({"figure": column, **judged})
    common = sorted(set(a.get("throughput") or {}) & set(b.get("throughput") or {}))
    if common:
        batch = common[-1]
        ratio = a["throughput"][batch] / b["throughput"][batch]  # time per sample: higher is worse
        judged = judge_ratio(ratio, [], [], [], threshold, between_run_spread, f"throughput @ {batch} down",
                             f"throughput @ {batch} up")
        out.append({"figure": f"throughput_{batch}", **judged})
    return out


def compare_pair(a: pd.Series, b: pd.Series, threshold: float, acc_threshold: float,
                 between_run_spread: float = DEFAULT_BETWEEN_RUN_SPREAD) -> dict[str, Any]:
    row: dict[str, Any] = {"cell": _name(_key(a)), "model": a["model"], "backend": a["backend"],
                           "a_s": a["steady_s"], "b_s": b["steady_s"], "ratio": None, "noise": None,
                           "noise_kind": "", "a_acc": a["test_accuracy"], "b_acc": b["test_accuracy"],
                           "acc_delta": None, "acc_noise": None, "verdict": "", "regression": False, "notes": []}
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
        speed = judge_speed(a, b, threshold, between_run_spread)
        row.update({k: speed[k] for k in ("ratio", "noise", "noise_kind")})
        if speed["verdict"]:
            verdicts.append(speed["verdict"])
        row["regression"] = speed["regression"]
        if not speed["noise_kind"].startswith("measured over"):
            row["notes"].append("one repeat on a side: run --repeats 3 on both for a measured interval")
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
    for judged in judge_serving(a, b, threshold, between_run_spread):
        if judged["verdict"]:
            verdicts.append(f"{judged['verdict']} ({judged['ratio']:.2f}x)")
        row["regression"] = row["regression"] or judged["regression"]
    if a["versions"] != b["versions"]:
        row["notes"].append(f"versions {a['versions']} -> {b['versions']}")
    if a["busy"] or b["busy"]:
        row["notes"].append("machine busy in " + " and ".join(n for n, r in (("A", a), ("B", b)) if r["busy"]))
    row["verdict"] = ", ".join(verdicts) or "within noise"
    return row


def check_same_work(a_rows: dict, b_rows: dict, common: list[tuple], allow: bool) -> list[str]:
    """Cells whose work differs between the runs: refused (CompareError naming the field), or warnings."""
    differ = [f"{_name(k)}: {describe_difference([a_rows[k]['work'], b_rows[k]['work']])}" for k in common
              if a_rows[k]["repeats_ok"] and b_rows[k]["repeats_ok"]
              and a_rows[k]["work_text"] != b_rows[k]["work_text"]]
    if differ and not allow:
        raise CompareError(f"the runs did different work in {len(differ)} cell(s) ({'; '.join(differ)}); seconds per "
                           "epoch of different work are not comparable. Rerun one side with the other's profile, or "
                           "pass --allow-different-work to compare anyway (labelled as such).")
    return [f"DIFFERENT WORK: {d}" for d in differ]


def compare_runs(a_dirs: list[Path], b_dirs: list[Path], threshold: float = 0.05, acc_threshold: float = 0.01,
                 allow_mixed: bool = False, between_run_spread: float = DEFAULT_BETWEEN_RUN_SPREAD,
                 allow_different_work: bool = False) -> Comparison:
    if threshold < 0 or acc_threshold < 0 or between_run_spread < 0:
        raise CompareError("thresholds and the between-run spread must not be negative")
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
    out.warnings += check_same_work(a_rows, b_rows, common, allow_different_work)
    for k in common:
        out.rows.append(compare_pair(a_rows[k], b_rows[k], threshold, acc_threshold, between_run_spread))
    return out


HEADER = ["cell", "A s/epoch", "B s/epoch", "B/A", "judged against", "A acc", "B acc", "acc delta", "verdict",
          "notes"]


def noise_text(r: dict[str, Any]) -> str:
    return "-" if r["noise"] is None else f"±{r['noise'] * 100:.1f} % ({r['noise_kind']})"


def table_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for r in comparison.rows:
        rows.append([
            r["cell"], fmt.seconds(r["a_s"]), fmt.seconds(r["b_s"]), fmt.ratio(r["ratio"]),
            noise_text(r),
            fmt.acc(r["a_acc"]), fmt.acc(r["b_acc"]),
            "-" if r["acc_delta"] is None else f"{r['acc_delta']:+.4f}",
            ("REGRESSION: " if r["regression"] else "") + r["verdict"],
            "; ".join(r["notes"]),
        ])
    return rows


def summary_line(comparison: Comparison) -> str:
    n = len(comparison.rows)
    reg = len(comparison.regressions)
    unsure = sum(r["verdict"].startswith("inconclusive") for r in comparison.rows)
    return (f"{n} cell(s) compared: {reg} regression(s) beyond noise, {unsure} inconclusive" + (
        f"; only in A: {len(comparison.only_a)}" if comparison.only_a else "") + (
        f"; only in B: {len(comparison.only_b)}" if comparison.only_b else ""))


def render_markdown(comparison: Comparison, a_name: str, b_name: str, threshold: float) -> str:
    lines = [f"### {b_name} compared with {a_name}", ""]
    lines += [f"> [!CAUTION]\n> {w}\n" for w in comparison.warnings]
    lines += md_table(HEADER, table_rows(comparison))
    lines += ["", f"{summary_line(comparison)}. A cell regresses when B/A exceeds 1 + {threshold:g} + the spread "
                  "between runs: measured over the repeats (the larger CV of per-repeat times) when both sides have "
                  "2 or more, else assumed (or the measured CV, if larger). A change past the threshold but inside "
                  "that spread is inconclusive."]
    for what, cells in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        if cells:
            lines.append(f"- {what}: {', '.join(cells)}")
    return "\n".join(lines) + "\n"
