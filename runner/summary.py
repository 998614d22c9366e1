"""The table a run ends with: one line per cell, the figures a reader looks for first, each distinct reason for
a failure or a skip stated once below it (six cells skipped for one missing dataset share one footnote); then,
per test, a ranking that says "tie" wherever the intervals of steady epochs (repeats pooled) overlap."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reports.ranking import Entry, rank, ranking_text
from reports.stats import spread
from runner.termtable import Column, Footnotes, fit

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red", "timeout": "red", "interrupted": "red"}


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _synthetic(result: dict[str, Any]) -> bool:
    return (result.get("data") or {}).get("source") == "synthetic"


def _notes(result: dict[str, Any], footnotes: Footnotes, said_above: bool = False) -> str:
    """Short notes for the row; the error or skip reason (often long, often shared) as a footnote reference.
    `said_above`: every row trained on synthetic data, which the title says once instead."""
    notes = []
    if _synthetic(result) and not said_above:
        notes.append("synthetic data")
    if (result.get("host") or {}).get("load", {}).get("busy"):
        notes.append(f"busy: {result['host']['load']['other_cpu_share']:.0%} other CPU")
    notes.extend(footnotes.ref(w, result["cell_id"]) for w in result.get("warnings") or [])
    return " ".join(notes)


def _status(result: dict[str, Any], footnotes: Footnotes) -> str:
    """The status, and for a failure or a skip the reference to its reason below the table."""
    error = result.get("error")
    return result["status"] + (f" {footnotes.ref(error.splitlines()[0][:400], result['cell_id'])}" if error else "")


def samples_per_s(result: dict[str, Any]) -> float | None:
    steady = result.get("steady_epoch_s")
    epochs = result.get("epochs") or []
    if not steady or not epochs:
        return None
    return epochs[-1]["samples"] / steady


def table(results: list[dict[str, Any]], title: str, width: int = 100) -> tuple[Table, list[str]]:
    """(the table, its footnotes): one line per cell at `width` columns, each distinct reason once below.
    `s/epoch` is the steady epoch (median after the first), `acc` the test accuracy."""
    footnotes = Footnotes()
    per_backend: dict[str, set[str]] = {}
    for r in results:
        per_backend.setdefault(r["cell"]["backend"], set()).add(r["cell"]["environment"])
    ambiguous = any(len(envs) > 1 for envs in per_backend.values())
    variants = len({r["cell"].get("variant", "default") for r in results}) > 1
    repeats = len({r["cell"].get("repeat", 0) for r in results}) > 1
    # what every row shares is said once in the title, so the notes keep their width for what differs
    shared = [] if variants or not results else [f"variant {results[0]['cell'].get('variant', 'default')}"]
    all_synthetic = bool(results) and all(_synthetic(r) for r in results)
    shared += ["synthetic data"] if all_synthetic else []
    title += f" ({', '.join(shared)})" if shared else ""
    columns = [
        Column("model"),
        Column("backend"),
        Column("environment", priority=0 if ambiguous else 2),
        Column("variant"),
        Column("rep", "right", priority=1),
        Column("status"),
        Column("params", "right", priority=4),
        Column("1st epoch", "right", priority=1),
        Column("s/epoch", "right"),
        Column("samples/s", "right", priority=3),
        Column("acc", "right"),
        Column("notes", flex=True),
    ]
    rows, styles = [], []
    for r in results:
        cell = r["cell"]
        rows.append([
            cell["model"],
            cell["backend"],
            cell["environment"],
            cell.get("variant", "default"),
            str(cell.get("repeat", 0) + 1),
            _status(r, footnotes),
            _num(r.get("params"), ","),
            _num(r.get("first_epoch_s"), ".2f"),
            _num(r.get("steady_epoch_s"), ".3f"),
            _num(samples_per_s(r), ",.0f"),
            _num((r.get("test") or {}).get("accuracy"), ".4f"),
            _notes(r, footnotes, all_synthetic),
        ])
        styles.append(STATUS_STYLE.get(r["status"]) if r["status"] != "ok" else None)
    # one variant (said in the title) or one repeat: those columns would repeat one value on every line
    drop = {i for i, c in enumerate(columns) if (c.name == "variant" and not variants) or (c.name == "rep" and not
                                                                                          repeats)}
    columns = [c for i, c in enumerate(columns) if i not in drop]
    rows = [[v for i, v in enumerate(row) if i not in drop] for row in rows]
    return fit(columns, rows, width, title, styles), footnotes.lines()


def rankings(results: list[dict[str, Any]]) -> dict[str, str]:
    """Per model, its backend x environment x variant groups ranked by the median of their steady epochs (the
    epochs after the first, every ok repeat pooled), with ties where the intervals overlap."""
    groups: dict[str, dict[str, list[float]]] = {}
    for r in results:
        if r["status"] != "ok":
            continue
        cell = r["cell"]
        label = f"{cell['backend']} ({cell['environment']}, {cell.get('variant', 'default')})"
        steady = [e["wall_s"] for e in (r.get("epochs") or [])[1:]]
        groups.setdefault(cell["model"], {}).setdefault(label, []).extend(steady)
    out = {}
    for model, by_label in groups.items():
        entries = [Entry(label, sp.median, sp.lo, sp.hi) for label, xs in by_label.items() if (sp := spread(xs))]
        if len(entries) > 1:
            out[model] = ranking_text(rank(entries))
    return out


def print_summary(console: Console, results: list[dict[str, Any]], title: str) -> None:
    out, notes = table(results, title, width=min(console.width, 120))
    console.print(out)
    for line in notes:
        console.print(Text(line), overflow="fold")
    for model, text in rankings(results).items():
        console.print(Text(f"ranking of {model} (steady s/epoch; a tie where intervals overlap): {text}"),
                      overflow="fold")
