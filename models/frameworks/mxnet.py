"""MXNet (Keras 1.2.2's dmlc fork): whether a GPU context works, the compile context. Python 3.6 compatible."""


def probe(mx):
    """MXNet 0.11 has no GPU count: an array on gpu(0) either works or raises (a CPU build, or no GPU)."""
    try:
        mx.nd.zeros((1,), ctx=mx.gpu(0)).asnumpy()
        gpus = ["gpu(0)"]
    except Exception:  # noqa: BLE001 - MXNetError without CUDA or without a device
        gpus = []
    return {}, {"available": bool(gpus), "devices": gpus}


def placement(model, gpu_available):
    return "mxnet " + ",".join(str(c) for c in model._context)


def read_precision(on_gpu):
    return {"float32_matmul": "float32", "float32_conv": "float32", "note": "MXNet 0.11 predates TF32"}
