"""PyTorch: devices by product name, the caching allocator's peak, CUDA's queue, TF32 for matmuls and cuDNN.

Python 3.6 compatible.
"""


def probe(torch):
    gpu = torch.cuda.is_available()
    count = torch.cuda.device_count() if gpu else 0
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    info = {"available": gpu, "devices": names}
    if count:
        info.update(name=names[0], count=count, compute_capability="%d.%d" % torch.cuda.get_device_capability(0))
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}, info


def gpu_peak():
    import torch

    if not torch.cuda.is_available():
        return None, "torch.cuda.max_memory_allocated", "no CUDA device: the model lives in host memory"
    return (torch.cuda.max_memory_allocated() / float(1 << 20),
            "torch.cuda.max_memory_allocated (all devices: device 0)", None)


def preallocation():
    return "PyTorch's caching allocator: grows on demand; the peak counts bytes allocated"


def queued_waiter(on_gpu):
    """PyTorch queues CUDA kernels and returns; on a CPU its calls return when the work is done."""
    if not on_gpu:
        return None
    import torch

    return lambda model: torch.cuda.synchronize()


def _fp32_knobs(torch):
    """The float32 precision switches this PyTorch has: the fp32_precision attributes (2.9 and later: 'ieee' or
    'tf32'), else the allow_tf32 flags of older releases."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(conv, "conv", None), "fp32_precision"):
        return "fp32_precision"
    return "allow_tf32"


def set_precision(mode, on_gpu):
    import torch

    tf32 = mode == "tf32"
    if _fp32_knobs(torch) == "fp32_precision":
        torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
        rnn = getattr(torch.backends.cudnn, "rnn", None)
        if rnn is not None and hasattr(rnn, "fp32_precision"):
            rnn.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def set_cudnn_benchmark(on):
    """cuDNN's per-shape algorithm search (variant torch-cudnn-benchmark); read back by read_precision."""
    import torch

    torch.backends.cudnn.benchmark = on


def read_precision(on_gpu):
    import torch

    cudnn = torch.backends.cudnn
    if _fp32_knobs(torch) == "fp32_precision":
        matmul, conv = torch.backends.cuda.matmul.fp32_precision, cudnn.conv.fp32_precision
        flags = {"torch.backends.cuda.matmul.fp32_precision": matmul,
                 "torch.backends.cudnn.conv.fp32_precision": conv}
        rnn = getattr(cudnn, "rnn", None)
        if rnn is not None and hasattr(rnn, "fp32_precision"):
            flags["torch.backends.cudnn.rnn.fp32_precision"] = rnn.fp32_precision
        matmul_tf32, conv_tf32 = matmul == "tf32", conv == "tf32"
    else:  # the legacy switches; asking the legacy getter after the new setters raises, so each API is read alone
        matmul_tf32, conv_tf32 = bool(torch.backends.cuda.matmul.allow_tf32), bool(cudnn.allow_tf32)
        flags = {"torch.backends.cuda.matmul.allow_tf32": matmul_tf32, "torch.backends.cudnn.allow_tf32": conv_tf32,
                 "torch.get_float32_matmul_precision()": torch.get_float32_matmul_precision()}
    return {"float32_matmul": "tf32" if on_gpu and matmul_tf32 else "float32",
            "float32_conv": "tf32" if on_gpu and conv_tf32 else "float32",
            "cudnn_benchmark": bool(cudnn.benchmark), "cudnn_deterministic": bool(cudnn.deterministic),
            "flags": flags}
