"""Run one cell: `python -m models.worker SPEC.json`.

Reads the cell spec the runner wrote and fills the result skeleton it carries (`result_template`, made by the
host's one result constructor) stage by stage: import, data, build, train, evaluate, inference, record. Each stage
is one function, entered the same way (the stage is recorded, an event emitted, a test's fault injected) and
timed the same way (perf_counter around it, `timeline.<stage>_s`). What a stage asks of the model's trainer goes
through a driver: Keras (models/keras_driver.py) or a framework's native twin (models/native/). The result is
written atomically to the path in the spec, never to stdout (frameworks print there); the host validates it.
Exit status: 0 ok or skipped, 1 failed. Python 3.6 compatible.
"""
import contextlib
import copy
import importlib
import json
import os
import sys
import time
import traceback

from models.errors import DataUnavailable, RequirementMissing
from models.util import first_line, median, write_json_atomic

WALL0 = time.time()  # as early as this module allows: the worker's own start
USER_CODE_STAGES = ("build", "train", "evaluate")  # where a user model's own code runs on the backend
GATE_PROBE = [-3.0, -2.5, -1.0, -0.2, 0.0, 0.4, 1.0, 2.5, 3.0]  # where the sigmoids and hard sigmoids differ


class CellSkipped(RuntimeError):
    """The matrix says this cell cannot run faithfully here (a `skip` known issue): skipped, with the reason."""


def epoch_summary(epochs):
    """First epoch (build/compile/tracing included) apart from steady epochs, as pyperf keeps warmups apart."""
    if not epochs:
        return {"first_epoch_s": None, "steady_epoch_s": None, "compile_s": None, "steady_epochs": 0}
    first = epochs[0]["wall_s"]
    steady = [e["wall_s"] for e in epochs[1:]]
    steady_s = median(steady)
    return {
        "first_epoch_s": first,
        "steady_epoch_s": steady_s,
        # what the first epoch cost beyond a steady one: graph building, tracing, XLA/jit compilation
        "compile_s": max(first - steady_s, 0.0) if steady_s is not None else None,
        "steady_epochs": len(steady),
    }


def fit_summary(fit_s, epochs_run, build_fn_s):
    """The article's way: wall time around the whole `fit` call / epochs, so the training-function build, tracing
    and compilation count in every Keras generation (Keras 2.0.8/1.2.2 build before on_train_begin, where no epoch
    callback sees it: that part is `build_fn_s`; Keras 3 traces inside epoch 1, so its build_fn_s is ~0)."""
    return {
        "article_epoch_s": fit_s / epochs_run if epochs_run else None,
        "build_fn_s": max(build_fn_s, 0.0),
    }


def samples_in_whole_batches(n, batch_size):
    """Samples per epoch when an epoch is n // batch_size full batches (the CIFAR example's fit_generator)."""
    return (n // batch_size) * batch_size or n


def explain(issue, versions):
    """The issue's reason with the versions it was seen with, for the result's error."""
    what = ", ".join("%s %s" % (k, v) for k, v in sorted(versions.items()) if k not in ("numpy", "keras_backend"))
    return "known issue (%s): %s" % (what, " ".join(issue["reason"].split()))


def record_settings(spec, result):
    """The settings the cell runs under, resolved, plus the variables as this process really sees them. A model
    file of the user's own keeps Keras' default image layout whatever the variant says: its INPUT_SHAPE and data
    are in the layout it was written for (a layout variant would reinterpret them, not transpose them)."""
    variant = spec["variant"]  # runner/cells.py worker_spec, always
    if spec["model"].get("module") or spec["model"].get("suite"):  # KerasHub's suite: its images are HWC too
        variant = dict(variant, data_format="channels_last")
    env = spec["variables"]  # every variable the runner set (runner.cells.cell_variables), not a rebuild of them
    result["settings"] = {
        "variant": variant["name"],
        "variant_changes_numerics": bool(variant.get("changes_numerics")),
        "data_format": variant["data_format"],
        "jit_compile": variant["jit_compile"],
        "steps_per_execution": variant.get("steps_per_execution"),
        "mixed_precision": variant.get("mixed_precision"),
        "float32_precision": variant.get("float32_precision"),
        "jax_config": variant.get("jax_config") or {},
        "env": env,
        "variant_env": dict(variant.get("env") or {}),
        # read back, not assumed: what the runner set before this interpreter started
        "env_applied": dict((k, os.environ.get(k)) for k in sorted(env)),
        "limits": dict((k, spec["run"][k]) for k in ("epochs", "train_samples", "test_samples")),
    }
    return variant


def thread_names():
    """How many threads of each name this process runs (Linux): what thread variables really did (TensorFlow's
    getters report its config, not TF_NUM_*_THREADS; tf_Compute is its inter-op pool)."""
    import glob

    counts = {}
    for path in glob.glob("/proc/self/task/*/comm"):
        try:
            with open(path) as handle:
                name = handle.read().strip()
        except (IOError, OSError):
            continue
        counts[name] = counts.get(name, 0) + 1
    return counts


def apply_jax_config(options):
    """Options JAX reads from no environment variable, set before its first computation."""
    if not options:
        return {}
    import jax

    for name, value in sorted(options.items()):
        jax.config.update(name, value)
    return dict((name, jax.config.read(name)) for name in options)


def make_driver(spec, variant):
    """The trainer the stages drive: Keras, or the framework's native twin (backend `driver: native`)."""
    def gpus(gpu):  # GPUs the cell was given, or that the framework sees (a GPU image run without a scheduler)
        return (spec.get("resources") or {}).get("gpus") or (1 if gpu.get("available") else 0)

    if spec["backend"].get("driver", "keras") == "native":
        from models import native

        return native.driver(spec, variant, gpus)
    from models.keras_driver import KerasDriver

    return KerasDriver(spec, variant, gpus)


def model_module(spec):
    """The model's definition: one of models/<name>.py, or a user's file (`model.module`, models/user_model.py)."""
    if spec["model"].get("module"):
        from models import user_model

        return user_model.load(spec["model"]["module"])
    module = importlib.import_module("models." + spec["cell"]["model"])
    return getattr(module, "MODEL", module)  # a keras.io suite model is an object over KerasHub (models/hub.py)


class CellRun(object):
    """One cell in progress: its spec, the result being filled, the event log and what the stages pass on."""

    def __init__(self, spec, result, events):
        from models import provenance
        from models.faults import maybe_inject

        self.spec, self.result, self.events = spec, result, events
        self.timeline = result["timeline"]
        self.launched_at = float(os.environ.get("KBM_LAUNCHED_AT", WALL0))
        self.timeline["worker_start_s"] = WALL0 - self.launched_at
        self.load_at_start = provenance.loadavg()
        self.probed = {"threads": {}, "gpu": {"available": None}}  # what the framework said, for a later failure
        self.driver = self.module = self.ds = self.variant = self.issue = None
        self._inject = maybe_inject

    def enter(self, stage, **extra):
        self.result["stage"] = stage
        self.events.emit(kind="stage", stage=stage, **extra)
        self._inject(stage, self.spec["cell"]["model"])

    @contextlib.contextmanager
    def stage(self, name, **extra):
        """Enter `name` and time it: `timeline.<name>_s` is perf_counter around the stage, for every stage."""
        self.enter(name, **extra)
        t = time.perf_counter()
        yield
        self.timeline[name + "_s"] = time.perf_counter() - t


def stage_import(cell):
    spec, result = cell.spec, cell.result
    cell.variant = variant = record_settings(spec, result)
    if variant.get("jax_config"):
        result["settings"]["jax_config_applied"] = apply_jax_config(variant["jax_config"])
    cell.driver = make_driver(spec, variant)
    result["versions"] = cell.driver.import_framework()
    cell.probed.update(threads=cell.driver.threads, gpu=cell.driver.gpu)
    result["settings"]["precision"] = precision_block(spec, variant, cell.driver)
    result["settings"]["recurrent_activation"] = cell.driver.recurrent_activation
    issue = cell.driver.known_issue(spec)
    if issue is not None:
        cell.issue = result["known_issue"] = dict(issue, explained=explain(issue, result["versions"]))
        if issue["action"] == "skip":
            raise CellSkipped(result["known_issue"]["explained"])


def precision_block(spec, variant, driver):
    """Float32 math as the variant asks (full float32 unless `tf32`), set now, before anything is traced, and
    read back (models/precision.py); results of an older matrix without the field run at full float32."""
    from models import precision

    block = precision.apply(spec["backend"]["framework"], variant.get("float32_precision") or "float32",
                            driver.gpu, driver.dtype_policy(), variant.get("cudnn_benchmark"))
    block["xla_flags"] = os.environ.get("XLA_FLAGS")
    return block


def stage_data(cell):
    cell.module = model_module(cell.spec)
    cell.driver.seed(cell.spec["cell"]["seed"])
    cell.ds = cell.driver.load_data(cell.spec, cell.module.INPUT_LAYOUT, cell.module)
    cell.result["data"] = cell.ds.info
    if getattr(cell.module, "suite", None):  # a keras.io suite model: its KerasHub version with the others
        from models import hub

        cell.result["versions"]["keras_hub"] = hub.keras_hub_version()
        cell.result["suite"] = {"suite": cell.module.suite}


def stage_build(cell):
    from models import memory

    result, driver = cell.result, cell.driver
    result["memory"] = {"rss_before_build_mb": memory.current_rss_mb(), "rss_scope": memory.RSS_SCOPE}
    result["params"] = driver.build(cell.module, cell.ds)
    try:  # what the built LSTM's gates compute, for the record (and the tests); never fails the cell
        probe = driver.gate_probe(GATE_PROBE)
    except Exception as exc:  # noqa: BLE001 - an old backend's eval quirk must not cost the measurement
        probe = None
        result["warnings"].append("the LSTM gate probe failed: %s" % first_line(exc))
    if probe is not None:
        result["settings"]["recurrent_activation_probe"] = {"x": GATE_PROBE, "y": probe}
    result["settings"]["jit_compile_resolved"] = driver.jit_resolved
    if driver.compile_context is not None:
        result["settings"]["compile_context"] = driver.compile_context
    expected = cell.spec["model"].get("expected_params")
    if expected and result["params"] != expected:  # bAbI's count follows the data's vocabulary
        result["warnings"].append("parameter count %d differs from the example's %d" % (result["params"], expected))


def fit_plan(model_spec, ds):
    """What fit is told besides the callback, the samples each epoch trains and those it validates."""
    kwargs = {"batch_size": model_spec["batch_size"]}
    if model_spec.get("validation_split"):
        kwargs["validation_split"] = model_spec["validation_split"]
        n_fit = int(len(ds.y_train) * (1 - model_spec["validation_split"]))
        n_val = len(ds.y_train) - n_fit
    else:
        kwargs["validation_data"] = (ds.x_test, ds.y_test)
        n_fit, n_val = len(ds.y_train), len(ds.y_test)
    if model_spec.get("whole_batches"):  # the example's fit_generator: steps_per_epoch = n // batch_size
        n_fit = samples_in_whole_batches(n_fit, model_spec["batch_size"])
        kwargs["samples_per_epoch"] = n_fit
    return kwargs, n_fit, n_val


def work_of(spec, variant, n_fit, n_val, ds, precision="float32"):
    """What each epoch trained and validated: figures compare only for the same work (common/work.py)."""
    source = ds.info["source"]
    data = "synthetic" if source == "synthetic" else ("file:" + ds.info["sha256"][:12] if source == "file" else "real")
    return {"train_samples": n_fit, "val_samples": n_val, "batch_size": spec["model"]["batch_size"],
            "epochs": spec["run"]["epochs"], "steps_per_execution": variant.get("steps_per_execution") or 1,
            "data": data, "model_hash": spec["model"].get("module_sha256"), "precision": precision,
            "config": spec["model"].get("config_id")}  # a suite model's configuration: small is not keras.io's


def stage_train(cell):
    from models.timing import EpochClock

    spec, result, timeline = cell.spec, cell.result, cell.timeline
    fit_kwargs, n_fit, n_val = fit_plan(spec["model"], cell.ds)
    fit_kwargs["epochs"] = spec["run"]["epochs"]
    clock = EpochClock(cell.events, spec["run"]["epochs"])
    t = time.perf_counter()
    fit_params = cell.driver.fit(cell.ds, clock, fit_kwargs)
    timeline["fit_s"] = time.perf_counter() - t
    timeline["first_batch_s"] = clock.train_started_at - cell.launched_at
    # process start to first batch, less the framework's own import: what the harness adds per cell
    timeline["fixed_overhead_s"] = timeline["first_batch_s"] - timeline["import_s"]
    for record in clock.epochs:
        record["samples"] = n_fit
    result["epochs"] = clock.epochs
    result.update(epoch_summary(clock.epochs))
    result.update(fit_summary(timeline["fit_s"], len(clock.epochs), clock.train_begin_perf - t))
    result["fit_params"] = fit_params
    result["work"] = work_of(spec, cell.variant, n_fit, n_val, cell.ds,
                             (result["settings"].get("precision") or {}).get("effective") or "float32")
    result["settings"]["process_threads"] = thread_names()  # after training, the framework's pools are up


def stage_evaluate(cell):
    from models import memory

    ds = cell.ds
    loss, accuracy = cell.driver.evaluate(ds.x_test, ds.y_test, cell.spec["model"]["batch_size"])
    cell.result["test"] = {"loss": loss, "accuracy": accuracy, "samples": len(ds.y_test)}
    cell.result["memory"]["peak_rss_after_train_mb"] = memory.peak_rss_mb()


def stage_inference(cell):
    from models import inference

    ds, result = cell.ds, cell.result
    model = cell.spec["cell"]["model"]
    config = cell.spec["model"].get("config") or {}  # a suite model predicts at its own batch (keras.io's)
    measured = inference.measure(cell.driver, ds.x_test, len(ds.y_test), cell.spec["inference"],
                                 config.get("predict_batch_size") or cell.spec["model"]["batch_size"],
                                 lambda: cell._inject("inference-call", model))
    result["inference"] = measured
    if measured["error"]:
        result["warnings"].append("inference: " + measured["error"])


def stage_generate(cell):
    """A keras.io suite causal LM's generation (models/hub.py): time to first token and ms per token; a failure is
    a warning, as inference's, never the training result's loss."""
    try:
        cell.result["suite"]["generate"] = cell.module.measure_generate(cell.driver.model, cell.ds)
    except Exception as exc:  # noqa: BLE001 - generation must never cost the training result
        cell.result["warnings"].append("generate: %s: %s" % (type(exc).__name__, first_line(exc)))


def stage_record(cell):
    from models import memory, provenance

    result, driver = cell.result, cell.driver
    gpu = cell.probed["gpu"]
    device = driver.weight_device(gpu.get("available"))
    result["host"] = provenance.host_info(cell.probed["threads"], gpu, device, cell.load_at_start)
    peak, method, note = driver.gpu_peak()
    result["memory"].update(peak_rss_mb=memory.peak_rss_mb(), gpu_peak_mb=peak, gpu_method=method, gpu_note=note,
                            gpu_preallocate=memory.preallocation(cell.spec["backend"]["framework"]))
    if cell.result.get("suite") is not None:  # what the suite model was, once training ran (models/hub.py)
        cell.result["suite"].update(cell.module.describe(cell.driver.model))
    result["status"] = "ok"
    if cell.issue is not None:
        result["warnings"].append("the known issue did not occur: " + cell.issue["explained"])


STAGES = [("import", stage_import), ("data", stage_data), ("build", stage_build), ("train", stage_train),
          ("evaluate", stage_evaluate), ("inference", stage_inference), ("generate", stage_generate),
          ("record", stage_record)]


def run(spec, result):
    """Fill `result` stage by stage; an exception leaves `result['stage']` at the stage that failed."""
    from models import provenance
    from models.timing import EventLog

    events = EventLog(spec["paths"].get("events"))
    cell = CellRun(spec, result, events)
    limit_gb = spec.get("memory_limit_gb")
    if limit_gb:  # heap + private mappings (RLIMIT_AS would count the address space TF and XLA reserve)
        import resource

        limit = int(limit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        cell.enter("start")
        for name, stage in STAGES:
            if name == "inference" and not spec.get("inference"):
                continue  # --no-inference, or a profile without it: nothing measured, nothing claimed
            if name == "generate" and not getattr(cell.module, "generates", False):
                continue  # only a suite model generates
            extra = {"epochs": spec["run"]["epochs"]} if name == "train" else {}
            with cell.stage(name, **extra):
                stage(cell)
        result["stage"] = "done"
    finally:
        if not result.get("host"):  # stopped before the model was placed: GPU use known only where there is none
            result["host"] = provenance.host_info(cell.probed["threads"], cell.probed["gpu"], None,
                                                  cell.load_at_start)
        events.emit(kind="stage", stage=result["stage"])
        events.close()


def process_cpu_s():
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def utc_stamp(epoch_s=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch_s is None else epoch_s))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m models.worker SPEC.json\n")
        return 2
    with open(argv[0]) as handle:
        spec = json.load(handle)
    result = copy.deepcopy(spec["result_template"])  # the host's one result constructor made it
    result["started_at"] = utc_stamp(WALL0)
    code = 0
    try:
        run(spec, result)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its stage and reason
        traceback.print_exc()
        skip = isinstance(exc, (DataUnavailable, CellSkipped, RequirementMissing))  # what you must provide
        result["status"] = "skipped" if skip else "failed"
        result["error"] = "%s: %s" % (type(exc).__name__, first_line(exc))
        if result.get("known_issue") and result["status"] == "failed":  # say why first, the raw error after
            result["error"] = "%s; error: %s" % (result["known_issue"]["explained"], result["error"])
        elif spec["model"].get("module") and result["stage"] in USER_CODE_STAGES and result["status"] == "failed":
            from models.user_model import PORTABLE_HINT

            result["error"] = "%s (%s)" % (result["error"], PORTABLE_HINT)
        code = 0 if result["status"] == "skipped" else 1
    result["finished_at"] = utc_stamp()
    result["timeline"]["process_cpu_s"] = process_cpu_s()  # lets the runner tell its own load from others'
    write_json_atomic(spec["paths"]["result"], result)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
