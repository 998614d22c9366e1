"""CNTK (Keras 2.0.8 and 2.2.4): its GPUs and default device. Python 3.6 compatible."""


def probe(cntk):
    gpus = [d for d in cntk.device.all_devices() if d.type() == cntk.device.DeviceKind.GPU]
    return {}, {"available": bool(gpus), "devices": [str(d) for d in gpus], "count": len(gpus) or None}


def placement(model, gpu_available):
    import cntk

    device = cntk.device.use_default_device()
    return "cntk " + ("gpu %s" % device.id() if device.type() == cntk.device.DeviceKind.GPU else "cpu")


def read_precision(on_gpu):
    return {"float32_matmul": "float32", "float32_conv": "float32", "note": "CNTK 2.7 predates TF32"}
