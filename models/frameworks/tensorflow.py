"""TensorFlow (2.x under Keras 3; 1.x under Keras 2.0.8): devices by product name, the allocator's peak, TF32.

Python 3.6 compatible.
"""
import os


def probe(tf):
    if not hasattr(getattr(tf, "config", None), "list_physical_devices"):
        return _probe_tf1()
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    gpus = tf.config.list_physical_devices("GPU")
    gpu = {"available": bool(gpus), "devices": [g.name for g in gpus]}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0]) or {}
        capability = details.get("compute_capability")
        gpu.update(name=details.get("device_name"), count=len(gpus),
                   compute_capability="%d.%d" % tuple(capability) if capability else None)
    return ({"intra_op": intra or "default (0: one per core)", "inter_op": inter or "default (0)"}, gpu)


def _probe_tf1():
    """TensorFlow 1.x (Keras 2.0.8's): no tf.config; device_lib lists the devices a session would place on."""
    from tensorflow.python.client import device_lib

    gpus = [d for d in device_lib.list_local_devices() if d.device_type == "GPU"]
    gpu = {"available": bool(gpus), "devices": [d.name for d in gpus]}
    if gpus:  # physical_device_desc: "device: 0, name: Tesla K80, pci bus id: ..."
        desc = dict(part.strip().split(": ", 1) for part in gpus[0].physical_device_desc.split(", ") if ": " in part)
        gpu.update(name=desc.get("name"), count=len(gpus), compute_capability=desc.get("compute capability"))
    return {"intra_op": "session default (0: one per core)", "inter_op": "session default (0)"}, gpu


def placement(model, gpu_available):
    return "tensorflow default placement: " + ("/gpu:0" if gpu_available else "/cpu:0")


def gpu_peak():
    import tensorflow as tf

    experimental = getattr(tf.config, "experimental", None)
    if experimental is None or not hasattr(experimental, "get_memory_info"):
        return None, None, "TensorFlow %s has no get_memory_info (the 2017 frameworks report no peak)" % tf.__version__
    if not tf.config.list_physical_devices("GPU"):
        return None, "tf.config.experimental.get_memory_info('GPU:0')['peak']", "no GPU device"
    return (experimental.get_memory_info("GPU:0")["peak"] / float(1 << 20),
            "tf.config.experimental.get_memory_info('GPU:0')['peak']", None)


def preallocation():
    value = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
    return ("TF_FORCE_GPU_ALLOW_GROWTH=%s" % value if value else
            "TensorFlow's default: reserves most of the GPU; the peak counts bytes in use")


def _tf32_api(tf):
    experimental = getattr(getattr(tf, "config", None), "experimental", None)
    return experimental if hasattr(experimental, "enable_tensor_float_32_execution") else None


def set_precision(mode, on_gpu):
    import tensorflow as tf

    api = _tf32_api(tf)
    if api is not None:  # TensorFlow 1.x predates TF32 (Ampere, 2020): nothing to switch
        api.enable_tensor_float_32_execution(mode == "tf32")


def read_precision(on_gpu):
    import tensorflow as tf

    api = _tf32_api(tf)
    if api is None:
        return {"float32_matmul": "float32", "float32_conv": "float32",
                "note": "TensorFlow %s predates TF32: float32 math is float32" % tf.__version__}
    enabled = bool(api.tensor_float_32_execution_enabled())
    return {"float32_matmul": "tf32" if on_gpu and enabled else "float32",
            "float32_conv": "tf32" if on_gpu and enabled else "float32",
            "flags": {"tf.config.experimental.tensor_float_32_execution_enabled()": enabled}}
