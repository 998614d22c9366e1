"""What the environment can say about itself: versions, CPU, threads, GPU and where the model really ran.

Framework probes live here and nowhere else; each is guarded, so a probe that fails records its error instead of
failing the cell. Python 3.6 compatible.
"""
import importlib
import os
import platform
import sys


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


THREAD_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")


def _tensorflow(tf):
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    gpus = tf.config.list_physical_devices("GPU")
    return ({"intra_op": intra or "default (0: one per core)", "inter_op": inter or "default (0)"},
            {"available": bool(gpus), "devices": [g.name for g in gpus]})


def _jax(jax):
    devices = jax.devices()
    gpus = [d for d in devices if d.platform != "cpu"]
    return ({"xla_cpu": "XLA's default (one per core)"},
            {"available": bool(gpus), "devices": [str(d) for d in gpus]})


def _torch(torch):
    gpu = torch.cuda.is_available()
    return ({"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
            {"available": gpu, "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]})


PROBES = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def framework_info(name):
    """(version, threads, gpu) for a framework module name from the matrix (e.g. 'tensorflow', 'torch')."""
    module = importlib.import_module(name)
    version = getattr(module, "__version__", "unknown")
    probe = PROBES.get(name)
    if probe is None:
        return version, {}, {"available": None, "note": "no probe for %s" % name}
    try:
        threads, gpu = probe(module)
    except Exception as exc:  # noqa: BLE001 - provenance must never fail a cell
        threads, gpu = {"error": repr(exc)}, {"available": None, "error": repr(exc)}
    return version, threads, gpu


def weight_device(model):
    """Where the first weight lives: proof of which device the backend actually used."""
    try:
        value = model.weights[0].value
        devices = getattr(value, "devices", None)  # jax arrays
        if callable(devices):
            return str(sorted(devices(), key=str)[0])
        return str(getattr(value, "device", "unknown"))
    except Exception as exc:  # noqa: BLE001
        return "unknown (%r)" % exc


def host_info(framework_threads, gpu, device, loadavg_at_start):
    env = dict((k, os.environ[k]) for k in THREAD_VARS if k in os.environ)
    used = device.lower()
    gpu = dict(gpu)
    gpu["used"] = ("gpu" in used or "cuda" in used) if gpu.get("available") else False
    gpu["weight_device"] = device
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "threads": {"framework": framework_threads, "env": env},
        "gpu": gpu,
        "loadavg_at_start": loadavg_at_start,
        "platform": platform.platform(),
    }


def python_version():
    return "%d.%d.%d" % sys.version_info[:3]


def loadavg():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None
