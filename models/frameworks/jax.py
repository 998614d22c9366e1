"""JAX: devices by product name, the allocator's peak, asynchronous dispatch, default matmul precision.

Python 3.6 compatible (the module is only imported where JAX is installed, but the 2017 environments import
models/ too).
"""
import os

# jax_default_matmul_precision governs float32 dots and convolutions: JAX's default on an NVIDIA GPU since Ampere
# is one TF32 pass ("default"); "float32" is full float32 (three bf16 passes or plain FP32, whichever XLA picks)
PRECISION_CONFIG = {"float32": "float32", "tf32": "tensorfloat32"}


def probe(jax):
    devices = jax.devices()
    gpus = [d for d in devices if d.platform != "cpu"]
    gpu = {"available": bool(gpus), "devices": [str(d) for d in gpus]}
    if gpus:
        gpu.update(name=getattr(gpus[0], "device_kind", None), count=len(gpus),
                   compute_capability=_capability(gpus[0]))
    return {"xla_cpu": "XLA's default (one per core)"}, gpu


def _capability(device):
    value = getattr(device, "compute_capability", None)
    return str(value) if value is not None else None


def gpu_peak():
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus:
        return None, "jax device.memory_stats()['peak_bytes_in_use']", "no GPU device: the model lives in host memory"
    stats = gpus[0].memory_stats() or {}
    if "peak_bytes_in_use" not in stats:
        return None, "jax device.memory_stats()", "this jaxlib's GPU client reports no peak_bytes_in_use"
    return (stats["peak_bytes_in_use"] / float(1 << 20), "jax device.memory_stats()['peak_bytes_in_use'] (device 0)",
            None)


def preallocation():
    value = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")
    return "XLA_PYTHON_CLIENT_PREALLOCATE=%s" % value if value else "JAX's default: 75 % of the GPU at start"


def queued_waiter(on_gpu):
    """Keras 3 on JAX dispatches training steps and returns before they ran, on a CPU too."""
    import jax

    return lambda model: jax.block_until_ready([v.value for v in model.variables])


def set_precision(mode, on_gpu):
    import jax

    jax.config.update("jax_default_matmul_precision", PRECISION_CONFIG[mode])


def read_precision(on_gpu):
    import jax

    value = jax.config.jax_default_matmul_precision
    tf32 = on_gpu and value in (None, "default", "tensorfloat32", "bfloat16", "fastest")
    return {"float32_matmul": "tf32" if tf32 else "float32", "float32_conv": "tf32" if tf32 else "float32",
            "flags": {"jax_default_matmul_precision": value}}
