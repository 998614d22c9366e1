"""The article's two views per test, as PNG (for the page and Markdown) and SVG (for print): seconds per epoch by
backend, and accuracy against epoch (train and validation). One colour per backend in every figure.

Matplotlib with the Agg backend: no display, no fonts or scripts fetched from anywhere.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from common.display import color_of  # noqa: E402
from reports import fmt  # noqa: E402

FIGSIZE = (6.4, 3.6)
color = color_of  # one colour per backend in every figure: matrix.yaml's, through common/display.py


CROWDED = 5  # more bars than this: tilted labels, so "TensorFlow (native)" and its neighbours do not overlap


def _tilt(ax, crowded: bool) -> None:
    if crowded:
        ax.tick_params(axis="x", labelsize=8)
        for label in ax.get_xticklabels():
            label.set(rotation=30, ha="right", rotation_mode="anchor")


def _save(fig: Figure, out_dir: Path, stem: str) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, kwargs in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, bbox_inches="tight", **kwargs)
        paths[ext] = path.name
    plt.close(fig)
    return paths


def speed_figure(rows: pd.DataFrame, title: str) -> Figure:
    """Steady s/epoch (median, whiskers: the interval) beside the first epoch (compilation included)."""
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    rows = rows.dropna(subset=["steady_s"])
    width = 0.38
    xs = range(len(rows))
    top = 0.0
    crowded = len(rows) > CROWDED  # the Keras 3 backends, their twins and the 2017 stacks side by side
    for x, r in zip(xs, rows.itertuples(), strict=True):
        c = color(r.backend)
        err = [[r.steady_s - r.steady_lo], [r.steady_hi - r.steady_s]] if r.interval != "single" else None
        ax.bar(x - width / 2, r.steady_s, width, color=c, yerr=err, capsize=3, ecolor="#333333")
        ax.bar(x + width / 2, r.first_epoch_s or 0, width, color=c, alpha=0.35, hatch="//", edgecolor=c)
        noisy = ("*" if crowded else " (noisy)") if r.noisy else ""
        ax.annotate(fmt.seconds(r.steady_s) + noisy, (x - width / 2, r.steady_hi), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=7 if crowded else 8)
        ax.annotate(fmt.seconds(r.first_epoch_s), (x + width / 2, r.first_epoch_s or 0), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=8, color="#555555")
        top = max(top, r.steady_hi, r.first_epoch_s or 0)
    ax.set_xticks(list(xs), [r.label for r in rows.itertuples()])
    _tilt(ax, crowded)
    pad = max(0.0, (3 - len(rows)) / 2)  # at least three slots wide: a lone backend keeps slim bars
    ax.set_xlim(-0.6 - pad, len(rows) - 0.4 + pad)
    ax.set_ylabel("seconds per epoch")
    ax.set_ylim(0, top * 1.18 or 1)
    ax.set_title(f"{title}: seconds per epoch (lower is better)", fontsize=10, loc="left")
    steady = "steady epoch (median; whiskers: interval" + ("; * noisy)" if crowded else ")")
    key = [Patch(color="#777777", label=steady),
           Patch(facecolor="#77777759", hatch="//", edgecolor="#777777", label="first epoch (compilation included)")]
    fig.legend(handles=key, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def accuracy_figure(rows: pd.DataFrame, epochs: pd.DataFrame, title: str, target: float | None) -> Figure:
    """Per backend, the median over repeats at each epoch (band: min-max over repeats): validation solid, train
    dashed."""
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    handles: list[Artist] = []
    for r in rows.itertuples():
        mine = epochs[(epochs["backend"] == r.backend) & (epochs["environment"] == r.environment)
                      & (epochs["profile"] == r.profile) & (epochs["data_source"] == r.data_source)]
        if mine.empty:
            continue
        c = color(r.backend)
        handles.append(Line2D([], [], color=c, lw=6, label=r.label))
        for column, style in (("val_accuracy", "-"), ("accuracy", "--")):
            per_epoch = mine.groupby("epoch")[column].agg(["median", "min", "max"]).dropna()
            if per_epoch.empty:
                continue
            ax.plot(per_epoch.index, per_epoch["median"], style, color=c, marker="o" if style == "-" else None,
                    markersize=3)
            if r.repeats_ok > 1:
                ax.fill_between(per_epoch.index, per_epoch["min"], per_epoch["max"], color=c, alpha=0.12, lw=0)
    best = epochs[["accuracy", "val_accuracy"]].max().max() if not epochs.empty else None
    if target is not None and best is not None and best >= target - 0.1:  # a far-off line would flatten the curves
        ax.axhline(target, color="#999999", lw=0.8, ls=":")
        ax.annotate(f"target {target:g}", (1, target), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", fontsize=8, color="#777777")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{title}: accuracy by epoch (solid: validation, dashed: train)", fontsize=10, loc="left")
    handles += [Line2D([], [], color="#444444", marker="o", markersize=3, label="validation"),
                Line2D([], [], color="#444444", ls="--", label="train")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def latency_figure(rows: pd.DataFrame, title: str) -> Figure:
    """Batch-1 latency per backend: every timed call of every repeat (dots), the median p50 (bar) and p90 (tick)."""
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    rows = rows[rows["latency_p50_ms"].notna()]
    rng = np.random.default_rng(0)  # the jitter only spreads the dots; the same every build
    for x, r in enumerate(rows.itertuples()):
        c = color(r.backend)
        samples = np.asarray(r.latency_samples_ms or [], dtype=float)
        if samples.size:
            ax.scatter(x + rng.uniform(-0.18, 0.18, samples.size), samples, s=4, color=c, alpha=0.35, lw=0)
        ax.hlines(r.latency_p50_ms, x - 0.3, x + 0.3, color=c, lw=2.5)
        if r.latency_p90_ms is not None:
            ax.hlines(r.latency_p90_ms, x - 0.15, x + 0.15, color=c, lw=1.2, ls="--")
        ax.annotate(f"{r.latency_p50_ms:.3g} ms", (x + 0.32, r.latency_p50_ms), fontsize=8, va="center")
    ax.set_xticks(range(len(rows)), list(rows["label"]))
    _tilt(ax, len(rows) > CROWDED)
    ax.set_xlim(-0.6, max(len(rows), 3) - 0.4)
    if len(rows) and rows["latency_p90_ms"].max() > 20 * rows["latency_p50_ms"].min():
        ax.set_yscale("log")
    ax.set_ylabel("ms per call (batch 1)")
    ax.set_title(f"{title}: inference latency, batch 1 (lower is better)", fontsize=10, loc="left")
    key = [Line2D([], [], color="#444444", lw=2.5, label="p50 (median over repeats)"),
           Line2D([], [], color="#444444", lw=1.2, ls="--", label="p90"),
           Line2D([], [], color="#444444", marker="o", ls="", markersize=3, alpha=0.5, label="each call")]
    fig.legend(handles=key, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def test_figures(model: str, title: str, rows: pd.DataFrame, epochs: pd.DataFrame, target: float | None,
                 out_dir: Path) -> dict[str, dict[str, str]]:
    """Both figures of one test; returns {"speed": {"png": name, "svg": name}, "accuracy": {...}}."""
    figures = {}
    if rows["steady_s"].notna().any():
        figures["speed"] = _save(speed_figure(rows, title), out_dir, f"{model}-speed")
    if not epochs.empty:
        figures["accuracy"] = _save(accuracy_figure(rows, epochs, title, target), out_dir, f"{model}-accuracy")
    if "latency_p50_ms" in rows and rows["latency_p50_ms"].notna().any():
        figures["latency"] = _save(latency_figure(rows, title), out_dir, f"{model}-latency")
    return figures
