"""Number formatting shared by the HTML and Markdown reports, so both show the same digits for the same value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def seconds(value: float | None) -> str:
    """Three significant figures, at most three decimals: 0.0208, 0.256, 2.77, 22.9, 179."""
    if missing(value):
        return "-"
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}" if value >= 0.001 else f"{value:.1e}"


def rate(value: float | None) -> str:
    if missing(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:#.3g}"


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if missing(value) else f"{value * 100:.{digits}f} %"


def share(value: float | None) -> str:
    """A share of peak, three significant digits: small shares (smoke runs) must not round to 0.00 %."""
    return "-" if missing(value) else f"{value * 100:#.3g} %"


def acc(value: float | None) -> str:
    return "-" if missing(value) else f"{value:.4f}"


def ratio(value: float | None) -> str:
    return "-" if missing(value) else f"{value:.2f}x"


def interval(lo: float | None, hi: float | None, kind: str) -> str:
    if missing(lo) or missing(hi) or kind == "single":
        return "-"
    return f"{seconds(lo)}-{seconds(hi)} ({kind})"


def ttt(row: Mapping[str, Any]) -> str:
    if row["repeats_ok"] == 0 or row["target_accuracy"] is None or missing(row["target_accuracy"]):
        return "-"
    if row["ttt_reached"]:
        return f"{seconds(row['ttt_s'])} s ({row['ttt_reached']}/{row['repeats_ok']})"
    return f"not reached (best {acc(row['best_val_accuracy'])})"


def cv_text(row: Mapping[str, Any]) -> str:
    if missing(row["cv"]):
        return "-"
    return pct(row["cv"]) + (" noisy" if row["noisy"] else "")


def cores_text(row: Mapping[str, Any]) -> str:
    """CPU s per steady epoch and the cores it kept busy; `cores swung` when that varied between epochs."""
    if missing(row.get("cpu_s")):
        return "-"
    return f"{seconds(row['cpu_s'])} ({row['cores_used']:.2f})" + (" cores swung" if row.get("cores_swing") else "")


def ran_as(row: Mapping[str, Any], with_device: bool) -> str:
    parts = [row["executor"], row["profile"], row["data_source"]]
    return ", ".join(str(p) for p in ([*parts, row["device"]] if with_device else parts) if p)


def then_text(entry: Mapping[str, Any]) -> str:
    if entry["then_s"] is None:
        return entry["then_text"] or "-"
    return published(entry["then_s"], entry["then_approx"])


def published(value: float | None, approx: bool = False) -> str:
    """A 2017 figure with the digits the article printed (10.25 stays 10.25)."""
    return "-" if missing(value) else ("~" if approx else "") + f"{value:g}"
