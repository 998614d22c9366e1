"""What a cell ran on, in words, and that device's peak where it is known (for achieved share of peak).

GPU peaks are the vendors' dense figures (no sparsity) per arithmetic, FP32, TF32, BF16 and FP16, in
gpu_peaks.yaml beside this file with their sources, matched on the product name the framework reports; a share of
peak divides by the peak of the arithmetic the cell really ran (settings.precision.effective). A CPU's
peak is the worker's estimate recorded with the host (`host.cpu_peak`: usable cores x clock x FP32 FLOP/cycle
from the vector extensions, models/provenance.py); results without it show no share of peak.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

PEAKS_FILE = Path(__file__).with_name("gpu_peaks.yaml")
# the arithmetic a cell ran (settings.precision.effective, models/precision.py) -> the peak that bounds it
PRECISION_PEAK = {"float32": "fp32", "tf32": "tf32", "mixed_bfloat16": "bf16", "mixed_float16": "fp16"}


class GpuPeaks(BaseModel):
    """One GPU's dense peaks in TFLOP/s (null: no such unit) and where they come from."""

    model_config = ConfigDict(extra="forbid")
    name: str
    match: list[str]
    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str

    def peak(self, precision: str | None) -> tuple[float, str]:
        """(TFLOP/s, unit) for the arithmetic a cell ran; a precision the GPU has no unit for ran as FP32."""
        unit = PRECISION_PEAK.get(precision or "float32", "fp32")
        value = getattr(self, unit)
        return (value, unit) if value is not None else (self.fp32, "fp32")


@functools.cache
def known_gpus() -> tuple[GpuPeaks, ...]:
    return tuple(GpuPeaks(**entry) for entry in yaml.safe_load(PEAKS_FILE.read_text())["gpus"])


def gpu_entry(device_name: str) -> GpuPeaks | None:
    name = device_name.lower()
    for entry in known_gpus():
        if any(needle.lower() in name for needle in entry.match):
            return entry
    return None


def gpu_peak_tflops(device_name: str, precision: str | None = None) -> float | None:
    """The GPU's dense peak for the arithmetic the cell ran (None: a GPU this table does not know)."""
    entry = gpu_entry(device_name)
    return entry.peak(precision)[0] if entry else None


def _gpu_names(gpu: dict[str, Any]) -> list[str]:
    names = [gpu["name"]] if gpu.get("name") else []  # the product name (JAX's device_kind), before device ids
    for dev in gpu.get("devices") or []:
        if isinstance(dev, dict):
            names.append(str(dev.get("name") or dev.get("device") or dev))
        else:
            names.append(str(dev))
    return names


def describe(host: dict[str, Any], precision: str | None = None) -> tuple[str, str, float | None]:
    """(kind, device in words, peak in TFLOP/s or None) for a result's `host` block; on a GPU the peak of the
    arithmetic the cell ran (`precision`: settings.precision.effective; FP32 when None). A CPU's is its FP32."""
    gpu = host.get("gpu") or {}
    if gpu.get("used"):
        names = _gpu_names(gpu)
        name = names[0] if names else "GPU"
        count = f" x {gpu['count']}" if (gpu.get("count") or 1) > 1 else ""
        return "gpu", f"GPU: {name}{count}", gpu_peak_tflops(name, precision)
    cpu = host.get("cpu_model") or "unknown CPU"
    cores = host.get("usable_cores") or host.get("cores")
    return "cpu", f"CPU: {cpu}" + (f", {cores} cores" if cores else ""), cpu_peak_tflops(host)


def cpu_peak_tflops(host: dict[str, Any]) -> float | None:
    gflops = (host.get("cpu_peak") or {}).get("fp32_gflops")
    return float(gflops) / 1e3 if gflops else None


def cpu_peak_method(host: dict[str, Any]) -> str | None:
    """How a CPU peak was estimated, in words, for the report's caveat."""
    peak = host.get("cpu_peak") or {}
    if not peak.get("fp32_gflops"):
        return None
    return (f"{peak['fp32_gflops']:g} GFLOP/s = {peak['cores']} cores x {peak['clock_mhz'] / 1e3:.2f} GHz "
            f"({peak['clock_source']}) x {peak['flop_per_cycle']} FLOP/cycle ({peak['isa']})")
