"""The table a run ends with: one line per cell, the figures a reader looks for first, each distinct reason for
a failure or a skip stated once below it (six cells skipped for one missing dataset share one footnote); then,
per test and work, common.ranking's ranking (letters shared only where intervals overlap), saying which interval
it used: between runs with 3 or more repeats, else the spread of epochs within a process. Rows and rankings follow
common.display's order (Keras 3 backends, their native twins, the 2017 stacks), as the report's columns do.

Cells whose work differs (a 2017 backend given a tenth of the samples) are never ranked together: each group of
one model and one work is ranked apart, its heading says the work, and the table's `work` column stands beside
speed and accuracy whenever a test ran more than one work.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from common.display import display_key, model_key
from common.ranking import LEGEND, Entry, Ranked, rank, ranking_parts, ranking_spread, ranking_text
from common.results import CellResult, Status
from common.termtable import Column, Footnotes, fit
from common.work import describe, work_key

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red", "timeout": "red", "interrupted": "red"}


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _notes(result: CellResult, footnotes: Footnotes, said_above: bool = False) -> str:
    """Short notes for the row; the error or skip reason (often long, often shared) as a footnote reference.
    `said_above`: every row trained on synthetic data, which the title says once instead."""
    notes = []
    if result.synthetic and not said_above:
        notes.append("synthetic data")
    if result.busy:
        notes.append(f"busy: {result.host.load.other_cpu_share or 0:.0%} other CPU")
    notes.extend(footnotes.ref(w, result.cell_id) for w in result.warnings)
    return " ".join(notes)


def _status(result: CellResult, footnotes: Footnotes) -> str:
    """The status, and for a failure or a skip the reference to its reason below the table."""
    error = result.error
    ref = f" {footnotes.ref(error.splitlines()[0][:400], result.cell_id)}" if error else ""
    return result.status.value + ref


def samples_per_s(result: CellResult) -> float | None:
    if not result.steady_epoch_s or not result.epochs:
        return None
    return result.epochs[-1].samples / result.steady_epoch_s


def p50_ms(result: CellResult) -> float | None:
    latency = result.inference.latency_of() if result.inference else None
    return latency.p50_ms if latency else None


def compact_work(result: CellResult) -> str:
    """`60000/10000 x6`: training / validation samples per epoch and epochs, for the table's work column."""
    w = result.work
    if w is None:
        return "-"
    return f"{w.train_samples}/{'-' if w.val_samples is None else w.val_samples} x{w.epochs}" + (
        " synthetic" if w.data == "synthetic" else "")


def _works_differ(results: list[CellResult]) -> bool:
    per_model: dict[str, set[tuple]] = {}
    for r in results:
        if r.work is not None:
            per_model.setdefault(r.cell.model, set()).add(work_key(r.work.model_dump()))
    return any(len(keys) > 1 for keys in per_model.values())


def _columns(ambiguous: bool) -> list[Column]:
    return [
        Column("model"), Column("backend"), Column("environment", priority=0 if ambiguous else 2),
        Column("variant"), Column("rep", "right", priority=1), Column("status"),
        Column("params", "right", priority=5), Column("work", priority=0), Column("1st epoch", "right", priority=1),
        Column("s/epoch", "right"), Column("samples/s", "right", priority=3), Column("acc", "right"),
        Column("p50 ms", "right", priority=2), Column("peak MB", "right", priority=3), Column("notes", flex=True),
    ]


def table(results: list[CellResult], title: str, width: int = 100):
    """(the table, its footnotes): one line per cell at `width` columns, each distinct reason once below.
    `s/epoch` is the steady epoch (median after the first), `acc` the test accuracy, `p50 ms` the batch-1
    latency of predict_on_batch, `peak MB` the worker's peak resident set."""
    footnotes = Footnotes()
    per_backend: dict[str, set[str]] = {}
    for r in results:
        per_backend.setdefault(r.cell.backend, set()).add(r.cell.environment)
    ambiguous = any(len(envs) > 1 for envs in per_backend.values())
    variants = len({r.cell.variant for r in results}) > 1
    repeats = len({r.cell.repeat for r in results}) > 1
    # what every row shares is said once in the title, so the notes keep their width for what differs
    shared = [] if variants or not results else [f"variant {results[0].cell.variant}"]
    all_synthetic = bool(results) and all(r.synthetic for r in results)
    shared += ["synthetic data"] if all_synthetic else []
    title += f" ({', '.join(shared)})" if shared else ""
    rows, styles = [], []
    for r in results:
        memory = r.memory.peak_rss_mb if r.memory else None
        rows.append([
            r.cell.model, r.cell.backend, r.cell.environment, r.cell.variant, str(r.cell.repeat + 1),
            _status(r, footnotes), _num(r.params, ","), compact_work(r), _num(r.first_epoch_s, ".2f"),
            _num(r.steady_epoch_s, ".3f"), _num(samples_per_s(r), ",.0f"), _num(r.test.accuracy if r.test else None,
                                                                                 ".4f"),
            _num(p50_ms(r), ".2f"), _num(memory, ",.0f"), _notes(r, footnotes, all_synthetic),
        ])
        styles.append(STATUS_STYLE.get(r.status.value) if r.status is not Status.ok else None)
    columns = _columns(ambiguous)
    # one variant (said in the title), one repeat, one work per test: those columns would say nothing per line
    drop = {i for i, c in enumerate(columns) if (c.name == "variant" and not variants)
            or (c.name == "rep" and not repeats) or (c.name == "work" and not _works_differ(results))}
    columns = [c for i, c in enumerate(columns) if i not in drop]
    rows = [[v for i, v in enumerate(row) if i not in drop] for row in rows]
    return fit(columns, rows, width, title, styles), footnotes.lines()


def display_sorted(results: list[CellResult]) -> list[CellResult]:
    """Cells by test (matrix.yaml's order), then common.display's backend order, environment, variant, repeat."""

    def key(r: CellResult) -> tuple:
        driver = r.backend.driver if r.backend else None
        return (model_key(r.cell.model), display_key(r.cell.backend, driver, r.versions.get("keras")),
                r.cell.environment, r.cell.variant, r.cell.repeat)

    return sorted(results, key=key)


def _labels(ids: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """The backend's name, with its environment and variant only where they tell two entries of it apart."""
    out = {}
    for ident in ids:
        same = [i for i in ids if i[0] == ident[0]]
        extra = [ident[k] for k in (1, 2) if len({i[k] for i in same}) > 1]
        out[ident] = ident[0] + (f" ({', '.join(extra)})" if extra else "")
    return out


@dataclass
class Ranking:
    """One test and work, ranked by common.ranking; `basis` says what its intervals measure."""

    heading: str
    basis: str
    ranked: list[Ranked]


def ranking_groups(results: list[CellResult]) -> list[Ranking]:
    """Per model and work: backend x environment x variant groups ranked by common.ranking on the median of their
    steady epochs (every ok repeat pooled), with the interval it says (between runs from 3 repeats). Only cells
    of the same work are ranked together; a model run with several works gets one ranking per work, its heading
    saying which."""
    groups: dict[tuple[str, tuple], dict[tuple[str, str, str], tuple[list[float], list[float]]]] = {}
    works: dict[tuple[str, tuple], dict] = {}
    for r in display_sorted([r for r in results if r.status is Status.ok]):
        work = r.work.model_dump() if r.work else None
        key = (r.cell.model, work_key(work))
        works[key] = work
        per_repeat, epochs = groups.setdefault(key, {}).setdefault(
            (r.cell.backend, r.cell.environment, r.cell.variant), ([], []))
        if r.steady_epoch_s is not None:
            per_repeat.append(r.steady_epoch_s)
        epochs.extend(e.wall_s for e in r.epochs[1:])
    per_model: dict[str, int] = {}
    for model, _ in groups:
        per_model[model] = per_model.get(model, 0) + 1
    out = []
    for key, by_id in groups.items():
        labels = _labels(list(by_id))
        entries, bases = [], []
        for ident, (per_repeat, epochs) in by_id.items():
            if (found := ranking_spread(per_repeat, epochs)) is not None:
                sp, basis = found
                entries.append(Entry(labels[ident], sp.median, sp.lo, sp.hi))
                bases.append(basis)
        if len(entries) > 1:
            model = key[0]
            heading = model if per_model[model] == 1 else f"{model}, {describe(works[key])}"
            out.append(Ranking(heading, "; ".join(dict.fromkeys(bases)), rank(entries)))
    return out


def rankings(results: list[CellResult]) -> list[tuple[str, str]]:
    """(heading, ranking text) per model and work; the heading says which interval the ranking used."""
    return [(f"{g.heading} (steady s/epoch; intervals: {g.basis})", ranking_text(g.ranked))
            for g in ranking_groups(results)]


def wrapped(parts: list[str], width: int, indent: str = "  ") -> list[str]:
    """Entries joined by " · " into lines of at most `width`, never broken inside an entry."""
    lines, line = [], ""
    for part in parts:
        candidate = f"{line} · {part}" if line else indent + part
        if line and len(candidate) > width:
            lines.append(line)
            candidate = indent + "· " + part
        line = candidate
    return [*lines, line] if line else lines


def print_summary(console: Console, results: list[CellResult], title: str) -> None:
    """The closing table and rankings, every line within the console's width (tests check 80 and 100 columns):
    a ranking's heading on a line of its own, its entries below, broken between entries only."""
    out, notes = table(display_sorted(results), title, width=min(console.width, 120))
    console.print(out)
    for line in notes:
        console.print(Text(line), overflow="fold")
    groups = ranking_groups(results)
    bases = list(dict.fromkeys(g.basis for g in groups))
    for g in groups:
        own = f"; intervals: {g.basis}" if len(bases) > 1 else ""
        console.print(Text(f"ranking of {g.heading} (steady s/epoch{own}):"), overflow="fold")
        for line in wrapped(ranking_parts(g.ranked), console.width):
            console.print(Text(line), overflow="fold")
    if groups:
        said = f"intervals: {bases[0]}; " if len(bases) == 1 else ""
        console.print(Text(f"({said}{LEGEND})"), overflow="fold")
