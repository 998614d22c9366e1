"""Kubernetes: each cell is one batch/v1 Job running the same worker in the environment's container image.

The image is the one the Docker executor builds for the environment (`kbm/<environment>:<flavour>-<hash>`, the
gpu flavour when the cell asks for GPUs), pushed by the user under a registry prefix (KBM_K8S_REGISTRY). A Job
needs nothing else from the cluster: the worker's code (models/*.py) travels in one ConfigMap per code version,
the cell's spec in an environment variable, and the results come back in the pod's log: after the worker, the
container prints its events and result file between marker lines, which `collect` cuts out into the cell
folder, so the orchestrator finalizes the cell exactly as for a local process. `backoffLimit: 0` (a failed cell is
not retried), `activeDeadlineSeconds` = the cell's timeout, `nvidia.com/gpu` limits from the profile.

Configuration, from the environment: KBM_K8S_REGISTRY (image prefix, e.g. registry.example.com/team),
KBM_K8S_NAMESPACE (default `default`), KBM_K8S_KERAS_PVC (a PersistentVolumeClaim holding a Keras cache,
mounted read-only as KERAS_HOME; without it pods download datasets or use `--data synthetic`),
KBM_K8S_POLL_S (how often a Job is read, default 2). The cluster is the one KUBECONFIG (or the in-cluster
service account) points at. `--dry-run` writes the manifests into `<results>/<run-id>-dry-run/kubernetes/`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.errors import BadInput
from common.timeutil import utc_compact
from runner import paths
from runner.cells import Cell, cell_variables, worker_spec
from runner.executors import k8s_pod
from runner.executors.base import (
    CellHandle,
    CellJob,
    EnvironmentBuildError,
    Executor,
    LaunchFailed,
    PolledHandle,
    PreparedEnv,
    signal_exit_status,
)
from runner.executors.container import CODE_DIR, KERAS_HOME, PYTHON, container_variables
from runner.executors.container import POD_CELL_DIR as CELL_DIR
from runner.executors.docker.images import resolve_recipe
from runner.matrix import Environment, Matrix

BACKSTOP_GRACE_S = 300.0  # a Job this long past its deadline was not stopped by Kubernetes: the runner deletes it
MAX_MISSES = 5  # API errors in a row (500s, refused connections) before a Job is declared lost
TTL_S = 3600  # finished Jobs (and their pods' logs) stay this long for collection and inspection
LABEL = "keras-backend-matrix.io"
# Run inside the image: the spec from $KBM_SPEC, the worker, then events and result between marker lines.
WRAPPER = f"""\
mkdir -p {CELL_DIR}
printf '%s' "$KBM_SPEC" > {CELL_DIR}/spec.json
export KBM_LAUNCHED_AT="$(date +%s.%N)"
{PYTHON} -m models.worker {CELL_DIR}/spec.json
code=$?
printf '\\n%s events\\n' "$KBM_MARK"; cat {CELL_DIR}/events.jsonl 2>/dev/null
printf '\\n%s result\\n' "$KBM_MARK"; cat {CELL_DIR}/worker-result.json 2>/dev/null
printf '\\n%s end %s\\n' "$KBM_MARK" "$code"
exit $code
"""


class KubeUnavailable(BadInput):
    """No cluster configuration could be loaded; the message says where it looked."""


@dataclass
class KubeOptions:
    registry: str | None = None
    namespace: str = "default"
    keras_pvc: str | None = None
    poll_s: float = 2.0

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> KubeOptions:
        env = os.environ if environ is None else environ
        try:
            poll = float(env.get("KBM_K8S_POLL_S", "2"))
        except ValueError:
            raise KubeUnavailable(f"KBM_K8S_POLL_S={env['KBM_K8S_POLL_S']!r} is not a number of seconds") from None
        return cls(
            (env.get("KBM_K8S_REGISTRY") or "").rstrip("/") or None,
            env.get("KBM_K8S_NAMESPACE") or "default",
            env.get("KBM_K8S_KERAS_PVC") or None,
            poll,
        )


def image_for(name: str, env: Environment, gpus: int, registry: str | None) -> str:
    """The Docker executor's tag for this environment and flavour, under the registry prefix."""
    tag = resolve_recipe(name, env, "gpu" if gpus else "cpu").tag
    return f"{registry}/{tag}" if registry else tag


def dns_name(text: str, salt: str, limit: int = 63) -> str:
    """A DNS-1123 label (Job names end up as pod label values): lower case, '-', at most 63 characters."""
    digest = hashlib.sha256(f"{salt}/{text}".encode()).hexdigest()[:6]
    body = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[: limit - len(digest) - 5].strip("-")
    return f"kbm-{body}-{digest}"


def code_files(spec: dict[str, Any] | None = None) -> dict[str, str]:
    """models/*.py, and a model file of the user's own under the name the pod's spec gives it."""
    files = {p.name: p.read_text() for p in sorted((paths.code_root() / "models").glob("*.py"))}
    module = ((spec or {}).get("model") or {}).get("module")
    if module:
        files[user_module_name(spec)] = Path(module).read_text()
    return files


def user_module_name(spec: dict[str, Any]) -> str:
    return f"user_model_{spec['model']['module_sha256'][:12]}.py"


def code_configmap(namespace: str, spec: dict[str, Any] | None = None) -> Any:
    """models/*.py (and the cell's model file) as one ConfigMap, named by the hash of its content (a new code
    version, a new map)."""
    from kubernetes import client

    files = code_files(spec)
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    return client.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=client.V1ObjectMeta(name=f"kbm-code-{digest}", namespace=namespace, labels={LABEL + "/part": "code"}),
        data=files,
    )


def pod_spec_json(spec: dict[str, Any]) -> dict[str, Any]:
    """spec.json as the worker sees it in the pod: the same experiment (same hash), the pod's paths."""
    out = json.loads(json.dumps(spec))
    out["paths"] = {"result": f"{CELL_DIR}/worker-result.json", "events": f"{CELL_DIR}/events.jsonl"}
    if (out.get("model") or {}).get("module"):  # the model file rides in the code ConfigMap
        out["model"]["module"] = f"{CODE_DIR}/models/{user_module_name(spec)}"
    out.setdefault("data", {}).update(offline_wheel=None, cache_dir="/tmp/kbm-data")
    return out


def _resources(spec: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(limits, requests) of the cell's container, from the profile's resources."""
    res = spec.get("resources") or {}
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if res.get("gpus"):
        limits["nvidia.com/gpu"] = str(int(res["gpus"]))
    if res.get("cpus"):
        millis = round(float(res["cpus"]) * 1000)  # Kubernetes quantities: "2", or "1500m"
        requests["cpu"] = limits["cpu"] = str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    if spec.get("memory_limit_gb"):  # the worker's RLIMIT_DATA fails first, cleanly; this catches the rest
        limits["memory"] = f"{math.ceil(spec['memory_limit_gb'] * 1.25 * 1024)}Mi"
    return limits, requests


def _volumes(client: Any, spec: dict[str, Any], options: KubeOptions, configmap: str) -> tuple[list, list]:
    """(mounts, volumes): the code from its ConfigMap, the Keras cache's claim, a shared-memory folder."""
    res = spec.get("resources") or {}
    mounts = [client.V1VolumeMount(name="code", mount_path=f"{CODE_DIR}/models", read_only=True)]
    volumes = [client.V1Volume(name="code", config_map=client.V1ConfigMapVolumeSource(name=configmap))]
    if options.keras_pvc:
        mounts.append(client.V1VolumeMount(name="keras-home", mount_path=KERAS_HOME, read_only=True))
        claim = client.V1PersistentVolumeClaimVolumeSource(claim_name=options.keras_pvc, read_only=True)
        volumes.append(client.V1Volume(name="keras-home", persistent_volume_claim=claim))
    if res.get("shm_gb"):
        mounts.append(client.V1VolumeMount(name="shm", mount_path="/dev/shm"))
        volumes.append(client.V1Volume(name="shm", empty_dir=client.V1EmptyDirVolumeSource(
            medium="Memory", size_limit=f"{math.ceil(res['shm_gb'] * 1024)}Mi")))
    return mounts, volumes


def job_manifest(
    spec: dict[str, Any],
    variables: dict[str, str],
    image: str,
    options: KubeOptions,
    configmap: str,
    run_id: str,
    mark: str,
) -> Any:
    """The batch/v1 Job for one cell, built with the client's models (so field names are checked as built)."""
    from kubernetes import client

    limits, requests = _resources(spec)
    env = container_variables(variables, keras_home_mounted=bool(options.keras_pvc))
    env.update(KBM_MARK=mark, KBM_SPEC=json.dumps(pod_spec_json(spec), sort_keys=True))
    mounts, volumes = _volumes(client, spec, options, configmap)
    cell_id = spec["cell_id"]
    labels = {
        "app.kubernetes.io/name": "keras-backend-matrix",
        f"{LABEL}/run": dns_name(run_id, "run")[4:],
        f"{LABEL}/spec-hash": spec["spec_hash"],
    }
    container = client.V1Container(
        name="worker",
        image=image,
        command=["/bin/sh", "-c", WRAPPER],
        working_dir=CODE_DIR,
        env=k8s_pod.env_vars(client, env),
        resources=client.V1ResourceRequirements(limits=limits or None, requests=requests or None),
        volume_mounts=mounts,
    )
    deadline = int(math.ceil(spec["timeout_s"])) if spec.get("timeout_s") else None
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=dns_name(cell_id, run_id),
            namespace=options.namespace,
            labels=labels,
            annotations={f"{LABEL}/cell": cell_id, f"{LABEL}/run-id": run_id},
        ),
        spec=client.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=deadline,
            ttl_seconds_after_finished=TTL_S,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=k8s_pod.restricted_pod(client, container, volumes),
            ),
        ),
    )


def to_dict(obj: Any) -> dict[str, Any]:
    from kubernetes import client

    return client.ApiClient().sanitize_for_serialization(obj)


def split_log(text: str, mark: str) -> tuple[str, str | None, str | None, int | None]:
    """(worker output, events.jsonl, worker-result.json, exit status) from a pod log; None where cut short."""
    head, found, rest = text.partition(f"\n{mark} events\n")
    if not found:
        return text, None, None, None
    events, _, rest = rest.partition(f"\n{mark} result\n")
    result, _, tail = rest.partition(f"\n{mark} end ")
    try:
        code = int(tail.split()[0])
    except (IndexError, ValueError):
        code = None
    return head, events, result or None, code


def _stamp(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


class KubeJobHandle(PolledHandle):
    """A submitted Job: watched by reading it (and its pod) every poll_s; the pod log is collected at the end."""

    enforces_timeout = True  # activeDeadlineSeconds; the runner only steps in BACKSTOP_GRACE_S after it

    def __init__(self, batch: Any, core: Any, name: str, namespace: str, cell_dir: Path, mark: str,
                 submitted_at: float, image: str, poll_s: float, limit_s: float | None = None):
        self.batch, self.core, self.name, self.namespace = batch, core, name, namespace
        self.cell_dir, self.mark, self.submitted_at, self.image = cell_dir, mark, submitted_at, image
        self.poll_s, self.limit_s = poll_s, limit_s
        self.state = "Pending"
        self.pod: str | None = None
        self.node: str | None = None
        self.started_at: float | None = None
        self.misses = 0

    def _pod(self) -> Any | None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={self.name}").items
        return pods[0] if pods else None

    def _poll(self) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            job = self.batch.read_namespaced_job_status(self.name, self.namespace)
            pod = self._pod()
        except (ApiException, HTTPError, OSError) as exc:
            if isinstance(exc, ApiException) and exc.status == 404:  # deleted under us (by a person, or its TTL)
                self.code, self.state, self.reason = 1, "Deleted", f"Job {self.name} no longer exists"
                return
            self.misses += 1  # a 500, a dropped connection: transient unless it persists
            if self.misses >= MAX_MISSES:
                what = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else f"{type(exc).__name__}"
                self.code, self.state = 1, "Unknown"
                self.reason = f"the API server failed {self.misses} reads of Job {self.name} in a row ({what})"
                try:  # should it still run, it must not run on unwatched (as Slurm's lost jobs are scancelled)
                    self.kill()
                except (ApiException, HTTPError, OSError) as gone:
                    self.reason += f"; deleting it failed too ({type(gone).__name__}), delete Job {self.name} by hand"
            return
        self.misses = 0
        terminated = None
        if pod is not None:
            self.pod, self.node = pod.metadata.name, pod.spec.node_name if pod.spec else None
            self.state = pod.status.phase or self.state
            for status in pod.status.container_statuses or []:
                running = status.state.running if status.state else None
                if running is not None and self.started_at is None:
                    self.started_at = _stamp(running.started_at)
                waiting = status.state.waiting if status.state else None
                if waiting is not None and waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
                    self.state = waiting.reason  # ErrImagePull, ImagePullBackOff, ...: shown as the cell's progress
                if status.state and status.state.terminated is not None:
                    terminated = status.state.terminated
                    self.started_at = self.started_at or _stamp(terminated.started_at)
        conditions = {c.type: c for c in (job.status.conditions or []) if c.status == "True"}
        if "Complete" not in conditions and "Failed" not in conditions:
            if self.limit_s and time.time() - self.submitted_at > self.limit_s + BACKSTOP_GRACE_S:
                self._collect(pod)
                self.kill()
                self.code, self.timed_out = -signal.SIGTERM, True
                self.reason = f"running {BACKSTOP_GRACE_S:.0f} s past activeDeadlineSeconds; deleted by the runner"
            return
        failed = conditions.get("Failed")
        self.state = "Complete" if failed is None else "Failed"
        log_code = self._collect(pod)
        code = terminated.exit_code if terminated is not None else log_code
        if failed is not None and failed.reason == "DeadlineExceeded":
            self.timed_out = True
            self.reason = f"Kubernetes ended the Job at activeDeadlineSeconds ({failed.message or 'deadline'})"
            code = code if code not in (None, 0) else 128 + signal.SIGTERM
        elif terminated is not None and terminated.reason == "OOMKilled":
            self.reason = "the container was killed for exceeding its memory limit (OOMKilled)"
        elif failed is not None and terminated is None:
            self.reason = f"the Job failed before its container ran: {failed.reason}: {failed.message}"
        self.code = signal_exit_status(code if code is not None else 1)

    def _collect(self, pod: Any | None) -> int | None:
        """The pod's log into worker.log, events.jsonl and worker-result.json; the worker's exit status."""
        if pod is None:
            return None
        from kubernetes.client.exceptions import ApiException

        for attempt in range(3):  # a transient 500 must not lose the cell's result
            try:
                # raw bytes: with content preloading the client hands back a repr of them, not the text
                raw = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace, container="worker",
                                                        _preload_content=False)
                text = raw.data.decode("utf-8", errors="replace")
                break
            except ApiException as exc:
                text = f"(the pod log could not be read: {exc.status} {exc.reason})\n"
                if exc.status == 404:
                    break
                time.sleep(0.5 * (attempt + 1))
        output, events, result, code = split_log(text, self.mark)
        with open(self.cell_dir / "worker.log", "a") as log:
            log.write(output)
        if events:
            (self.cell_dir / "events.jsonl").write_text(events.strip("\n") + "\n")
        if result:
            (self.cell_dir / "worker-result.json").write_text(result)
        return code

    def orphan_cleanup(self) -> dict[str, Any] | None:
        return {"k8s_job": self.name, "namespace": self.namespace}

    def kill(self) -> None:
        """Delete the Job and its pod (the cell's results are not collected)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.batch.delete_namespaced_job(self.name, self.namespace,
                                             body=client.V1DeleteOptions(propagation_policy="Background"))
        except ApiException as exc:
            if exc.status != 404:
                raise
        self.state = "Deleted"

    def _facts(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "namespace": self.namespace,
            "image": self.image,
            "pod": self.pod,
            "node": self.node,
            "state": self.state,
            "job_id": self.name,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            # Kubernetes times have whole seconds: a pod started within the second of submission reads as 0
            "queue_wait_s": round(max(self.started_at - self.submitted_at, 0.0), 3) if self.started_at else None,
        }


class KubernetesExecutor(Executor):
    name = "kubernetes"

    def __init__(self, options: KubeOptions | None = None, api_client: Any | None = None):
        self.options = options or KubeOptions.from_environ()
        self._api_client = api_client
        self._configmaps: set[str] = set()

    # -- the cluster -----------------------------------------------------------------------------------------
    def api_client(self) -> Any:
        """The configured client: KUBECONFIG / ~/.kube/config, else the pod's service account."""
        if self._api_client is None:
            from kubernetes import client, config

            try:
                config.load_kube_config()
            except Exception as exc:  # noqa: BLE001 - a missing file, a bad context: both mean "no cluster"
                try:
                    config.load_incluster_config()
                except config.ConfigException:
                    raise KubeUnavailable(
                        f"no Kubernetes cluster configured ({exc}); set KUBECONFIG, or use --dry-run to write the "
                        "manifests"
                    ) from None
            self._api_client = client.ApiClient()
        return self._api_client

    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        try:
            where = f"{image_for(name, env, 0, self.options.registry)} (namespace {self.options.namespace})"
        except EnvironmentBuildError as exc:
            where = f"no image: {exc}"
        return {
            "environment": name,
            "location": where,
            "cached": False,
            "python": env.python,
            "installs": list(env.requirements),
        }

    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        """Nothing to build here: the image is built (Docker executor) and pushed by the user."""
        started = time.perf_counter()
        try:
            self.api_client()
        except KubeUnavailable as exc:
            raise EnvironmentBuildError(f"{name}: {exc}") from None
        image = image_for(name, env, 0, self.options.registry)
        on_status(f"{name}: Jobs will run image {image} (and its gpu flavour for GPU cells)")
        info = {"image": image, "namespace": self.options.namespace}
        return PreparedEnv(name, env, image, True, time.perf_counter() - started, info)

    def _ensure_code(self, core: Any, spec: dict[str, Any]) -> str:
        from kubernetes.client.exceptions import ApiException

        cm = code_configmap(self.options.namespace, spec)
        if cm.metadata.name not in self._configmaps:
            try:
                core.create_namespaced_config_map(self.options.namespace, cm)
            except ApiException as exc:
                if exc.status != 409:  # 409: this code version is already there
                    raise
            self._configmaps.add(cm.metadata.name)
        return cm.metadata.name

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        spec = json.loads(job.spec_path.read_text())
        api = self.api_client()
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        gpus = int((spec.get("resources") or {}).get("gpus") or 0)
        image = image_for(prepared.name, prepared.spec, gpus, self.options.registry)
        mark = f"@@kbm-{secrets.token_hex(8)}"
        run_id = job.cell_dir.parent.name
        if (spec.get("model") or {}).get("data_file"):
            return LaunchFailed(2, {"state": "Rejected", "reason": "--data-file cannot reach a pod"}, job.log_path,
                                "--data-file names a file on this machine, which a pod cannot read: load the data "
                                "in the model file's load_data() from storage the pod mounts (KBM_K8S_KERAS_PVC)")
        try:
            configmap = self._ensure_code(core, spec)
            manifest = job_manifest(spec, job.env, image, self.options, configmap, run_id, mark)
            submitted_at = time.time()
            batch.create_namespaced_job(self.options.namespace, manifest)
        except ApiException as exc:
            message = f"{exc.status} {exc.reason}: {(exc.body or '')[:500]}"  # the cell fails alone, with why
            return LaunchFailed(1, {"state": "Rejected", "reason": f"the API server refused the Job: {message}"},
                                job.log_path, message)
        (job.cell_dir / "job.yaml").write_text(yaml.safe_dump(to_dict(manifest), sort_keys=False))
        return KubeJobHandle(batch, core, manifest.metadata.name, self.options.namespace, job.cell_dir, mark,
                             submitted_at, image, self.options.poll_s, spec.get("timeout_s"))

    # -- --dry-run -------------------------------------------------------------------------------------------
    def write_manifests(self, matrix: Matrix, cells: list[Cell], data: str, timeout: float | None,
                        results_root: Path) -> Path:
        """The ConfigMap and one Job per cell as YAML files, as `launch` would submit them."""
        run_id = utc_compact() + "-dry-run"
        folder = Path(results_root) / run_id / "kubernetes"
        folder.mkdir(parents=True)
        cm = code_configmap(self.options.namespace)
        (folder / "code-configmap.yaml").write_text(yaml.safe_dump(to_dict(cm), sort_keys=False))
        skipped = []
        for cell in cells:
            spec = worker_spec(matrix, cell, data, timeout)
            env = matrix.environments[cell.environment]
            gpus = int((spec.get("resources") or {}).get("gpus") or 0)
            try:
                image = image_for(cell.environment, env, gpus, self.options.registry)
            except EnvironmentBuildError as exc:  # an environment without a container recipe has no Job
                skipped.append(f"{cell.id}: {exc}\n")
                continue
            own = code_configmap(self.options.namespace, spec) if spec["model"].get("module") else cm
            if own is not cm:  # a model file of the user's own travels in a map of its own
                (folder / f"{own.metadata.name}.yaml").write_text(yaml.safe_dump(to_dict(own), sort_keys=False))
            manifest = job_manifest(spec, cell_variables(matrix, cell), image, self.options,
                                    own.metadata.name, run_id, "@@kbm-dry-run")
            (folder / f"{cell.id}.yaml").write_text(yaml.safe_dump(to_dict(manifest), sort_keys=False))
        if skipped:
            (folder / "skipped.txt").write_text("".join(skipped))
        return folder
