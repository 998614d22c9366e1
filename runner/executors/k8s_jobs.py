"""What a cell becomes for Kubernetes: the ConfigMap that carries the worker's code (and a model file of the
user's own), and the batch/v1 Job that runs it, built with the client's models so field names are checked as built.
The executor (runner/executors/kubernetes.py) submits, watches and collects them; k8s_pod.py makes the pod safe.
`options` is the executor's KubeOptions (namespace, keras_pvc), passed in so this module never imports it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from runner import paths
from runner.executors import k8s_pod
from runner.executors.container import CODE_DIR, KERAS_HOME, PYTHON, container_variables
from runner.executors.container import POD_CELL_DIR as CELL_DIR

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


def dns_name(text: str, salt: str, limit: int = 63) -> str:
    """A DNS-1123 label (Job names end up as pod label values): lower case, '-', at most 63 characters."""
    digest = hashlib.sha256(f"{salt}/{text}".encode()).hexdigest()[:6]
    body = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[: limit - len(digest) - 5].strip("-")
    return f"kbm-{body}-{digest}"


SUBDIR = "--"  # a ConfigMap key is one file name: models/frameworks/jax.py is the key frameworks--jax.py


def code_files(spec: dict[str, Any] | None = None) -> dict[str, str]:
    """models/ (its packages too: the frameworks' modules, the twins) as ConfigMap keys, and a model file of the
    user's own under the name the pod's spec gives it."""
    root = paths.code_root() / "models"
    files = {p.relative_to(root).as_posix().replace("/", SUBDIR): p.read_text() for p in sorted(root.rglob("*.py"))
             if "__pycache__" not in p.parts}
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


def _volumes(client: Any, spec: dict[str, Any], options: Any, configmap: str) -> tuple[list, list]:
    """(mounts, volumes): the code from its ConfigMap, the Keras cache's claim, a shared-memory folder."""
    res = spec.get("resources") or {}
    mounts = [client.V1VolumeMount(name="code", mount_path=f"{CODE_DIR}/models", read_only=True)]
    # every key at its path (frameworks--jax.py at frameworks/jax.py), as the kubelet projects `items`
    items = [client.V1KeyToPath(key=key, path=key.replace(SUBDIR, "/")) for key in sorted(code_files(spec))]
    volumes = [client.V1Volume(name="code", config_map=client.V1ConfigMapVolumeSource(name=configmap, items=items))]
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
    options: Any,
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
