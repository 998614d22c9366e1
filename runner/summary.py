"""The table a run ends with: one row per cell, the figures a reader looks for first."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red", "timeout": "red", "interrupted": "red"}


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _note(result: dict[str, Any]) -> str:
    notes = []
    if result.get("error"):
        notes.append(result["error"].splitlines()[0][:90])
    data = result.get("data") or {}
    if data.get("source") == "synthetic":
        notes.append("synthetic data")
    if (result.get("host") or {}).get("load", {}).get("busy"):
        notes.append(f"machine busy ({result['host']['load']['other_cpu_share']:.0%} other CPU)")
    notes.extend(result.get("warnings") or [])
    return "; ".join(notes)


def samples_per_s(result: dict[str, Any]) -> float | None:
    steady = result.get("steady_epoch_s")
    epochs = result.get("epochs") or []
    if not steady or not epochs:
        return None
    return epochs[-1]["samples"] / steady


def table(results: list[dict[str, Any]], title: str) -> Table:
    out = Table(title=title, title_justify="left")
    for name, justify in (
        ("model", "left"),
        ("backend", "left"),
        ("environment", "left"),
        ("status", "left"),
        ("params", "right"),
        ("1st epoch s", "right"),
        ("steady s/epoch", "right"),
        ("samples/s", "right"),
        ("test acc", "right"),
        ("notes", "left"),
    ):
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in results:
        cell = r["cell"]
        status = r["status"]
        out.add_row(
            cell["model"],
            cell["backend"],
            cell["environment"],
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
            _num(r.get("params"), ","),
            _num(r.get("first_epoch_s"), ".2f"),
            _num(r.get("steady_epoch_s"), ".3f"),
            _num(samples_per_s(r), ",.0f"),
            _num((r.get("test") or {}).get("accuracy"), ".4f"),
            _note(r),
        )
    return out


def print_summary(console: Console, results: list[dict[str, Any]], title: str) -> None:
    console.print(table(results, title))
