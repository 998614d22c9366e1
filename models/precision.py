"""The arithmetic a cell really ran: float32 math at full float32 or TF32, and the Keras dtype policy, read back.

On NVIDIA GPUs since Ampere (compute capability 8.0) the frameworks differ by default: JAX and TensorFlow run
float32 matmuls and convolutions as TF32, PyTorch keeps matmuls at full float32 and lets cuDNN use TF32. So the
matrix decides for every backend alike (a variant's `float32_precision`, full float32 unless it says `tf32`),
the worker sets it through the framework's module (models/frameworks/) right after import, and records what the
framework then reports, not what was asked. `effective` is what a share of peak divides by: a mixed policy's
compute dtype, else TF32 where the framework uses it on a GPU that has it, else float32. Python 3.6 compatible.
"""
from models import frameworks

TF32_MIN_CAPABILITY = 8.0  # Ampere: the first NVIDIA GPUs with TF32 units


def _capability(gpu):
    try:
        return float((gpu or {}).get("compute_capability"))
    except (TypeError, ValueError):
        return None


def apply(framework, mode, gpu, dtype_policy, cudnn_benchmark=None):
    """Set float32 math to `mode` ('float32' or 'tf32') and, where a variant asks (`cudnn_benchmark`: True or
    False; None leaves the framework's own), cuDNN's algorithm search; return the settings.precision block, read
    back (a framework without the switch records none)."""
    on_gpu = bool((gpu or {}).get("available"))
    block = {"requested": mode, "dtype_policy": dtype_policy}
    try:
        frameworks.call(framework, "set_precision", mode, on_gpu)
        if cudnn_benchmark is not None:
            frameworks.call(framework, "set_cudnn_benchmark", bool(cudnn_benchmark))
        read = frameworks.call(framework, "read_precision", on_gpu) or {}
    except Exception as exc:  # noqa: BLE001 - a framework without the switch must not fail the cell
        read = {"note": "precision could not be set or read: %s: %s" % (type(exc).__name__, exc)}
    block.update(read)
    block.setdefault("float32_matmul", None)
    block.setdefault("float32_conv", None)
    capability = _capability(gpu)
    if capability is not None and capability < TF32_MIN_CAPABILITY:
        for key in ("float32_matmul", "float32_conv"):
            if block[key] == "tf32":  # the switch is on, but this GPU has no TF32 units: float32 it is
                block[key] = "float32"
                block["note"] = "compute capability %s has no TF32 units" % capability
    block["effective"] = effective(block)
    return block


def effective(block):
    policy = block.get("dtype_policy") or "float32"
    if policy.startswith("mixed_"):
        return policy
    if "tf32" in (block.get("float32_matmul"), block.get("float32_conv")):
        return "tf32"
    return "float32"
