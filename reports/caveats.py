"""What a reader must know before trusting a comparison, said loudly: mixed hardware, profiles or data sources,
synthetic data, a busy machine, noisy cells, failures, unreadable files, and how far the 2017 figures are from ours.

Each caveat is data (level, title, text); HTML and Markdown render the same list, so neither can forget one.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from common.results import BUSY_THRESHOLD
from common.stats import NOISY_CV
from common.work import describe_difference
from reports.article import Article
from reports.tables import CORES_SWING

REAL_SOURCES = {"keras-cache", "download", "offline-wheel"}


@dataclass(frozen=True)
class Caveat:
    level: str  # "danger": comparisons across it are not valid; "warn": figures are suspect; "info"
    title: str
    text: str
    summary: str = ""  # its line in the one caveats box at the top (a count, or the cause); default: text, cut

    @property
    def line(self) -> str:
        """`NOISY CELLS: 18 cells`: what the caveats box says of it; the full text is in the detail below."""
        return f"{self.title}: {self.summary or textwrap.shorten(self.text, 110, placeholder=' ...')}"


LEVELS = ("danger", "warn", "info")


def worst_level(caveats: list[Caveat]) -> str:
    return min((c.level for c in caveats), key=LEVELS.index, default="info")


def cells(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''}"


def _counted(values: pd.Series) -> str:
    return "; ".join(f"{v} ({n} cell{'s' if n > 1 else ''})" for v, n in Counter(values).most_common())


def data_kind(source: str) -> str:
    return "synthetic" if source == "synthetic" else "real" if source in REAL_SOURCES else source


def mixed(rows: pd.DataFrame, scope: str) -> list[Caveat]:
    """Rows that a table puts side by side but that did not run alike."""
    out = []
    ok = rows[rows["repeats_ok"] > 0]
    for column, what in (("device", "hardware"), ("profile", "profiles"), ("executor", "executors")):
        if ok[column].nunique() > 1:
            out.append(Caveat("danger", f"MIXED {what.upper()}",
                              f"{scope} compares rows that ran on different {what}: {_counted(ok[column])}. "
                              "Their times are not comparable with each other."))
    kinds = ok["data_source"].map(data_kind)
    if kinds.nunique() > 1:
        out.append(Caveat("danger", "MIXED DATA SOURCES",
                          f"{scope} mixes real and synthetic data: {_counted(ok['data_source'])}."))
    for backend, group in ok.groupby("backend"):
        if group["versions"].nunique() > 1:
            out.append(Caveat("warn", "MIXED VERSIONS", f"{scope}: {backend} ran with {_counted(group['versions'])}."))
    return out


def different_work(rows: pd.DataFrame, scope: str) -> list[Caveat]:
    """A test whose backends did different work: its figures are ranked per work, never across."""
    ok = rows[rows["repeats_ok"] > 0]
    works = [group["work"].iloc[0] for _, group in ok.groupby("work_text", sort=False)]
    if len(works) < 2:
        return []
    by_work = "; ".join(f"{', '.join(dict.fromkeys(g['label']))}: {w}" for w, g in ok.groupby("work_text", sort=False))
    return [Caveat("warn", "DIFFERENT WORK", f"{scope} holds backends that trained and validated different amounts "
                   f"per epoch ({describe_difference(works)}): {by_work}. Seconds per epoch, rankings and ties are "
                   "given per work only; across works compare the training time per sample (validation excluded).")]


def report_caveats(table: pd.DataFrame, problems: list[str], runs: dict[str, dict]) -> list[Caveat]:
    out = mixed(table, "This report") if not table.empty else []
    if table.empty:
        return [Caveat("danger", "NO RESULTS", "No readable result was found in the run folder(s).")]
    several = [m for m, rows in table[table["repeats_ok"] > 0].groupby("model", sort=False)
               if rows["work_text"].nunique() > 1]
    if several:
        names = ", ".join(dict.fromkeys(table.loc[table["model"].isin(several), "model_title"]))
        out.append(Caveat("warn", "DIFFERENT WORK", f"In {len(several)} test(s) ({names}) the backends did not all "
                          "train the same samples per epoch (a profile's per-backend slices): each work is its own row "
                          "at a glance and its own ranking; the bold figure is the fastest of its row only. Across "
                          "works, the per-sample table below compares training time per sample, validation excluded.",
                          f"{len(several)} test(s), each work ranked apart"))
    synthetic = table[table["data_source"] == "synthetic"]
    if len(synthetic):
        out.append(Caveat("danger", "SYNTHETIC DATA",
                          f"{len(synthetic)} cell(s) trained on random data of the real shapes: their accuracies mean "
                          "nothing; only their speed does.", cells(len(synthetic))))
    busy = table[table["busy"]]
    if len(busy):
        out.append(Caveat("warn", "MACHINE BUSY",
                          f"{len(busy)} cell(s) ran while other processes used more than {BUSY_THRESHOLD:.0%} of the "
                          f"CPU ({', '.join(sorted(set(busy['label'])))}): their times are suspect (backends suffer "
                          "unequally). Rerun on a quiet machine.", cells(len(busy))))
    if "version_warnings" in table:
        pinned = table[table["version_warnings"].fillna("") != ""]
        if len(pinned):
            out.append(Caveat("warn", "VERSIONS DIFFER FROM THE PINS",
                              f"{len(pinned)} cell(s) ran in an existing interpreter (--python) whose versions differ "
                              "from matrix.yaml's pins: " + "; ".join(dict.fromkeys(pinned["version_warnings"])) + "."))
    noisy = table[table["noisy"]]
    if len(noisy):
        out.append(Caveat("warn", "NOISY CELLS",
                          f"{len(noisy)} cell(s) have steady epochs varying more than {NOISY_CV:.0%} (coefficient of "
                          "variation): " + ", ".join(f"{r.model} x {r.label}" for r in noisy.itertuples()) + ".",
                          cells(len(noisy))))
    swung = table[table["cores_swing"]] if "cores_swing" in table else table.iloc[0:0]
    if len(swung):
        out.append(Caveat("warn", "CORES USED SWUNG BETWEEN EPOCHS",
                          f"{len(swung)} cell(s) kept a different number of cores busy from one epoch to the next "
                          f"(CPU seconds per wall second varied more than {CORES_SWING:.0%}): "
                          + ", ".join(f"{r.model} x {r.label} ({r.cores_lo:.2f}-{r.cores_hi:.2f} cores)"
                                      for r in swung.itertuples())
                          + ". The same work ran on fewer cores in some epochs (threads starved, a core taken by the "
                          "hypervisor or another process, a framework that serialised): their wall times moved for "
                          "a reason outside the model. Rerun on a quiet machine, or with --repeats 3.",
                          cells(len(swung))))
    single = table[(table["repeats_ok"] > 0) & (table["n_steady"] < 2)]
    if len(single):
        out.append(Caveat("warn", "NO SPREAD",
                          f"{len(single)} cell(s) have fewer than two steady epochs: no interval, no noise figure. "
                          "Run more epochs or --repeats.", cells(len(single))))
    out.extend(not_run(table[table["status"] != "ok"]))
    for p in problems:
        out.append(Caveat("warn", "UNREADABLE RESULT (skipped)", p))
    methods = sorted({m for m in table["cpu_peak_method"].dropna() if m})
    if methods:
        out.append(Caveat("info", "CPU PEAK ESTIMATED",
                          "A CPU's share of peak divides achieved GFLOP/s by an estimate, not a measurement: usable "
                          "cores x clock x FP32 FLOP per cycle from the vector extensions /proc/cpuinfo lists (turbo "
                          "and frequency drops under vector load are not counted). " + "; ".join(methods) + ".",
                          "achieved GFLOP/s are shared against an estimated peak"))
    dirty = [rid for rid, run in runs.items() if run.get("git_dirty")]
    if dirty:
        out.append(Caveat("info", "UNCOMMITTED CODE",
                          f"run(s) {', '.join(dirty)} ran from a tree with uncommitted changes."))
    return out


def not_run(bad: pd.DataFrame) -> list[Caveat]:
    """One caveat per distinct reason (six cells skipped for one missing dataset are one box), naming its cells."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in bad.itertuples():
        groups.setdefault((r.status, (r.error or r.status).strip()), []).append(f"{r.model} x {r.label}")
    out = []
    for (status, reason), names in groups.items():
        short = textwrap.shorten(reason.splitlines()[0], 110, placeholder=" ...")
        if len(names) == 1:
            out.append(Caveat("warn", f"{status.upper()}: {names[0]}", reason, short))
        else:
            out.append(Caveat("warn", f"{status.upper()}: {len(names)} cells", f"{reason} Cells: {', '.join(names)}.",
                              short))
    return out


def comparable_to_article(rows: pd.DataFrame) -> bool:
    """The 2017 ratio is shown only for the same work per epoch: the article profile on real data."""
    ok = rows[rows["repeats_ok"] > 0]
    return bool(len(ok)) and set(ok["profile"]) == {"article"} and set(ok["data_source"].map(data_kind)) == {"real"}


def article_caveats(rows: pd.DataFrame, article: Article) -> list[Caveat]:
    """Why our numbers and the 2017 ones differ, before anyone reads a ratio."""
    ok = rows[rows["repeats_ok"] > 0]
    hw = article.hardware
    out = []
    if ok.empty:  # nothing finished: nothing is compared, so nothing to warn about
        return out
    devices = sorted(set(ok["device"]))
    if any(hw.match not in d for d in devices):
        out.append(Caveat("danger", "DIFFERENT HARDWARE",
                          f"2017: {hw.device} ({hw.peak_fp32_tflops} TFLOP/s FP32), {hw.name}. "
                          f"Now: {'; '.join(devices)}."))
    profiles = sorted(set(ok["profile"]) - {"article"})
    if profiles:
        out.append(Caveat("danger", "NOT THE SAME WORK",
                          f"Profile {', '.join(profiles)} trains fewer samples and epochs than the article "
                          "(full data, 20/12/50/5/40 epochs). The 2017 figures are shown for reference; no ratio."))
    if (ok["data_source"] == "synthetic").any():
        out.append(Caveat("danger", "SYNTHETIC DATA", "Synthetic rows are never compared with the article."))
    out.append(Caveat("info", "HOW 2017 TIMED",
                      "The article's s/epoch is %timeit around the whole model.fit / epochs: building the training "
                      "function, first-epoch compilation, every epoch's validation pass and a tqdm progress bar "
                      "included. Our 'article-style' column is the wall time around our whole fit call / epochs "
                      "(build, compilation and validation included, no progress bar; Keras 2.0.8 and 1.2.2 build "
                      "their training function before the first epoch, Keras 3 inside it: both are counted). Our "
                      "steady s/epoch is the median of the epochs after the first (validation included, build and "
                      "compilation excluded)."))
    return out
