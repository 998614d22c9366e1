"""Run one cell: `python -m models.worker SPEC.json`.

Reads the cell spec the runner wrote, imports the backend chosen by KERAS_BACKEND (set by the runner before this
process started), loads data, builds and compiles the model, trains it with the timing callback, evaluates it
and writes one result JSON atomically to the path in the spec. Nothing is printed on stdout that the runner
relies on: frameworks print there, so the result goes to a file. Exit status: 0 ok or skipped, 1 failed.
Python 3.6 compatible.
"""
import importlib
import json
import os
import sys
import time
import traceback

from models.errors import DataUnavailable

SCHEMA_VERSION = 1
WALL0 = time.time()  # as early as this module allows: the worker's own start


def median(values):
    values = sorted(values)
    n = len(values)
    if not n:
        return None
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0


def write_json_atomic(path, payload):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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


class CellSkipped(RuntimeError):
    """The matrix says this cell cannot run faithfully here (a `skip` known issue): skipped, with the reason."""


def known_issue(spec, keras_version):
    """The backend's known issue that matches this cell's model, profile and the installed Keras, or None."""
    cell = spec["cell"]
    for issue in spec["backend"].get("known_issues") or []:
        if cell["model"] not in issue["models"]:
            continue
        if issue.get("keras") and not keras_version.startswith(issue["keras"]):
            continue
        if issue.get("profiles") and cell["profile"] not in issue["profiles"]:
            continue
        return issue
    return None


def explain(issue, versions):
    """The issue's reason with the versions it was seen with, for the result's error."""
    what = ", ".join("%s %s" % (k, v) for k, v in sorted(versions.items()) if k not in ("numpy", "keras_backend"))
    return "known issue (%s): %s" % (what, " ".join(issue["reason"].split()))


def first_line(exc, limit=500):
    """One line of an exception for the result (CNTK's messages run to pages; worker.log keeps them whole)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[:limit] + "..."


GATE_PROBE = [-3.0, -2.5, -1.0, -0.2, 0.0, 0.4, 1.0, 2.5, 3.0]  # where the sigmoids and hard sigmoids differ


def record_settings(spec, result):
    """The settings the cell runs under, resolved, plus the variables as this process really sees them."""
    variant = spec["variant"]  # runner/cells.py worker_spec, always
    settings = result["settings"]
    settings.update(
        variant=variant["name"],
        variant_changes_numerics=bool(variant.get("changes_numerics")),
        data_format=variant["data_format"],
        jit_compile=variant["jit_compile"],
        steps_per_execution=variant.get("steps_per_execution"),
        mixed_precision=variant.get("mixed_precision"),
        jax_config=variant.get("jax_config") or {},
    )
    env = spec["variables"]  # every variable the runner set (runner.cells.cell_variables), not a rebuild of them
    settings["env"] = env
    settings["variant_env"] = dict(variant.get("env") or {})
    # read back, not assumed: what the runner set before this interpreter started
    settings["env_applied"] = dict((k, os.environ.get(k)) for k in sorted(env))
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


def run(spec, result):
    """Fill `result` stage by stage; an exception leaves `result['stage']` at the stage that failed."""
    from models import provenance
    from models.faults import maybe_inject
    from models.timing import EventLog

    events = EventLog(spec["paths"].get("events"))
    model_name = spec["cell"]["model"]

    def enter(stage, **extra):
        result["stage"] = stage
        events.emit(kind="stage", stage=stage, **extra)
        maybe_inject(stage, model_name)

    launched_at = float(os.environ.get("KBM_LAUNCHED_AT", WALL0))
    timeline = result["timeline"]
    timeline["worker_start_s"] = WALL0 - launched_at
    load_at_start = provenance.loadavg()
    probed = {"threads": {}, "gpu": {"available": None}}  # what the framework said, for a cell that fails later
    limit_gb = spec.get("memory_limit_gb")
    if limit_gb:  # heap + private mappings (RLIMIT_AS would count the address space TF and XLA reserve)
        import resource

        limit = int(limit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        enter("start")
        variant = record_settings(spec, result)
        enter("import")
        t = time.perf_counter()
        if variant.get("jax_config"):
            result["settings"]["jax_config_applied"] = apply_jax_config(variant["jax_config"])
        keras = importlib.import_module("keras")
        framework = spec["backend"]["framework"]
        fw_version, threads, gpu = provenance.framework_info(framework)
        probed.update(threads=threads, gpu=gpu)
        timeline["import_s"] = time.perf_counter() - t
        from models import compat, data

        # GPUs the cell was given, or that the framework sees (a GPU image run without a scheduler)
        gpus = (spec.get("resources") or {}).get("gpus") or (1 if gpu.get("available") else 0)
        api = compat.KerasAPI(keras, data_format=variant["data_format"], gpus=gpus,
                              recurrent_activation=variant.get("recurrent_activation"))
        result["settings"]["recurrent_activation"] = api.recurrent_activation
        if variant.get("mixed_precision"):
            api.set_mixed_precision(variant["mixed_precision"])
        result["versions"] = {
            "python": provenance.python_version(),
            "keras": keras.__version__,
            "keras_backend": api.backend_name(),
            framework: fw_version,
            "numpy": importlib.import_module("numpy").__version__,
        }
        if api.backend_name() != spec["backend"]["keras_backend"]:
            raise RuntimeError("KERAS_BACKEND asked for %r but Keras loaded %r"
                               % (spec["backend"]["keras_backend"], api.backend_name()))
        issue = known_issue(spec, keras.__version__)
        if issue is not None:
            result["known_issue"] = dict(issue, explained=explain(issue, result["versions"]))
            if issue["action"] == "skip":
                raise CellSkipped(result["known_issue"]["explained"])

        enter("data")
        t = time.perf_counter()
        model_spec, run_spec = spec["model"], spec["run"]
        module = importlib.import_module("models." + spec["cell"]["model"])
        api.set_seed(spec["cell"]["seed"])
        ds = data.load(
            keras, model_spec["dataset"], module.INPUT_LAYOUT, api.data_format, spec["data"]["source"],
            run_spec["train_samples"], run_spec["test_samples"], spec["cell"]["seed"],
            offline_wheel=spec["data"].get("offline_wheel"), cache_dir=spec["data"].get("cache_dir"),
        )
        result["data"] = ds.info
        timeline["data_s"] = time.perf_counter() - t

        enter("build")
        t = time.perf_counter()
        model = module.build(api, ds)
        jit = api.compile(model, api.optimizer(model_spec["optimizer"]), module.LOSS, variant["jit_compile"],
                          variant.get("steps_per_execution"))
        result["params"] = api.count_params(model)
        try:  # what the built LSTM's gates compute, for the record (and the tests); never fails the cell
            probe = api.gate_probe(model, GATE_PROBE)
        except Exception as exc:  # noqa: BLE001 - an old backend's eval quirk must not cost the measurement
            probe = None
            result["warnings"].append("the LSTM gate probe failed: %s" % first_line(exc))
        if probe is not None:
            result["settings"]["recurrent_activation_probe"] = {"x": GATE_PROBE, "y": probe}
        result["settings"]["jit_compile_resolved"] = jit
        if api.compile_context is not None:
            result["settings"]["compile_context"] = api.compile_context
        timeline["build_s"] = time.perf_counter() - t
        if result["params"] != model_spec["expected_params"]:  # bAbI's count follows the data's vocabulary
            result["warnings"].append("parameter count %d differs from the example's %d"
                                      % (result["params"], model_spec["expected_params"]))

        enter("train", epochs=run_spec["epochs"])
        from models.timing import make_epoch_timer

        timer = make_epoch_timer(keras, events, api.metric_name)
        fit_kwargs = {"batch_size": model_spec["batch_size"], "epochs": run_spec["epochs"], "callbacks": [timer]}
        if model_spec.get("validation_split"):
            fit_kwargs["validation_split"] = model_spec["validation_split"]
            n_fit = int(len(ds.y_train) * (1 - model_spec["validation_split"]))
        else:
            fit_kwargs["validation_data"] = (ds.x_test, ds.y_test)
            n_fit = len(ds.y_train)
        if model_spec.get("whole_batches"):  # the example's fit_generator: steps_per_epoch = n // batch_size
            n_fit = samples_in_whole_batches(n_fit, model_spec["batch_size"])
            fit_kwargs["samples_per_epoch"] = n_fit
        t = time.perf_counter()
        api.fit(model, ds.x_train, ds.y_train, **fit_kwargs)
        timeline["fit_s"] = time.perf_counter() - t
        timeline["first_batch_s"] = timer.train_started_at - launched_at
        # process start to first batch, less the framework's own import: what the harness adds per cell
        timeline["fixed_overhead_s"] = timeline["first_batch_s"] - timeline["import_s"]
        for record in timer.epochs:
            record["samples"] = n_fit
        result["epochs"] = timer.epochs
        result.update(epoch_summary(timer.epochs))
        result.update(fit_summary(timeline["fit_s"], len(timer.epochs), timer.train_begin_perf - t))
        result["fit_params"] = timer.fit_params

        result["settings"]["process_threads"] = thread_names()  # after training, the framework's pools are up
        enter("evaluate")
        t = time.perf_counter()
        scores = model.evaluate(ds.x_test, ds.y_test, batch_size=model_spec["batch_size"], verbose=0)
        timeline["evaluate_s"] = time.perf_counter() - t
        result["test"] = {"loss": float(scores[0]), "accuracy": float(scores[1]), "samples": len(ds.y_test)}
        device = provenance.weight_device(model, framework, gpu.get("available"))
        result["host"] = provenance.host_info(threads, gpu, device, load_at_start)
        result["status"] = "ok"
        result["stage"] = "done"
        if issue is not None:
            result["warnings"].append("the known issue did not occur: " + result["known_issue"]["explained"])
    finally:
        if "host" not in result:  # stopped before the model was placed: GPU use known only where there is none
            result["host"] = provenance.host_info(probed["threads"], probed["gpu"], None, load_at_start)
        events.emit(kind="stage", stage=result["stage"])
        events.close()


def process_cpu_s():
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m models.worker SPEC.json\n")
        return 2
    with open(argv[0]) as handle:
        spec = json.load(handle)
    result = {
        "schema_version": SCHEMA_VERSION,
        "status": "failed",
        "error": None,
        "stage": "start",
        "cell": spec["cell"],
        "cell_id": spec["cell_id"],
        "spec_hash": spec["spec_hash"],
        "params": None,
        "epochs": [],
        "settings": dict(spec["backend"], profile=spec["run"], data=spec["data"]["source"]),
        "timeline": {},
        "warnings": [],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(WALL0)),
    }
    code = 0
    try:
        run(spec, result)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its stage and reason
        traceback.print_exc()
        result["status"] = "skipped" if isinstance(exc, (DataUnavailable, CellSkipped)) else "failed"
        result["error"] = "%s: %s" % (type(exc).__name__, first_line(exc))
        if result.get("known_issue") and result["status"] == "failed":  # say why first, the raw error after
            result["error"] = "%s; error: %s" % (result["known_issue"]["explained"], result["error"])
        code = 0 if result["status"] == "skipped" else 1
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["timeline"]["process_cpu_s"] = process_cpu_s()  # lets the runner tell its own load from others'
    write_json_atomic(spec["paths"]["result"], result)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
