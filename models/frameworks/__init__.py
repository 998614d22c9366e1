"""One module per framework: everything the worker must ask a framework itself, found by the framework's name.

A framework's module (`models/frameworks/<name>.py`, <name> as matrix.yaml's `backends.<b>.framework` says it)
may define:

    probe(module)            -> (threads, gpu): its thread pools, and the GPUs it sees (product name, count,
                                compute capability), models/provenance.py records both
    placement(model, gpu)    -> where a framework with no device on a Keras weight runs the model (the 2017 ones)
    gpu_peak()               -> (MiB, method, note): its allocator's peak on the GPU, models/memory.py
    preallocation()          -> whether it preallocates device memory, and the setting that says so
    queued_waiter(on_gpu)    -> a callable(model) returning once queued work is done, or None (models/queued.py)
    set_precision(mode, on_gpu) and read_precision(on_gpu): float32 math at full float32 or TF32, applied after
                                import and read back from the framework (models/precision.py)
    set_cudnn_benchmark(on)  -> cuDNN's algorithm search, where a variant sets `cudnn_benchmark`

Whatever a module leaves out is answered by the defaults below, so adding a framework is one module and its
matrix.yaml entries (tests/test_frameworks.py adds a fake one). Python 3.6 compatible.
"""
import importlib


def get(name):
    """The framework's module, or None when it has none (a framework this project does not know yet)."""
    try:
        return importlib.import_module("models.frameworks." + name)
    except ImportError as exc:
        if getattr(exc, "name", None) == "models.frameworks." + name:  # the module itself is missing
            return None
        raise


def call(name, hook, *args, **kwargs):
    """`hook` of framework `name`, or None where the framework (or its module) does not define it."""
    module = get(name)
    fn = getattr(module, hook, None) if module is not None else None
    return fn(*args, **kwargs) if fn is not None else None


def has(name, hook):
    module = get(name)
    return module is not None and getattr(module, hook, None) is not None
