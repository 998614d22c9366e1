"""The result contract: one JSON file per cell, written atomically, every field declared, validated on load.

Layout of a run (one run = one new folder, nothing overwritten):
    RESULTS/<run-id>/run.json                 what was asked, the host, the git state
    RESULTS/<run-id>/<cell-id>/spec.json      what the worker was told
    RESULTS/<run-id>/<cell-id>/worker.log     everything the worker and its framework printed
    RESULTS/<run-id>/<cell-id>/events.jsonl   stage and epoch events (progress, and the stage a crash reached)
    RESULTS/<run-id>/<cell-id>/result.json    the result (docs/reference/result-files.md)

Schema 2 declares every field (units in the names: `_s`, `_ms`, `_mb`); nested models forbid fields they do not
declare, so a typo in the worker is a validation error, not a silent new key. `migrate` reads schema 1 files.
`new_result` is the one constructor of a result's skeleton: the host fills it for cells that never ran, and hands
it to the worker in the spec, which fills in the rest (models/ stays plain Python 3.6 and writes JSON only).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import BadInput
from common.timeutil import utc_compact, utc_stamp

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
WORKER_RESULT_FILE = "worker-result.json"
STOCK_VARIANT = "stock"  # the Keras 3 backends as they ship; schema 1 called it "default"
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class Status(str, Enum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"
    timeout = "timeout"
    interrupted = "interrupted"

    @property
    def is_failure(self) -> bool:
        """Something went wrong that rerunning may fix: the run's exit status is 1."""
        return self in (Status.failed, Status.timeout)


Stage = Literal["start", "import", "data", "build", "train", "evaluate", "inference", "generate", "record", "done",
                "environment", "launch", "executor"]


class ResultError(BadInput):
    """A result file that is missing, unreadable or breaks the contract; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CellKey(_Strict):
    environment: str
    backend: str
    model: str
    profile: str
    repeat: int = Field(ge=0)
    seed: int
    variant: str


class Epoch(_Strict):
    """One epoch, from the callback's on_epoch_begin to on_epoch_end."""

    epoch: int = Field(ge=1)
    wall_s: float = Field(ge=0)
    cpu_s: float = Field(ge=0)  # process CPU time, all threads
    val_s: float | None = None  # the validation pass alone (None: not seen by the callback)
    samples: int = Field(ge=0)  # trained this epoch
    loss: float
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    extra_metrics: dict[str, float] = Field(default_factory=dict)  # any other key Keras logged


class Work(_Strict):
    """What the cell trained and validated per epoch: figures compare only for the same work (common/work.py)."""

    train_samples: int = Field(ge=0)
    val_samples: int | None = Field(None, ge=0)
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    steps_per_execution: int = Field(1, ge=1)
    data: str  # real | synthetic | file:<sha256 prefix> (--data-file)
    model_hash: str | None = None  # a user model file's sha256 (None: one of the five models)
    # the arithmetic it ran (settings.precision.effective): float32, tf32, mixed_bfloat16 (None: before it was
    # recorded, float32)
    precision: str | None = None
    config: str | None = None  # a keras.io suite model's configuration, `name:hash` (None: the five, a file)


class DataInfo(_Strict):
    source: str  # keras-cache, download, offline-wheel, synthetic, file
    sha256: str | None = None
    dataset: str
    train_samples: int
    test_samples: int
    files: list[str] = Field(default_factory=list)
    seed: int | None = None  # synthetic data
    note: str | None = None


class TestScores(_Strict):
    loss: float
    accuracy: float
    samples: int


class FitParams(_Strict):
    steps: int | None = None  # what Keras was told per epoch (Keras 3, fit_generator)
    samples: int | None = None  # Keras 2/1's fit of arrays


class BackendInfo(_Strict):
    title: str
    keras_backend: str
    framework: str
    family: str | None = None
    driver: str = "keras"  # keras, or native (the framework without Keras, models/native/)


class GateProbe(_Strict):
    x: list[float]
    y: list[float]


class Precision(_Strict):
    """The arithmetic the cell ran, read back from the framework after setup (models/precision.py)."""

    requested: str | None = None  # the variant's float32_precision: float32 | tf32
    float32_matmul: str | None = None  # float32 | tf32 | bfloat16 | bf16_3x: what float32 dots run as
    float32_conv: str | None = None  # likewise for convolutions
    dtype_policy: str | None = None  # Keras' dtype policy (float32, mixed_bfloat16, mixed_float16)
    effective: str = "float32"  # what a share of peak divides by: float32 | tf32 | mixed_bfloat16 | mixed_float16
    cudnn_benchmark: bool | None = None
    cudnn_deterministic: bool | None = None
    xla_flags: str | None = None
    flags: dict[str, Any] = Field(default_factory=dict)  # the framework's own switches as it reports them
    note: str | None = None


class Settings(_Strict):
    """The backend and variant settings, resolved, and what the worker's process really saw."""

    variant: str
    variant_changes_numerics: bool = False
    data_format: str
    jit_compile: bool | str
    jit_compile_resolved: bool | None = None
    recurrent_activation: str | None = None
    recurrent_activation_probe: GateProbe | None = None
    steps_per_execution: int | None = None
    mixed_precision: str | None = None
    float32_precision: str | None = None  # what the variant asked (models/precision.py)
    precision: Precision | None = None  # what the framework then ran, read back
    jax_config: dict[str, Any] = Field(default_factory=dict)
    jax_config_applied: dict[str, Any] | None = None
    env: dict[str, str] = Field(default_factory=dict)  # every variable the runner set (unexpanded)
    variant_env: dict[str, str] = Field(default_factory=dict)
    env_applied: dict[str, str | None] = Field(default_factory=dict)  # as the worker's process saw them
    process_threads: dict[str, int] | None = None  # threads by name after training
    compile_context: list[str] | None = None  # MXNet's compile context
    limits: dict[str, int | None] = Field(default_factory=dict)  # the profile's epochs/train/test samples


class KnownIssueHit(_Strict):
    models: list[str]
    action: Literal["explain", "skip"]
    reason: str
    keras: str | None = None
    profiles: list[str] | None = None
    explained: str


class Timeline(_Strict):
    """Seconds, each stage timed the same way (perf_counter around it)."""

    worker_start_s: float | None = None  # launch to interpreter up
    import_s: float | None = None  # Keras + framework
    data_s: float | None = None
    build_s: float | None = None  # model construction and compile()
    first_batch_s: float | None = None  # launch to on_train_begin
    fixed_overhead_s: float | None = None  # first batch less import: what the harness adds per cell
    fit_s: float | None = None  # the whole fit call
    train_s: float | None = None  # the train stage: fit_s and what the worker does around it
    evaluate_s: float | None = None
    inference_s: float | None = None
    generate_s: float | None = None  # a keras.io suite causal LM's generation (models/hub.py)
    record_s: float | None = None
    process_cpu_s: float | None = None


class CpuPeak(_Strict):
    fp32_gflops: float | None = None
    method: str | None = None
    cores: int | None = None
    clock_mhz: float | None = None
    clock_source: str | None = None
    flop_per_cycle: int | None = None
    isa: str | None = None
    error: str | None = None


class GpuInfo(_Strict):
    available: bool | None = None  # whether the framework sees one (None: it cannot say)
    devices: list[str] = Field(default_factory=list)
    name: str | None = None  # the product name of the first GPU ("NVIDIA H200"), from the framework (JAX: device_kind)
    count: int | None = None  # GPUs the framework sees
    compute_capability: str | None = None  # "9.0", where the framework says it
    used: bool | None = None  # whether the model's weights lived on it
    weight_device: str | None = None
    config_device: str | None = None  # Theano's configured device
    note: str | None = None
    error: str | None = None


BUSY_THRESHOLD = 0.20  # other processes took more than a fifth of the machine: the cell's figures are suspect


class HostLoad(_Strict):
    """How busy the machine was with anything but the cell (runner/hostload.py); `busy` past BUSY_THRESHOLD."""

    busy: bool = False
    other_cpu_share: float | None = None
    steal_share: float | None = None
    cell_cpu_s: float | None = None
    loadavg_before: list[float] | None = None
    error: str | None = None


class Host(_Strict):
    cpu_model: str | None = None
    cores: int | None = None
    usable_cores: int | None = None
    cpu_peak: CpuPeak | None = None
    threads: dict[str, dict[str, Any]] = Field(default_factory=dict)  # framework pools, thread variables
    gpu: GpuInfo = Field(default_factory=GpuInfo)
    loadavg_at_start: list[float] | None = None
    platform: str | None = None
    load: HostLoad | None = None


class ExecutorInfo(_Strict):
    """Where the cell ran. `name` and the environment always; the rest is what that executor reports."""

    name: str
    environment: str
    location: str | None = None  # venv folder, image tag, interpreter
    fingerprint: str | None = None
    pid: int | None = None
    kill_error: str | None = None  # stopping the cell failed: it may still be running
    # --python
    python: str | None = None
    executable: str | None = None
    versions: dict[str, str] | None = None
    version_warnings: list[str] | None = None
    # docker
    image: str | None = None
    image_id: str | None = None
    container_id: str | None = None
    start_error: str | None = None
    network_mode: str | None = None
    read_only_rootfs: bool | None = None
    cap_drop: list[str] | None = None
    security_opt: list[str] | None = None
    nano_cpus: int | None = None
    memory_bytes: int | None = None
    shm_bytes: int | None = None
    gpus: int | None = None
    writable_mounts: list[str] | None = None
    wait_error: str | None = None
    oom_killed: bool | None = None
    cpu_s: float | None = None
    # slurm and kubernetes
    job_id: str | None = None
    state: str | None = None
    node: str | None = None
    cuda_visible_devices: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    queue_wait_s: float | None = None
    exit_code: str | None = None
    sbatch: list[str] | None = None
    job: str | None = None
    namespace: str | None = None
    pod: str | None = None
    reason: str | None = None
    timed_out: bool | None = None


class LatencyStats(_Strict):
    """Calls timed one by one (perf_counter around each), after `warmup` calls that are not counted."""

    method: Literal["predict_on_batch", "predict"]
    batch_size: int = Field(ge=1)
    warmup: int = Field(ge=0)
    first_call_ms: float  # the very first call: tracing and compilation, kept apart
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    samples_ms: list[float]


class ThroughputStats(_Strict):
    """`predict` over the test split at one batch size: the median of `passes` after one warm-up pass."""

    batch_size: int = Field(ge=1)
    samples: int = Field(ge=1)  # per pass
    warmup_pass_s: float
    pass_s: list[float]
    samples_per_s: float


class InferenceSettings(_Strict):
    warmup: int = Field(ge=0)
    calls: int = Field(ge=1)
    batch_sizes: list[int]
    passes: int = Field(ge=1)
    predict_latency: bool = True  # also time `predict` at batch 1 (Keras builds a data iterator per call)


class Inference(_Strict):
    settings: InferenceSettings
    latency: list[LatencyStats] = Field(default_factory=list)
    throughput: list[ThroughputStats] = Field(default_factory=list)
    error: str | None = None  # what failed and where; what was measured before it stays

    def latency_of(self, method: str = "predict_on_batch") -> LatencyStats | None:
        return next((s for s in self.latency if s.method == method), None)


class Memory(_Strict):
    """Host: the worker's resident set; GPU: the framework's own peak counter, where it has one."""

    rss_before_build_mb: float | None = None  # after import and data: what the model and training add is above it
    peak_rss_after_train_mb: float | None = None  # high-water mark once training and evaluation ended
    peak_rss_mb: float | None = None  # high-water mark at the end (inference included)
    rss_scope: str | None = None  # e.g. "ru_maxrss: the whole process's high-water mark"
    gpu_peak_mb: float | None = None
    gpu_method: str | None = None  # torch.cuda.max_memory_allocated, jax peak_bytes_in_use, tf get_memory_info
    gpu_preallocate: str | None = None  # whether the framework preallocates (JAX's 75 %), and the setting
    gpu_note: str | None = None  # why gpu_peak_mb is null


class KerasIoFit(_Strict):
    """keras.io's training figure: ms per step over its window (steps 1..100 of the first epoch, step 0 out)."""

    ms_per_step: float | None = Field(None, gt=0)
    steps: int = Field(ge=0)
    window: int = Field(ge=1)
    first_step_excluded: bool = True


class GenerateRun(_Strict):
    batch_size: int = Field(ge=1)
    new_tokens: int = Field(ge=1)
    time_to_first_token_ms: float = Field(gt=0)
    ms_per_token: float | None = None  # (full call - first token) / further tokens; noise can make it <= 0
    generate_call_ms: float = Field(gt=0)  # keras.io's generate figure: one whole generate() call


class Generate(_Strict):
    prompt_tokens: int = Field(ge=1)
    max_length: int = Field(ge=2)
    runs: list[GenerateRun] = Field(default_factory=list)


class SuiteInfo(_Strict):
    """A keras.io suite model (models/hub.py): KerasHub's classes from an explicit configuration, random weights."""

    suite: str
    task: str | None = None
    keras_hub: str | None = None
    classes: dict[str, str] | None = None  # matrix.yaml's keras_hub: the backbone and task classes built
    # the configuration's FLOP per sample (models/hub_flops.py): forward, and a training step (LoRA's about 2x)
    flop_per_sample: float | None = Field(None, gt=0)
    train_flop_per_sample: float | None = Field(None, gt=0)
    weights: Literal["random"] | None = None
    config_name: str | None = None
    config: dict[str, Any] | None = None
    trainable_params: int | None = Field(None, ge=0)  # LoRA trains a small part of the parameters
    keras_io_fit: KerasIoFit | None = None
    generate: Generate | None = None


class CellResult(_Strict):
    """One cell's result. The manual's reference lists every field from this model; a worker field not declared
    fails validation."""

    schema_version: Literal[2]
    status: Status
    error: str | None = None
    stage: Stage
    cell: CellKey
    cell_id: str
    spec_hash: str
    backend: BackendInfo | None = None
    work: Work | None = None
    params: int | None = None
    epochs: list[Epoch] = Field(default_factory=list)
    first_epoch_s: float | None = Field(None, ge=0)
    steady_epoch_s: float | None = Field(None, ge=0)
    steady_epochs: int | None = Field(None, ge=0)
    compile_s: float | None = Field(None, ge=0)
    # wall time around the whole fit call / epochs (2017's way: function build and compilation included)
    article_epoch_s: float | None = Field(None, gt=0)
    # fit's work before on_train_begin (Keras 2.0.8/1.2.2 build the training function there; ~0 on Keras 3)
    build_fn_s: float | None = Field(None, ge=0)
    test: TestScores | None = None
    inference: Inference | None = None
    suite: SuiteInfo | None = None  # the keras.io suite's models only
    memory: Memory | None = None
    data: DataInfo | None = None
    fit_params: FitParams | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    settings: Settings | None = None
    known_issue: KnownIssueHit | None = None
    timeline: Timeline = Field(default_factory=Timeline)
    host: Host = Field(default_factory=Host)
    executor: ExecutorInfo
    git_commit: str | None = None
    git_dirty: bool | None = None
    started_at: str = Field(pattern=TIMESTAMP)
    finished_at: str = Field(pattern=TIMESTAMP)
    cell_wall_s: float | None = None
    returncode: int | None = None
    warnings: list[str] = Field(default_factory=list)
    log_tail: list[str] | None = None  # the end of worker.log, for a cell that did not end ok

    @model_validator(mode="after")
    def _complete_when_ok(self) -> CellResult:
        if self.status is Status.ok:
            missing = [f for f in ("params", "data", "first_epoch_s", "test", "work", "settings")
                       if getattr(self, f) is None]
            if not self.epochs:
                missing.append("epochs")
            if missing:
                raise ValueError(f"status ok but missing {', '.join(missing)}")
            # the whole fit holds every epoch: an article_epoch_s below the epochs' mean was not timed around fit
            mean_epoch = sum(e.wall_s for e in self.epochs) / len(self.epochs)
            if self.article_epoch_s is not None and self.article_epoch_s < mean_epoch * 0.999:
                raise ValueError(f"article_epoch_s {self.article_epoch_s:.4g} is below the mean epoch "
                                 f"{mean_epoch:.4g}: it must be timed around the whole fit call")
        elif not self.error:
            raise ValueError(f"status {self.status.value} needs an `error` saying why")
        return self

    @property
    def busy(self) -> bool:
        return bool(self.host.load and self.host.load.busy)

    @property
    def synthetic(self) -> bool:
        return self.data is not None and self.data.source == "synthetic"

    def dump(self) -> dict[str, Any]:
        """The JSON form, as written to result.json."""
        return self.model_dump(mode="json")


def skeleton(spec: dict[str, Any], status: Status = Status.failed, stage: str = "start", error: str | None = None,
             executor: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
             started_at: float | None = None) -> dict[str, Any]:
    """The one skeleton of a result, as JSON: the worker gets it in its spec (`result_template`) and fills it in
    (until it ends it says `failed` with no error, which never validates); the host completes it for cells that
    never ran (`new_result`)."""
    now = utc_stamp()
    return {
        "schema_version": SCHEMA_VERSION, "status": status.value, "error": error, "stage": stage,
        "cell": dict(spec["cell"]), "cell_id": spec["cell_id"], "spec_hash": spec["spec_hash"],
        "backend": {k: spec["backend"].get(k) for k in BackendInfo.model_fields if k in spec["backend"]},
        "params": None, "epochs": [], "timeline": {}, "host": {}, "warnings": [],
        "executor": executor or {"name": "none", "environment": spec["cell"]["environment"]},
        "started_at": utc_stamp(started_at) if started_at is not None else now, "finished_at": now,
        **(provenance or {}),
    }


def new_result(spec: dict[str, Any], status: Status, stage: str, error: str, executor: dict[str, Any],
               provenance: dict[str, Any] | None = None, started_at: float | None = None) -> CellResult:
    """A cell that never ran or whose worker left nothing usable: skipped, failed (environment, launch, executor,
    a worker that died), timed out or interrupted, with why."""
    return CellResult.model_validate(skeleton(spec, status, stage, error, executor, provenance, started_at))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, fsync, rename: a reader sees all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_result(path: Path, result: CellResult) -> None:
    write_json_atomic(path, result.dump())


def problems_of(exc: ValidationError) -> str:
    """A pydantic error as `field.path: message; ...`, one line."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(result)'}: {e['msg']}" for e in exc.errors())


def validate(payload: Any, source: str, spec: dict[str, Any] | None = None) -> CellResult:
    """A result of any known schema version, migrated to the current one and validated."""
    if not isinstance(payload, dict):
        raise ResultError(f"{source}: not a JSON object")
    version = payload.get("schema_version")
    if version == 1:
        from common.migrate import migrate_v1

        payload = migrate_v1(payload, spec)
    elif version != SCHEMA_VERSION:
        raise ResultError(f"{source}: schema_version {version!r} is neither 1 nor {SCHEMA_VERSION}; this runner "
                          "cannot read it (a newer runner wrote it?)")
    try:
        return CellResult.model_validate(payload)
    except ValidationError as exc:
        raise ResultError(f"{source}: {problems_of(exc)}") from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, {} when it is missing, unreadable or not an object (for optional companions)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_result(path: Path) -> CellResult:
    """A result.json, validated; its spec.json beside it (when there) helps migrate an old one."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: unreadable ({exc})") from None
    return validate(payload, str(path), read_json(Path(path).with_name("spec.json")) or None)


def iter_results(run_dir: Path) -> Iterator[tuple[Path, CellResult | ResultError]]:
    """Every result in a run, valid or not: a corrupt file is reported, never fatal."""
    for path in sorted(Path(run_dir).glob(f"*/{RESULT_FILE}")):
        try:
            yield path, load_result(path)
        except ResultError as exc:
            yield path, exc


def new_run_dir(results_root: Path) -> Path:
    """A fresh folder per run, named by its UTC start; `latest` points at it."""
    results_root.mkdir(parents=True, exist_ok=True)
    run_id = utc_compact() + "-" + secrets.token_hex(2)
    run_dir = results_root / run_id
    run_dir.mkdir()
    latest = results_root / "latest"
    try:
        if latest.is_symlink() or not latest.exists():
            tmp = results_root / f".latest.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(run_id)
            tmp.replace(latest)
    except OSError:
        pass
    return run_dir
