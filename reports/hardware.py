"""What a cell ran on, in words, and that device's FP32 peak where it is known (for achieved share of peak).

GPU peaks are the vendors' dense FP32 figures (no tensor cores, no sparsity), matched on the device name. A CPU's
peak is the worker's estimate recorded with the host (`host.cpu_peak`: usable cores x clock x FP32 FLOP/cycle
from the vector extensions, models/provenance.py); results without it show no share of peak.
"""

from __future__ import annotations

from typing import Any

# Most specific name first: "H100 PCIe" must win over "H100".
GPU_PEAK_FP32_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 51.2),
    ("H100", 66.9),
    ("H200", 66.9),
    ("A100", 19.5),
    ("L4", 30.3),
    ("V100", 15.7),
    ("T4", 8.1),
    ("K80", 4.37),  # one GK210 chip, as the 2017 article used
)


def gpu_peak_tflops(device_name: str) -> float | None:
    for needle, peak in GPU_PEAK_FP32_TFLOPS:
        if needle.lower() in device_name.lower():
            return peak
    return None


def _gpu_names(gpu: dict[str, Any]) -> list[str]:
    names = []
    for dev in gpu.get("devices") or []:
        if isinstance(dev, dict):
            names.append(str(dev.get("name") or dev.get("device") or dev))
        else:
            names.append(str(dev))
    return names


def describe(host: dict[str, Any]) -> tuple[str, str, float | None]:
    """(kind, device in words, FP32 peak in TFLOP/s or None) for a result's `host` block."""
    gpu = host.get("gpu") or {}
    if gpu.get("used"):
        names = _gpu_names(gpu)
        name = names[0] if names else "GPU"
        return "gpu", f"GPU: {name}", gpu_peak_tflops(name)
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
