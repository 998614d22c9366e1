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

import json
import os
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
from runner.cells import Cell, cell_variables, worker_spec
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
from runner.executors.docker.images import resolve_recipe
from runner.executors.k8s_jobs import code_configmap, job_manifest, to_dict
from runner.matrix import Environment, Matrix

BACKSTOP_GRACE_S = 300.0  # a Job this long past its deadline was not stopped by Kubernetes: the runner deletes it
MAX_MISSES = 5  # API errors in a row (500s, refused connections) before a Job is declared lost


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
