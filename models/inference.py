"""Inference, timed after training and evaluation, so nothing about the training figures can change.

Latency (MLPerf's single stream): batch size 1, `warmup` calls not counted, then `calls` calls timed one by one
with perf_counter around each; the very first call (tracing, compilation) is kept apart. The primary call is
`predict_on_batch`, the model's forward pass on one batch; Keras 3's `predict` also builds a data iterator per
call, which dominates at batch 1, so it is timed too and named apart (`method`). Each call returns host arrays
(NumPy), so the time includes the device's work and the copy back. Throughput (offline): `predict` over the test
split at each batch size, one warm-up pass, then the median of `passes`. A failure keeps what was measured before
it and says what failed and where (`error`). Python 3.6 compatible.
"""
import time

from models.util import first_line, percentile


def latency(predict, x_one, warmup, calls, method):
    """Latency of `predict(x_one)` in ms: the first call apart, then warmup calls, then `calls` timed calls."""
    t = time.perf_counter()
    predict(x_one)
    first_ms = (time.perf_counter() - t) * 1e3
    for _ in range(warmup):
        predict(x_one)
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        predict(x_one)
        samples.append((time.perf_counter() - t) * 1e3)
    return {
        "method": method, "batch_size": 1, "warmup": warmup, "first_call_ms": first_ms,
        "p50_ms": percentile(samples, 50), "p90_ms": percentile(samples, 90), "p99_ms": percentile(samples, 99),
        "mean_ms": sum(samples) / len(samples), "samples_ms": samples,
    }


def throughput(predict, x, n, batch_size, passes):
    """Samples/s of `predict(x, batch_size)` over n samples: one warm-up pass, then the median of `passes`."""
    t = time.perf_counter()
    predict(x, batch_size)
    warm = time.perf_counter() - t
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        predict(x, batch_size)
        times.append(time.perf_counter() - t)
    median = percentile(times, 50)
    return {"batch_size": batch_size, "samples": n, "warmup_pass_s": warm, "pass_s": times,
            "samples_per_s": n / median if median > 0 else None}


def one_sample(x):
    """The first test sample as a batch of one (a list or dict of inputs for a multi-input model)."""
    if isinstance(x, (list, tuple)):
        return [part[:1] for part in x]
    if isinstance(x, dict):  # named inputs (a KerasHub task's token_ids, padding_mask, ...)
        return dict((name, part[:1]) for name, part in x.items())
    return x[:1]


def measure(driver, x, n, settings, model_batch, before_each=None):
    """The whole inference section of a result; never raises (a failure is its `error`). `before_each` runs
    before each measurement (the tests' fault injection: a backend that cannot predict)."""
    sizes = [model_batch if s == "model" else int(s) for s in settings["batch_sizes"]]
    out = {"settings": dict(settings, batch_sizes=sizes), "latency": [], "throughput": [], "error": None}
    step = "latency (predict_on_batch, batch 1)"
    check = before_each or (lambda: None)
    try:
        x_one = one_sample(x)
        check()
        out["latency"].append(latency(driver.predict_on_batch, x_one, settings["warmup"], settings["calls"],
                                      "predict_on_batch"))
        if settings.get("predict_latency", True):
            step = "latency (predict, batch 1)"
            check()
            out["latency"].append(latency(lambda v: driver.predict(v, 1), x_one, settings["warmup"],
                                          settings["calls"], "predict"))
        for size in sizes:
            step = "throughput (predict, batch %d)" % size
            check()
            out["throughput"].append(throughput(driver.predict, x, n, size, settings["passes"]))
    except Exception as exc:  # noqa: BLE001 - inference must never cost the training result
        out["error"] = "%s failed: %s: %s" % (step, type(exc).__name__, first_line(exc))
    return out
