"""What a backend choice needs beyond training speed, summarised per test x backend: inference latency at batch 1,
throughput per batch size, and peak memory, each over the repeats (separate processes).

A figure per repeat (its p50, its samples/s, its peak) is the unit, as for steady epochs in compare: the interval
is across repeats (min-max below 6, a 95 % interval of the median from 6 on), never across the calls of one
process, whose spread says nothing about the next process.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from common.stats import spread

THROUGHPUT_KEYS = "throughput"


def _over_repeats(values: pd.Series, name: str) -> dict[str, Any]:
    xs = [float(v) for v in values.dropna()]
    sp = spread(xs)
    return {name: sp.median if sp else None, f"{name}_lo": sp.lo if sp else None, f"{name}_hi": sp.hi if sp else None,
            f"repeat_{name}": xs}


def throughput_by_batch(ok: pd.DataFrame) -> dict[int, float]:
    """Batch size -> the median samples/s over repeats."""
    per_batch: dict[int, list[float]] = {}
    for table in ok[THROUGHPUT_KEYS] if THROUGHPUT_KEYS in ok else []:
        for batch, rate in (table or {}).items():
            if rate is not None:
                per_batch.setdefault(int(batch), []).append(float(rate))
    return {b: float(pd.Series(v).median()) for b, v in sorted(per_batch.items())}


def serving(ok: pd.DataFrame) -> dict[str, Any]:
    """The summary row's inference and memory columns (None where no repeat measured them)."""
    out: dict[str, Any] = {}
    for name in ("latency_p50_ms", "latency_p90_ms", "predict_p50_ms", "peak_rss_mb", "peak_rss_train_mb",
                 "rss_before_build_mb", "gpu_peak_mb"):
        out.update(_over_repeats(ok[name], name) if name in ok else {name: None})
    out["latency_first_ms"] = float(ok["latency_first_ms"].median()) if "latency_first_ms" in ok and \
        ok["latency_first_ms"].notna().any() else None
    out["throughput"] = throughput_by_batch(ok)
    out["latency_samples_ms"] = [float(v) for xs in ok.get("latency_samples_ms", []) for v in (xs or [])]
    errors = [e for e in ok.get("inference_error", pd.Series(dtype=object)).dropna() if e]
    out["inference_error"] = "; ".join(dict.fromkeys(errors)) or None
    notes = [n for n in ok.get("gpu_memory_note", pd.Series(dtype=object)).dropna() if n]
    out["gpu_memory_note"] = " / ".join(dict.fromkeys(notes)) or None
    return out


def batch_sizes(rows: pd.DataFrame) -> list[int]:
    """Every batch size any row's throughput was measured at, ascending."""
    return sorted({b for t in rows.get(THROUGHPUT_KEYS, []) for b in (t or {})})


def _ms(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _mb(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:,.0f}"


def _with_range(row: pd.Series, name: str) -> str:
    lo, hi, n = row.get(f"{name}_lo"), row.get(f"{name}_hi"), len(row.get(f"repeat_{name}") or [])
    text = _ms(row.get(name))
    return f"{text} ({_ms(lo)}-{_ms(hi)})" if n > 1 and lo is not None else text


def serving_table(rows: pd.DataFrame) -> tuple[list[str], list[tuple[pd.Series, list[str]]]]:
    """(header, [(row, cells after the backend column)]): the per-test inference and memory table, as text, for
    both the HTML and the Markdown report. Latency is batch 1; p50 and p90 are medians over repeats of each
    repeat's percentile, with the range over repeats in brackets; throughput is `predict` over the test split."""
    sizes = batch_sizes(rows)
    header = ["backend", "train s/epoch", "p50 ms", "p90 ms", "predict() p50 ms", "first call ms",
              *[f"samples/s @ {b}" for b in sizes], "peak RSS MB", "RSS before build MB", "GPU peak MB"]
    out = []
    for _, r in rows.iterrows():
        if r["repeats_ok"] == 0:
            continue
        if r.get("latency_p50_ms") is None and not r.get("throughput") and r.get("peak_rss_mb") is None:
            cells = ["-", "not measured (no inference or memory in these results)"] + ["-"] * (len(header) - 3)
        else:
            gpu = _mb(r.get("gpu_peak_mb"))
            cells = [
                f"{r['steady_s']:.3g}" if r["steady_s"] == r["steady_s"] else "-",
                _with_range(r, "latency_p50_ms"), _with_range(r, "latency_p90_ms"), _ms(r.get("predict_p50_ms")),
                _ms(r.get("latency_first_ms")),
                *[_rate((r.get("throughput") or {}).get(b)) for b in sizes],
                _mb(r.get("peak_rss_mb")), _mb(r.get("rss_before_build_mb")),
                gpu if gpu != "-" else ("- (CPU)" if "no GPU" in str(r.get("gpu_memory_note") or "") else "-"),
            ]
            if r.get("inference_error"):
                cells[1] += f" (inference failed: {r['inference_error']})"
        out.append((r, cells))
    return header, out


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
