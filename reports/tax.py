"""The Keras tax: per test and framework, Keras on that framework against the framework alone (its native twin,
models/native/), on the same work in the same environment, eager and compiled on both sides.

Four settings per test and framework: Keras eager (Keras 3's default: PyTorch eager; on TensorFlow a tf.function
graph without XLA, what "auto" gives a CPU), Keras compiled (jit_compile: torch.compile, XLA), and the same two
for the twin; JAX always jit-compiles, so its one setting sits under "compiled". A setting's figure is the fastest
variant that ran it (variants that change the numerics left out): its steady s/epoch, the median of the steady
epochs of all its repeats (separate processes) pooled, with the interval the summary tables use (95 % order
statistics interval of the median from 6 steady epochs, else min-max).

The tax is best Keras setting / best native setting. It is taken apart where the runs hold the cells for it
(`--variant native-host-feed` on the twins): the twin as it ships keeps the training set on the device and gathers
each batch there (the compiled step); the host-fed twin gathers each batch in NumPy and copies it per step, as
Keras feeds arrays, so host-fed less device-fed is what feeding costs, and Keras less the host-fed twin is what
Keras adds beyond feeding (its per-step work: callbacks, iterators, dispatch). Beside each side, the host's CPU
seconds per training step (the steady epochs' process CPU time over their training steps).

The tax's interval divides the two intervals' ends crosswise (Keras low / native high .. Keras high / native
low): conservative, and it holds 1 exactly when the two intervals overlap, which is called a tie, as the rankings
do. Only cells of the same model, environment, profile, data source
and work (common/work.py) are divided; a side that did not run is said, never filled in from other work.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape

import pandas as pd

from common.display import display_key, model_key
from common.stats import spread
from reports import fmt
from reports.load import Loaded

SETTINGS = (("keras", False), ("keras", True), ("native", False), ("native", True))
SETTING_TITLES = {("keras", False): "Keras eager", ("keras", True): "Keras compiled",
                  ("native", False): "native eager", ("native", True): "native compiled"}
GROUP = ("model", "environment", "profile", "data_source", "work_key")


@dataclass
class Side:
    """One setting's fastest variant: its pooled steady epochs and what they reached."""

    backend_title: str
    variant: str
    steady_s: float
    lo: float
    hi: float
    interval: str  # "95% CI", "min-max" or "single"
    repeats: int
    peak_share: float | None
    busy: bool
    cpu_s_per_step: float | None = None  # process CPU seconds per training step (steady epochs, all threads)


@dataclass
class TaxRow:
    model: str
    model_title: str
    framework: str  # the Keras side's title (TensorFlow, JAX, PyTorch)
    family: str
    environment: str
    profile: str
    data_source: str
    work_text: str
    sides: dict[tuple[str, bool], Side] = field(default_factory=dict)
    host_fed: Side | None = None  # the best twin fed from the host per step (variant native-host-feed)
    busy: bool = False
    other_cpu_share: float | None = None

    def best(self, driver: str) -> Side | None:
        found = [s for (d, _), s in self.sides.items() if d == driver]
        return min(found, key=lambda s: s.steady_s) if found else None

    @property
    def tax(self) -> tuple[float, float, float] | None:
        """(best Keras / best native, low, high), or None where a side is missing."""
        keras, native = self.best("keras"), self.best("native")
        if keras is None or native is None:
            return None
        return keras.steady_s / native.steady_s, keras.lo / native.hi, keras.hi / native.lo

    @property
    def tie(self) -> bool:
        tax = self.tax
        return tax is not None and tax[1] <= 1.0 <= tax[2]

    @property
    def parts(self) -> dict[str, float] | None:
        """The tax taken apart in s/epoch: the twin's compiled step, what host feeding adds to it, what Keras adds
        beyond feeding; None without a host-fed twin of the same work."""
        keras, native = self.best("keras"), self.best("native")
        if keras is None or native is None or self.host_fed is None:
            return None
        return {"step": native.steady_s, "feeding": self.host_fed.steady_s - native.steady_s,
                "keras": keras.steady_s - self.host_fed.steady_s}

    @property
    def verdict(self) -> str:
        keras, native = self.best("keras"), self.best("native")
        if keras is None or native is None:
            return f"no {'Keras' if keras is None else 'native'} cell of this work ran: no tax"
        ratio, lo, hi = self.tax
        if self.tie:
            return f"tie: the intervals overlap ({ratio:.2f}x)"
        if ratio > 1:
            return f"Keras takes {ratio:.2f}x the framework's time"
        return f"Keras is faster: {ratio:.2f}x the framework's time"


def _side(cells: pd.DataFrame, steady: dict[str, list[tuple[float, float]]]) -> Side | None:
    epochs = [e for k in cells["result_key"] for e in steady.get(k, [])]
    sp = spread([wall for wall, _ in epochs])
    if sp is None:
        return None
    first = cells.iloc[0]
    flop, peak = cells["flop_per_epoch"].dropna(), cells["peak_tflops"].dropna()
    share = (float(flop.median()) / sp.median / (float(peak.median()) * 1e12)) if len(flop) and len(peak) else None
    steps = cells["steps_per_epoch"].dropna()
    cpu = statistics.median(c for _, c in epochs) / float(steps.median()) if len(steps) else None
    return Side(first["backend_title"], first["variant"], sp.median, sp.lo, sp.hi, sp.kind, len(cells), share,
                bool(cells["busy"].any()), cpu)


def _steady_epochs(loaded: Loaded) -> dict[str, list[tuple[float, float]]]:
    """result key -> (wall s, process CPU s) of its steady epochs (those after the first)."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    epochs = loaded.epochs[loaded.epochs["steady"]]
    for run_id, cell_id, wall, cpu in zip(epochs["run_id"], epochs["cell_id"], epochs["wall_s"], epochs["cpu_s"],
                                          strict=True):
        if not pd.isna(wall):
            out[f"{run_id}/{cell_id}"].append((float(wall), float(cpu)))
    return out


def _best(group: pd.DataFrame, steady: dict[str, list[tuple[float, float]]]) -> Side | None:
    """The fastest backend x variant of these cells, pooled over repeats."""
    sides = [_side(cells, steady) for _, cells in group.groupby(["backend", "variant"], sort=False)]
    sides = [s for s in sides if s is not None]
    return min(sides, key=lambda s: s.steady_s) if sides else None


def _row(key: tuple, group: pd.DataFrame, steady: dict[str, list[tuple[float, float]]]) -> TaxRow:
    keras = group[group["driver"] == "keras"]
    first = (keras if len(keras) else group).iloc[0]
    row = TaxRow(model=key[0], model_title=first["model_title"],
                 framework=str(first["backend_title"]).removesuffix(" (native)"),
                 family=first["family"], environment=key[1], profile=key[2], data_source=key[3],
                 work_text=first["work_text"], busy=bool(group["busy"].any()),
                 other_cpu_share=float(group["other_cpu_share"].max()) if group["other_cpu_share"].notna().any()
                 else None)
    host_fed = group["twin_feed"] == "host"
    for setting in SETTINGS:
        driver, compiled = setting
        mine = group[(group["driver"] == driver) & (group["jit_compile"].fillna(False).astype(bool) == compiled)
                     & ~host_fed]
        side = _best(mine, steady)
        if side is not None:
            row.sides[setting] = side
    row.host_fed = _best(group[(group["driver"] == "native") & host_fed], steady)
    return row


def tax_rows(loaded: Loaded) -> list[TaxRow]:
    """One row per test x environment x profile x data x work, for the environments where a native twin ran."""
    cells = loaded.cells
    if cells.empty or "driver" not in cells or not (cells["driver"] == "native").any():
        return []
    ok = cells[(cells["status"] == "ok") & ~cells["changes_numerics"].astype(bool)]
    with_twin = set(ok.loc[ok["driver"] == "native", "environment"])
    ok = ok[ok["environment"].isin(with_twin)]
    steady = _steady_epochs(loaded)
    rows = [_row(key, group, steady) for key, group in ok.groupby(list(GROUP), sort=False)]

    # the report's one order (common/display.py): matrix.yaml's tests, then any other; families as their backends
    rows = [r for r in rows if r.sides]
    return sorted(rows, key=lambda r: (model_key(r.model), display_key(r.family)))


# -- rendering: the same cells for summary.md and index.html ------------------------------------------------------
HEADER = ["test", "framework", *SETTING_TITLES.values(), "Keras tax (best Keras / best native)",
          "taken apart (s/epoch)", "verdict"]
LEGEND = ("Steady s/epoch (median of the steady epochs of every repeat, pooled; interval as in the tables below), "
          "share of the CPU's (or GPU's) FP32 peak, the variant. Eager: Keras 3's default (PyTorch eager; "
          "TensorFlow a tf.function graph without XLA); compiled: jit_compile (torch.compile, XLA); JAX always "
          "jit-compiles. The tax's interval divides the two intervals' ends crosswise; a tie where they overlap. "
          "Only cells of the same test, environment and work are divided. Taken apart (with a host-fed twin, "
          "variant native-host-feed): the twin's compiled step with the set on the device, + what feeding batches "
          "from the host adds, + what Keras adds beyond feeding; CPU/step is the host's process CPU time per "
          "training step.")


def side_text(row: TaxRow, setting: tuple[str, bool]) -> str:
    side = row.sides.get(setting)
    if side is None:
        if row.family == "jax" and not setting[1]:
            return "- (JAX always jit-compiles)"
        return "not run"
    interval = "" if side.interval == "single" else f" ({fmt.seconds(side.lo)}-{fmt.seconds(side.hi)})"
    busy = ", busy" if side.busy else ""
    cpu = f", {side.cpu_s_per_step * 1e3:.2f} ms CPU/step" if side.cpu_s_per_step is not None else ""
    return (f"{fmt.seconds(side.steady_s)} s{interval}, {fmt.share(side.peak_share)} of peak, {side.variant}"
            f"{cpu}{busy}")


def parts_text(row: TaxRow) -> str:
    parts = row.parts
    if parts is None:
        return "- (no host-fed twin: --variant native-host-feed)"
    total = parts["step"] + parts["feeding"] + parts["keras"]
    cpu = row.host_fed.cpu_s_per_step if row.host_fed else None
    return (f"step {fmt.seconds(parts['step'])} + feeding {fmt.seconds(parts['feeding'])} + Keras "
            f"{fmt.seconds(parts['keras'])} = {fmt.seconds(total)}"
            + (f" (host-fed twin {cpu * 1e3:.2f} ms CPU/step)" if cpu is not None else ""))


def tax_text(row: TaxRow) -> str:
    tax = row.tax
    if tax is None:
        return "-"
    ratio, lo, hi = tax
    return f"{ratio:.2f}x ({lo:.2f}-{hi:.2f})"


def table_cells(row: TaxRow) -> list[str]:
    return [row.model_title, row.framework, *(side_text(row, s) for s in SETTINGS), tax_text(row), parts_text(row),
            row.verdict]


def work_lines(rows: list[TaxRow]) -> list[str]:
    return list(dict.fromkeys(f"{r.model_title}: {r.work_text} ({r.profile}, {r.data_source})" for r in rows))


def markdown_lines(rows: list[TaxRow]) -> list[str]:
    """The section for summary.md (empty without a native twin in the runs)."""
    if not rows:
        return []

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["## The Keras tax", "", LEGEND, ""]
    out += ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    out += ["| " + " | ".join(cell(c) for c in table_cells(r)) + " |" for r in rows]
    out += ["", "Work: " + "; ".join(work_lines(rows)) + "."]
    busy = [r for r in rows if r.busy]
    if busy:
        share = max((r.other_cpu_share or 0.0) for r in busy)
        out += ["", f"> [!WARNING]\n> **Busy machine**: {len(busy)} of {len(rows)} rows have cells that ran while "
                f"other processes used up to {share:.0%} of the CPU; their figures are suspect."]
    return out + [""]


def html_section(rows: list[TaxRow]) -> str:
    """The section for index.html (empty without a native twin in the runs)."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in table_cells(r)) + "</tr>" for r in rows)
    busy = [r for r in rows if r.busy]
    warn = (f'<div class="caveat warn"><b>Busy machine</b>: {len(busy)} of {len(rows)} rows have cells that ran '
            "while other processes used the CPU; their figures are suspect.</div>") if busy else ""
    works = "".join(f"<li>{escape(w)}</li>" for w in work_lines(rows))
    return (f'<section id="tax"><h2>The Keras tax</h2><p class="legend">{escape(LEGEND)}</p>{warn}'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
            f'<p class="legend">Work:</p><ul class="legend">{works}</ul></section>')
