"""What a cell holds in memory: the worker's resident set on the host, the framework's own peak on a GPU.

Host: `ru_maxrss` is the kernel's high-water mark of the whole process's resident set (on Linux in KiB), so it
includes the interpreter, the framework's libraries and the data, not only the model; the resident set just
before the model is built (`VmRSS` from /proc/self/status) is the floor that model and training are added to.
GPU: each framework's own counter of bytes its allocator handed out at peak. JAX preallocates 75 % of the GPU
unless XLA_PYTHON_CLIENT_PREALLOCATE=false (the matrix sets it for JAX), which the result records, since a
peak under preallocation says what was reserved, not what was needed. The 2017 frameworks have no such API.
Python 3.6 compatible.
"""
import os
import resource
import sys

MIB = float(1 << 20)
RSS_SCOPE = "ru_maxrss: the kernel's high-water mark of the whole worker process (interpreter, libraries, data)"


def current_rss_mb():
    """The resident set now, from /proc/self/status (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / MIB
    except (IOError, OSError, ValueError):
        return None
    return None


def peak_rss_mb():
    """The process's high-water mark so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak * 1024 / MIB


def _torch_peak():
    import torch

    if not torch.cuda.is_available():
        return None, "torch.cuda.max_memory_allocated", "no CUDA device: the model lives in host memory"
    return torch.cuda.max_memory_allocated() / MIB, "torch.cuda.max_memory_allocated (all devices: device 0)", None


def _jax_peak():
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus:
        return None, "jax device.memory_stats()['peak_bytes_in_use']", "no GPU device: the model lives in host memory"
    stats = gpus[0].memory_stats() or {}
    if "peak_bytes_in_use" not in stats:
        return None, "jax device.memory_stats()", "this jaxlib's GPU client reports no peak_bytes_in_use"
    return stats["peak_bytes_in_use"] / MIB, "jax device.memory_stats()['peak_bytes_in_use'] (device 0)", None


def _tensorflow_peak():
    import tensorflow as tf

    experimental = getattr(tf.config, "experimental", None)
    if experimental is None or not hasattr(experimental, "get_memory_info"):
        return None, None, "TensorFlow %s has no get_memory_info (the 2017 frameworks report no peak)" % tf.__version__
    if not tf.config.list_physical_devices("GPU"):
        return None, "tf.config.experimental.get_memory_info('GPU:0')['peak']", "no GPU device"
    return (experimental.get_memory_info("GPU:0")["peak"] / MIB,
            "tf.config.experimental.get_memory_info('GPU:0')['peak']", None)


PEAKS = {"torch": _torch_peak, "jax": _jax_peak, "tensorflow": _tensorflow_peak}


def gpu_peak(framework, gpu=None):
    """(peak MiB or None, method, note saying why None). Never raises: memory is provenance, not the cell."""
    if gpu is not None and gpu.get("available") is False:
        return None, None, "no GPU: the framework sees none (CPU cell)"
    probe = PEAKS.get(framework)
    if probe is None:
        return None, None, "%s has no API for its peak device memory" % framework
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - a framework without the call must not fail the cell
        return None, None, "the peak could not be read: %s: %s" % (type(exc).__name__, exc)


def preallocation(framework):
    """Whether the framework preallocates device memory, and the setting that says so."""
    if framework == "jax":
        value = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")
        return "XLA_PYTHON_CLIENT_PREALLOCATE=%s" % value if value else "JAX's default: 75 % of the GPU at start"
    if framework == "tensorflow":
        value = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
        return ("TF_FORCE_GPU_ALLOW_GROWTH=%s" % value if value else
                "TensorFlow's default: reserves most of the GPU; the peak counts bytes in use")
    if framework == "torch":
        return "PyTorch's caching allocator: grows on demand; the peak counts bytes allocated"
    return None
