"""Every GPU users have is named with its peaks per arithmetic (reports/gpu_peaks.yaml), and a share of peak
divides by the peak of the arithmetic the cell ran."""

from __future__ import annotations

import pytest

from reports.hardware import describe, gpu_entry, gpu_peak_tflops, known_gpus

# names as the frameworks report them (JAX's device_kind, torch.cuda.get_device_name, TensorFlow's device_name)
NAMES = {
    "Tesla K80": "Tesla K80 (one GK210)", "Tesla P100-PCIE-16GB": "Tesla P100 PCIe",
    "Tesla P100-SXM2-16GB": "Tesla P100 SXM2", "Tesla V100-SXM2-32GB": "Tesla V100 SXM2",
    "Tesla V100-PCIE-16GB": "Tesla V100 PCIe", "Tesla T4": "Tesla T4", "NVIDIA A10G": "NVIDIA A10G",
    "NVIDIA L4": "NVIDIA L4", "NVIDIA A100-SXM4-40GB": "NVIDIA A100 40GB", "NVIDIA A100-SXM4-80GB": "NVIDIA A100 80GB",
    "NVIDIA A100 80GB PCIe": "NVIDIA A100 80GB", "NVIDIA H100 80GB HBM3": "NVIDIA H100 SXM",
    "NVIDIA H100 PCIe": "NVIDIA H100 PCIe", "NVIDIA H200": "NVIDIA H200", "NVIDIA B200": "NVIDIA B200",
    "NVIDIA GeForce RTX 3090": "NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 4090": "NVIDIA GeForce RTX 4090",
}


@pytest.mark.parametrize(("reported", "entry"), NAMES.items())
def test_each_gpu_users_have_is_found_by_the_name_its_framework_reports(reported, entry):
    found = gpu_entry(reported)
    assert found is not None and found.name == entry and found.source


def test_every_entry_has_its_source_and_tensor_units_are_never_slower_than_fp32():
    for gpu in known_gpus():
        assert gpu.source and gpu.fp32 > 0
        assert all(v is None or v >= gpu.fp32 for v in (gpu.tf32, gpu.bf16, gpu.fp16)), gpu.name


def test_a_share_of_peak_divides_by_the_peak_of_the_arithmetic_that_ran():
    assert gpu_peak_tflops("NVIDIA H200") == pytest.approx(66.9)
    assert gpu_peak_tflops("NVIDIA H200", "tf32") == pytest.approx(494.7)
    assert gpu_peak_tflops("NVIDIA A100-SXM4-40GB", "mixed_bfloat16") == pytest.approx(312.0)
    assert gpu_peak_tflops("Tesla V100-SXM2-32GB", "tf32") == pytest.approx(15.7)  # no TF32 units: FP32 ran
    assert gpu_peak_tflops("Some Future GPU") is None
    host = {"gpu": {"used": True, "name": "NVIDIA H200", "devices": ["cuda:0"], "count": 1}}
    assert describe(host, "tf32") == ("gpu", "GPU: NVIDIA H200", pytest.approx(494.7))
    # JAX's device ids say nothing; the product name does (the first GPU run recorded only `cuda:0`)
    assert describe({"gpu": {"used": True, "devices": ["cuda:0"]}})[2] is None
