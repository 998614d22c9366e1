"""What the environment can say about itself: versions, CPU, threads, GPU and where the model really ran.

Each framework's own probe lives in models/frameworks/<name>.py; each call is guarded, so a probe that fails
records its error instead of failing the cell. Python 3.6 compatible.
"""
import importlib
import os
import platform
import sys

from models import frameworks


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpuinfo():
    """The first processor's fields from /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _max_mhz():
    """cpufreq's maximum (kHz in sysfs), else None: VMs often have no cpufreq."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as handle:
            return int(handle.read().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def fp32_flop_per_cycle(flags, vendor, family, model=None):
    """FP32 FLOP per cycle per core from the vector extensions, and the assumption behind it.

    A fused multiply-add is 2 FLOP per lane: AVX2+FMA, 8 lanes x 2 FMA units = 32; AVX-512 with two 512-bit FMA
    units = 64. AMD Zen 4 (family 0x19) runs AVX-512 as two 256-bit halves, so it stays at 32; Zen 5 (0x1a and
    later) and Intel are counted with two 512-bit FMA units (some Xeon Silver/Bronze parts have one: half that).
    """
    flags = set(flags)
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family is not None and family < 0x1A:
            return 32, "AVX-512 executed as 2x256-bit (AMD Zen 4): 2 FMA units x 8 FP32 lanes x 2"
        return 64, "AVX-512, assuming two 512-bit FMA units: 2 x 16 FP32 lanes x 2"
    if "avx2" in flags and "fma" in flags:
        if vendor == "AuthenticAMD" and family == 0x17 and model is not None and model < 0x30:
            return 16, "AVX2+FMA executed as 2x128-bit (AMD Zen/Zen+): 2 FMA units x 4 FP32 lanes x 2"
        return 32, "AVX2+FMA: 2 FMA units x 8 FP32 lanes x 2"
    if "avx" in flags:
        return 16, "AVX without FMA: one 8-lane add + one 8-lane multiply per cycle"
    if "sse2" in flags:
        return 8, "SSE2: one 4-lane add + one 4-lane multiply per cycle"
    return None, "no known vector extension in /proc/cpuinfo flags"


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def cpu_peak(cores=None):
    """An estimate of the CPU's FP32 peak: usable cores x clock x FLOP/cycle (fp32_flop_per_cycle), with the
    method and every input, so a report can show a CPU's share of peak and say how the peak was reached.
    Logical CPUs count as cores (a VM's vCPUs are what it may use); the clock is cpufreq's maximum where
    present, else the MHz /proc/cpuinfo reports (the current clock: turbo is not counted)."""
    info = _cpuinfo()
    cores = cores or usable_cores()
    family, model = (_int(info.get(k)) for k in ("cpu family", "model"))
    per_cycle, isa = fp32_flop_per_cycle(info.get("flags", "").split(), info.get("vendor_id"), family, model)
    mhz, clock_source = _max_mhz(), "cpufreq cpuinfo_max_freq"
    if mhz is None:
        try:
            mhz, clock_source = float(info["cpu MHz"]), "/proc/cpuinfo cpu MHz"
        except (KeyError, ValueError):
            mhz, clock_source = None, "unknown"
    gflops = cores * mhz / 1000.0 * per_cycle if per_cycle and mhz and cores else None
    return {
        "fp32_gflops": round(gflops, 1) if gflops else None,
        "method": "usable cores x clock x FP32 FLOP/cycle/core from vector extensions (an estimate, not measured)",
        "cores": cores,
        "clock_mhz": mhz,
        "clock_source": clock_source,
        "flop_per_cycle": per_cycle,
        "isa": isa,
    }


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


THREAD_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")


def framework_info(name):
    """(version, threads, gpu) for a framework module name from the matrix (e.g. 'tensorflow', 'torch')."""
    module = importlib.import_module(name)
    version = getattr(module, "__version__", "unknown")
    if not frameworks.has(name, "probe"):
        return version, {}, {"available": None, "note": "no probe for %s" % name}
    try:
        threads, gpu = frameworks.call(name, "probe", module)
    except Exception as exc:  # noqa: BLE001 - provenance must never fail a cell
        threads, gpu = {"error": repr(exc)}, {"available": None, "error": repr(exc)}
    return version, threads, gpu


def weight_device(model, framework=None, gpu_available=None):
    """Where the first weight lives: proof of which device the backend actually used. The 2017 frameworks keep no
    device on a Keras weight; for them it is where the framework places work (`placement`)."""
    try:
        value = model.weights[0].value
        devices = getattr(value, "devices", None)  # jax arrays
        if callable(devices):
            return str(sorted(devices(), key=str)[0])
        device = getattr(value, "device", None)
        if device is not None and not callable(device) and str(device):
            return str(device)
    except Exception:  # noqa: BLE001 - fall through to the framework's placement
        pass
    try:
        return placement(model, framework, gpu_available)
    except Exception as exc:  # noqa: BLE001
        return "unknown (%r)" % exc


def placement(model, framework, gpu_available):
    """Where a 2017 framework runs the model: MXNet the context compile gave it, Theano its configured device,
    CNTK its default device, TensorFlow 1.x GPU 0 when it has one (its default placement), else the CPU."""
    if framework and frameworks.has(framework, "placement"):
        return frameworks.call(framework, "placement", model, gpu_available)
    return "unknown"


def gpu_used(available, device):
    """True/False when it can be told; None when the framework could not say whether it has a GPU, or the cell
    stopped before its model was placed (device None) on a machine with one."""
    if device is None:
        return False if available is False else None
    device = device.lower()
    on_gpu = any(word in device for word in ("gpu", "cuda"))
    if available is None:
        return True if on_gpu else None
    return bool(available) and on_gpu


def host_info(framework_threads, gpu, device, loadavg_at_start):
    env = dict((k, os.environ[k]) for k in THREAD_VARS if k in os.environ)
    gpu = dict(gpu)
    gpu["used"] = gpu_used(gpu.get("available"), device)
    gpu["weight_device"] = device
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_peak": _guarded(cpu_peak),
        "threads": {"framework": framework_threads, "env": env},
        "gpu": gpu,
        "loadavg_at_start": loadavg_at_start,
        "platform": platform.platform(),
    }


def _guarded(probe):
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - provenance must never fail a cell
        return {"fp32_gflops": None, "error": repr(exc)}


def python_version():
    return "%d.%d.%d" % sys.version_info[:3]


def loadavg():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None
