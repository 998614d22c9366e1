"""What a cell ran on, in words, and that device's FP32 peak where it is known (for achieved share of peak).

CPU peaks depend on clocks and vector units nobody records, so a CPU cell shows no share of peak rather than a
guess. GPU peaks are the vendors' dense FP32 figures (no tensor cores, no sparsity), matched on the device name.
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
    return "cpu", f"CPU: {cpu}" + (f", {cores} cores" if cores else ""), None
