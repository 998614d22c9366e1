"""What a cell holds in memory: the worker's resident set on the host, the framework's own peak on a GPU.

Host: `ru_maxrss` is the kernel's high-water mark of the whole process's resident set (on Linux in KiB), so it
includes the interpreter, the framework's libraries and the data, not only the model; the resident set just
before the model is built (`VmRSS` from /proc/self/status) is the floor that model and training are added to.
GPU: each framework's own counter of bytes its allocator handed out at peak. JAX preallocates 75 % of the GPU
unless XLA_PYTHON_CLIENT_PREALLOCATE=false (the matrix sets it for JAX), which the result records, since a
peak under preallocation says what was reserved, not what was needed. The 2017 frameworks have no such API.
Python 3.6 compatible.
"""
import resource
import sys

from models import frameworks

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


def gpu_peak(framework, gpu=None):
    """(peak MiB or None, method, note saying why None). Never raises: memory is provenance, not the cell."""
    if gpu is not None and gpu.get("available") is False:
        return None, None, "no GPU: the framework sees none (CPU cell)"
    if not frameworks.has(framework, "gpu_peak"):
        return None, None, "%s has no API for its peak device memory" % framework
    try:
        return frameworks.call(framework, "gpu_peak")
    except Exception as exc:  # noqa: BLE001 - a framework without the call must not fail the cell
        return None, None, "the peak could not be read: %s: %s" % (type(exc).__name__, exc)


def preallocation(framework):
    """Whether the framework preallocates device memory, and the setting that says so."""
    return frameworks.call(framework, "preallocation")
