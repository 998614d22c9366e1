"""From tidy frames to the report's tables: one summary row per test x backend, and the 2017 comparison.

A summary row pools the repeats of a cell (separate processes) and reports the median of their steady epochs
(those after the first) with an interval, the first epoch on its own, throughput, achieved FLOP/s, accuracy,
time to a target accuracy and how it ran. Rows and figures share one order: the article's tests, then backends in
common.display's order (Keras 3, the native twins, the 2017 stacks).
"""

from __future__ import annotations

import hashlib
import re
import statistics
from typing import Any

import pandas as pd

from common.display import display_key, display_order
from common.ranking import Entry, Ranked, rank, ranking_spread
from common.results import Status
from common.stats import time_to_target
from reports.article import Article
from reports.load import CELL_KEYS, Loaded
from reports.serving import serving

TERMINAL = ("failed", "timeout", "skipped")
GROUP_KEYS = [*CELL_KEYS, "work_text"]  # a summary row: one cell identity doing one work, its repeats pooled
CORES_SWING = 0.25  # cores used (CPU s / wall s) varying more than this share of its median between epochs


def anchor(*parts: str) -> str:
    """An HTML id made of the parts (stable across builds, so links to a cell can be shared)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "--".join(parts))


def model_order(article: Article, models: list[str]) -> list[str]:
    known = [m for m in article.tests if m in models]
    return known + sorted(m for m in set(models) if m not in article.tests)


def _one(values: pd.Series) -> str:
    """A column that should be the same across repeats; several values are shown, never hidden."""
    uniq = [str(v) for v in dict.fromkeys(values.dropna()) if str(v)]
    return " / ".join(uniq)


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.median()) if len(values) else None


def _identity(cells: pd.DataFrame) -> dict[str, Any]:
    """What every repeat of the group shares: the cell's identity, how it ran, its work."""
    first = cells.iloc[0]
    ok = cells[cells["status"] == Status.ok.value]
    row: dict[str, Any] = {k: first[k] for k in GROUP_KEYS}
    row.update(
        model_title=first["model_title"],
        backend_title=first["backend_title"],
        family=first["family"] if "family" in cells else first["backend"],
        driver=first["driver"] if "driver" in cells else "keras",
        keras_version=_one(cells["keras"]) if "keras" in cells else "",
        jit_compile=_one(cells["jit_compile"].astype("string")) if "jit_compile" in cells else "",
        anchor=anchor("cell", *(str(first[k]) for k in CELL_KEYS),
                      hashlib.sha256(str(first["work_text"]).encode()).hexdigest()[:6]),
        work=first["work"],
        repeats=len(cells),
        repeats_ok=len(ok),
        status=Status.ok.value if len(ok) == len(cells) else _one(cells.loc[cells["status"] != Status.ok.value,
                                                                             "status"]),
        error=_one(cells["error"]),
        executor=_one(cells["executor"]),
        device=_one(cells["device"]),
        cpu_peak_method=_one(cells["cpu_peak_method"]) or None,
        versions=", ".join(v for v in (_one(cells["keras"]) and f"Keras {_one(cells['keras'])}",
                                        _one(cells["framework"])) if v),
        busy=bool(cells["busy"].any()),
        version_warnings=_one(cells["version_warnings"]) if "version_warnings" in cells else "",
        result_keys=list(cells["result_key"]),
        variant_default=bool(cells["variant_default"].all()) if "variant_default" in cells else True,
        changes_numerics=bool(cells["changes_numerics"].any()) if "changes_numerics" in cells else False,
        seeds=sorted({int(s) for s in cells["seed"]}),
    )
    return row


def _speed(ok: pd.DataFrame, epochs: pd.DataFrame) -> dict[str, Any]:
    """Steady epochs (repeats pooled) with their interval, noise, and the figures derived from them."""
    steady = epochs.loc[epochs["steady"].astype(bool)]
    per_repeat = [float(v) for v in ok["steady_epoch_s"].dropna()]
    ranked = ranking_spread(per_repeat, list(steady["wall_s"]))
    sp, basis = ranked if ranked else (None, "")
    steady_s = sp.median if sp else None
    samples, steps = _median(ok["train_samples"]), _median(ok["steps_per_epoch"])
    flop, peak = _median(ok["flop_per_epoch"]), _median(ok["peak_tflops"])
    gflops = flop / steady_s / 1e9 if flop and steady_s else None
    return dict(
        steady_s=steady_s, steady_lo=sp.lo if sp else None, steady_hi=sp.hi if sp else None,
        # the interval rankings use, and what it measures (between runs with 3+ repeats, else epochs)
        interval=sp.kind if sp else "", interval_basis=basis, n_steady=len(steady), cv=sp.cv if sp else None,
        noisy=bool(sp and sp.noisy), rel_noise=sp.rel_halfwidth if sp else None,
        # one steady figure per repeat (process): what compare judges run-to-run noise by
        repeat_steady_s=per_repeat,
        first_epoch_s=_median(ok["first_epoch_s"]), compile_s=_median(ok["compile_s"]),
        # the article's way: wall time around the whole fit / epochs, the like-for-like 2017 column
        article_epoch_s=_median(ok["article_epoch_s"]), build_fn_s=_median(ok["build_fn_s"]),
        train_samples=samples, val_samples=_median(ok["val_samples"]),
        samples_per_s=samples / steady_s if samples and steady_s else None,
        steps_per_s=steps / steady_s if steps and steady_s else None,
        flop_per_epoch=flop, gflops=gflops, peak_tflops=peak,
        peak_share=gflops / (peak * 1e3) if gflops and peak else None,
        val_s=_median(steady["val_s"]) if steady["val_s"].notna().any() else None,
        train_us_per_sample=_median(ok["train_us_per_sample"]),
        **cores_used(steady),
    )


def cores_used(steady: pd.DataFrame) -> dict[str, Any]:
    """CPU time per wall second of each steady epoch: how many cores the framework kept busy. When that swings
    between epochs (threads starved, a core lost to the hypervisor, a framework that serialised), the wall times
    moved for a reason outside the model, and the cell is flagged `cores_swing` whatever its CV says."""
    ratios = [c / w for c, w in zip(steady["cpu_s"], steady["wall_s"], strict=True) if w > 0]
    if not ratios:
        return {"cpu_s": None, "cores_used": None, "cores_lo": None, "cores_hi": None, "cores_swing": False}
    mid = statistics.median(ratios)
    return {"cpu_s": _median(steady["cpu_s"]), "cores_used": mid, "cores_lo": min(ratios), "cores_hi": max(ratios),
            "cores_swing": len(ratios) >= 2 and mid > 0 and (max(ratios) - min(ratios)) / mid > CORES_SWING}


def _accuracy(ok: pd.DataFrame, epochs: pd.DataFrame, target: float | None) -> dict[str, Any]:
    reached, best = [], []
    for _, run in epochs.groupby("cell_id"):
        run = run.sort_values("epoch")
        vals = [None if pd.isna(v) else float(v) for v in run["val_accuracy"]]
        best.extend(v for v in vals if v is not None)
        if target is not None:
            t = time_to_target(list(run["wall_s"]), vals, target)
            if t is not None:
                reached.append(t)
    return dict(
        target_accuracy=target,
        test_accuracy=_median(ok["test_accuracy"]),
        test_accuracy_sd=float(ok["test_accuracy"].std()) if ok["test_accuracy"].notna().sum() >= 2 else None,
        ttt_s=float(pd.Series(reached).median()) if reached else None,
        ttt_reached=len(reached),
        best_val_accuracy=max(best) if best else None,
        final_val_accuracy=_median(epochs.loc[epochs["epoch"] == epochs["epoch"].max(), "val_accuracy"])
        if len(epochs) else None,
    )


def summarise_group(cells: pd.DataFrame, epochs: pd.DataFrame, article: Article) -> dict[str, Any]:
    """One summary row: a cell's repeats (separate processes) pooled."""
    ok = cells[cells["status"] == Status.ok.value]
    row = _identity(cells)
    test = article.tests.get(row["model"])
    row.update(_speed(ok, epochs))
    row.update(_accuracy(ok, epochs, test.target_accuracy if test else None))
    row.update(serving(ok))
    return row


def summary_table(loaded: Loaded, article: Article) -> pd.DataFrame:
    """One row per model x backend x environment x profile x data source, in report order."""
    cells = loaded.cells
    if cells.empty:
        return pd.DataFrame()
    epochs = loaded.epochs.copy()
    epochs["result_key"] = epochs["run_id"] + "/" + epochs["cell_id"]
    rows = []
    for _, group in cells.groupby(GROUP_KEYS, sort=False, dropna=False):
        rows.append(summarise_group(group, epochs[epochs["result_key"].isin(group["result_key"])], article))
    table = pd.DataFrame(rows)
    m_order = {m: i for i, m in enumerate(model_order(article, list(table["model"])))}
    table["_m"] = table["model"].map(m_order)
    keys = [display_key(b, d, k) for b, d, k in zip(table["backend"], table["driver"], table["keras_version"],
                                                    strict=True)]
    table["_b"] = [sorted(set(keys)).index(k) for k in keys]
    table = table.sort_values(["_m", "_b", "environment", "variant", "profile", "data_source", "work_text"]).drop(
        columns=["_m", "_b"])
    table["label"] = _labels(table)
    return table.reset_index(drop=True)


def _labels(table: pd.DataFrame) -> list[str]:
    """The backend's title, plus what tells two rows of one test apart when it has several of that backend."""
    labels = []
    for _, row in table.iterrows():
        same = table[(table["model"] == row["model"]) & (table["backend"] == row["backend"])]
        extra = [row[k] for k in ("environment", "variant", "profile", "data_source") if same[k].nunique() > 1]
        if same["work_text"].nunique() > 1:
            extra.append(f"{int(row['train_samples'] or 0):,} samples/epoch")
        labels.append(row["backend_title"] + (f" ({', '.join(extra)})" if extra else ""))
    return labels


def entry(row: pd.Series) -> Entry:
    return Entry(row["label"], float(row["steady_s"]), float(row["steady_lo"]), float(row["steady_hi"]))


def ranking_now(rows: pd.DataFrame) -> list[tuple[str, list[Ranked]]]:
    """Per work (the test's rows that did the same work), its rows with a steady time, fastest first, lettered by
    common.ranking (entries share a letter only where their intervals overlap). Rows of different work are never
    ranked together."""
    ok = rows.dropna(subset=["steady_s"])
    return [(work, rank([entry(r) for _, r in group.iterrows()]))
            for work, group in ok.groupby("work_text", sort=False)]


def comparison_rows(rows: pd.DataFrame, article: Article, comparable: bool) -> list[dict[str, Any]]:
    """Each backend of a test, 2017 beside now: the article's figure, ours (steady and the article's way), and the
    ratio only when the work per epoch is the same (article profile, real data)."""
    model = rows["model"].iloc[0]
    test = article.tests.get(model)
    figures = test.figures if test else {}
    out = []
    backends = display_order(list(figures) + list(rows["backend"]))
    for backend in backends:
        ours = rows[rows["backend"] == backend]
        fig = figures.get(article.figure_key(backend))
        entries = [ours.iloc[i] for i in range(len(ours))] or [None]
        for r in entries:
            then = fig.s_per_epoch if fig else None
            now_article = None if r is None else r["article_epoch_s"]
            out.append({
                "backend": backend,
                "label": r["label"] if r is not None else article.backend_title(backend),
                "then_s": then,
                "then_approx": bool(fig and fig.approx),
                "then_text": fig.text if fig else None,
                "then_accuracy": fig.accuracy if fig else None,
                "then_accuracy_approx": bool(fig and fig.accuracy_approx),
                "then_config": (article.configurations[article.figure_key(backend)].framework
                                if article.figure_key(backend) in article.configurations else None),
                "now_steady_s": None if r is None else r["steady_s"],
                "now_article_s": now_article,
                "now_accuracy": None if r is None else r["test_accuracy"],
                "now_versions": None if r is None else r["versions"],
                "ratio": (now_article / then) if comparable and then and now_article else None,
                "anchor": None if r is None else r["anchor"],
            })
    return out
