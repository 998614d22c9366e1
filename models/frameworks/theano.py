"""Theano (Keras 2.0.8): the one device its config names. Python 3.6 compatible."""


def probe(theano):
    """Theano computes on the one device its config names (THEANO_FLAGS/.theanorc); a GPU it is not told about
    is not available to it."""
    device = str(theano.config.device)
    on_gpu = device.startswith(("cuda", "gpu", "opencl"))
    return ({"openmp": bool(theano.config.openmp)},
            {"available": on_gpu, "devices": [device] if on_gpu else [], "config_device": device})


def placement(model, gpu_available):
    import theano

    return "theano " + str(theano.config.device)


def read_precision(on_gpu):
    import theano

    return {"float32_matmul": "float32", "float32_conv": "float32",
            "flags": {"theano.config.floatX": str(theano.config.floatX)}, "note": "Theano 0.9 predates TF32"}
