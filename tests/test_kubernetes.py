"""`--executor kubernetes` without a cluster (none can run here).

1. The manifests `--dry-run` writes validate strictly against the Kubernetes schema (kubernetes-validate).
2. Submit, watch and collect go through the real kubernetes client (KUBECONFIG pointing at a small API server this
   test starts on 127.0.0.1) to a stand-in kubelet that runs each Job's container command, as written in the
   manifest, with the container's paths mapped onto host folders: the image's /opt/kbm-env onto the cached
   Keras 3 TensorFlow virtualenv, the code ConfigMap and the Keras-cache PVC onto folders holding their content.
   It answers only the calls the executor makes, and enforces activeDeadlineSeconds as the Job controller does:
   the pod is killed and deleted (its log goes with it). `fail_next` makes it answer 500 to chosen requests, once
   each, as a busy API server does.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from common.results import iter_results
from runner.executors.base import signal_exit_status
from runner.executors.kubernetes import split_log
from runner.paths import REPO_ROOT
from tests.ci import default_signals
from tests.fixtures import idle_speed, matrix_with, results_by_model, the_run, wait_for

VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- manifests -----------------------------------------------------------------------------------------------------


def test_dry_run_writes_manifests_that_validate_strictly(tmp_path):
    matrix = matrix_with(tmp_path, gpus=1, cpus=2, memory_limit_gb=3, shm_gb=1)
    env = {**os.environ, "KBM_K8S_REGISTRY": "registry.example.com/team/", "KBM_K8S_NAMESPACE": "bench",
           "KBM_K8S_KERAS_PVC": "keras-cache"}
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(matrix), "--results", str(tmp_path / "r"),
                           "--executor", "kubernetes", "--dry-run", "--profile", "smoke", "--env", "keras3-tensorflow",
                           "--env", "keras3-jax", "--env", "keras3-torch"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (tmp_path / "r").glob("*-dry-run/kubernetes")
    assert f"manifests: {folder}" in proc.stderr
    files = sorted(folder.glob("*.yaml"))
    assert len(files) == 24  # 5 models x 3 backends, the twins' 8 cells, and the code ConfigMap
    check = subprocess.run([str(VALIDATE), "--strict", *map(str, files)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("passed") == 24

    # cells with a GPU run each environment's GPU default variant (JAX: stock)
    job = yaml.safe_load((folder / "mlp.jax.keras3-jax.smoke.stock.r0.yaml").read_text())
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "bench" and len(job["metadata"]["name"]) <= 63
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"].startswith("registry.example.com/team/kbm/keras3-jax:gpu-")  # the GPU flavour
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1", "cpu": "2", "memory": "3840Mi"}
    # the restricted Pod Security Standard: non-root (numeric uid), no escalation, no capabilities, the runtime's
    # seccomp profile; a read-only root with /tmp (the cell folder, HOME) as an emptyDir
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and isinstance(security["runAsUser"], int) and security["runAsUser"] > 0
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    env_vars = {e["name"]: e["value"] for e in container["env"]}
    assert env_vars["KERAS_BACKEND"] == "jax" and env_vars["KERAS_HOME"] == "/kbm/keras-home"
    inner = json.loads(env_vars["KBM_SPEC"])
    assert inner["cell_id"] == "mlp.jax.keras3-jax.smoke.stock.r0"
    assert inner["paths"]["result"].startswith("/tmp/kbm-cell")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {}
    assert volumes["keras-home"]["persistentVolumeClaim"] == {"claimName": "keras-cache", "readOnly": True}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1024Mi"}
    configmap = yaml.safe_load((folder / "code-configmap.yaml").read_text())
    assert volumes["code"]["configMap"]["name"] == configmap["metadata"]["name"]
    # every module of models/, its packages too (the frameworks' modules, the twins), each key projected at its path
    models = REPO_ROOT / "models"
    files = {p.relative_to(models).as_posix() for p in models.rglob("*.py") if "__pycache__" not in p.parts}
    assert {"frameworks/jax.py", "native/torch_twin.py", "worker.py"} <= files
    assert {i["key"]: i["path"] for i in volumes["code"]["configMap"]["items"]} == {
        f.replace("/", "--"): f for f in files}
    assert set(configmap["data"]) == {f.replace("/", "--") for f in files}


@pytest.mark.venv  # the model file's probe runs in the keras3-jax environment
def test_a_model_file_travels_in_its_cells_configmap(tmp_path):
    example = REPO_ROOT / "examples" / "image_classifier.py"
    proc = subprocess.run([sys.executable, "-m", "runner", "--results", str(tmp_path / "r"), "--executor",
                           "kubernetes", "--dry-run", "--profile", "smoke", "--model-file", str(example), "--only",
                           "jax"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (tmp_path / "r").glob("*-dry-run/kubernetes")
    job = yaml.safe_load((folder / "image_classifier.jax.keras3-jax.smoke.jax-ynn-no-conv.r0.yaml").read_text())
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    inner = json.loads({e["name"]: e["value"] for e in container["env"]}["KBM_SPEC"])
    digest = hashlib.sha256(example.read_bytes()).hexdigest()
    assert inner["model"]["module"] == f"/kbm/code/models/user_model_{digest[:12]}.py"
    assert inner["model"]["module_sha256"] == digest
    name = {v["name"]: v for v in pod["volumes"]}["code"]["configMap"]["name"]
    configmap = yaml.safe_load((folder / f"{name}.yaml").read_text())
    assert configmap["data"][f"user_model_{digest[:12]}.py"] == example.read_text()  # the file, as it is
    check = subprocess.run([str(VALIDATE), "--strict", *map(str, folder.glob("*.yaml"))], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_strict_validation_rejects_a_misspelt_field(tmp_path):
    """The validator bites: the same kind of manifest with one typo fails."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"backoffLimt": 0, "template": {"spec": {"restartPolicy": "Never",
                                                             "containers": [{"name": "w", "image": "i"}]}}}}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    check = subprocess.run([str(VALIDATE), "--strict", str(path)], capture_output=True, text=True)
    assert check.returncode != 0 and "backoffLimt" in check.stdout + check.stderr


def test_a_pod_log_splits_into_output_events_and_result():
    mark = "@@kbm-0123"
    log = (f"tf says hi\nno newline at end\n{mark} events\n" '{"kind": "stage"}\n'
           f"\n{mark} result\n{{}}\n{mark} end 0\n")
    output, events, result, code = split_log(log, mark)
    assert output == "tf says hi\nno newline at end" and events.strip() == '{"kind": "stage"}'
    assert result.strip() == "{}" and code == 0
    assert split_log("killed before the end\n", mark) == ("killed before the end\n", None, None, None)
    assert signal_exit_status(134) == -signal.SIGABRT and signal_exit_status(3) == 3


# -- a stand-in API server and kubelet ----------------------------------------------------------------------------


def kubelet_expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's expansion of an environment value: `$$` is a literal `$`, `$(NAME)` becomes NAME's value
    when defined, anything else stays as written (k8s.io/kubernetes third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1 and value[i + 2:end] in env:
                    out.append(env[value[i + 2:end]])
                    i = end + 1
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)



class FakeCluster:
    """Jobs, pods and ConfigMaps in memory; each Job's container command run as a local process group."""

    def __init__(self, root: Path, mapping: dict[str, str]):
        self.root, self.mapping = root, mapping
        self.jobs: dict[str, dict] = {}
        self.configmaps: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified on a pod that starts, a deleted Job, each GET
        self.fail_next: dict[str, int] = {}  # request kind ("job-status", "pods", "log") -> how many 500s to answer
        self.failed: list[str] = []  # the kinds answered with a 500, in order

    def mapper(self, name: str):
        """A pod's view: the shared mounts, and its own /tmp (each container has one)."""
        pod_tmp = self.root / "pods" / name
        mapping = {**self.mapping, "/tmp/kbm-cell": str(pod_tmp / "cell"), "/tmp/kbm-data": str(pod_tmp / "data")}

        def map_path(text: str) -> str:
            for inside, outside in mapping.items():
                text = text.replace(inside, outside)
            return text

        return map_path

    def create_job(self, body: dict) -> dict:
        name = body["metadata"]["name"]
        body.setdefault("status", {})
        pod = {"name": f"{name}-{secrets.token_hex(3)}", "phase": "Pending", "state": {"waiting":
               {"reason": "ContainerCreating"}}, "log": self.root / f"{name}.log", "proc": None}
        with self.lock:
            self.jobs[name] = {"body": body, "pod": pod, "created": time.time()}
        threading.Thread(target=self._kubelet, args=(name,), daemon=True).start()
        return body

    def _kubelet(self, name: str) -> None:
        job = self.jobs[name]
        body, pod = job["body"], job["pod"]
        (container,) = body["spec"]["template"]["spec"]["containers"]
        (volume,) = [v for v in body["spec"]["template"]["spec"]["volumes"] if v["name"] == "code"]
        code_dir = Path(self.mapping["/kbm/code"]) / "models"
        with self.lock:  # a ConfigMap volume appears whole, once: never rewritten under a running pod
            if not code_dir.exists():
                code_dir.mkdir(parents=True)
                data = self.configmaps[volume["configMap"]["name"]]["data"]
                # with `items`, only those keys, each at its path (as a kubelet projects them); else every key
                items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (code_dir / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                    (code_dir / item["path"]).write_text(data[item["key"]])
        to_host = self.mapper(name)
        env = {"PATH": os.environ["PATH"]}
        for var in container["env"]:  # in order, as the kubelet does: $(NAME) sees the variables before it
            env[var["name"]] = to_host(kubelet_expand(var["value"], env))
        command = [to_host(part) for part in container["command"]]
        with open(pod["log"], "wb") as log:
            proc = subprocess.Popen(command, env=env, cwd=to_host(container["workingDir"]), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        started = time.time()
        with self.lock:
            pod.update(proc=proc, phase="Running", state={"running": {"startedAt": stamp(started)}})
            body["status"] = {"active": 1, "startTime": stamp(job["created"])}
            self.changed.notify_all()
        deadline = body["spec"].get("activeDeadlineSeconds")
        try:
            code = proc.wait(timeout=deadline - (time.time() - job["created"]) if deadline else None)
            condition = ("Complete", None, None) if code == 0 else (
                "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait()
            condition = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
            with self.lock:  # the Job controller deletes the active pods of a Job past its deadline
                pod["deleted"] = True
        exit_code = 128 - code if code < 0 else code  # a runtime reports a signal death as 128 + signal
        with self.lock:
            pod.update(phase="Succeeded" if exit_code == 0 else "Failed", state={"terminated": {
                "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": stamp(started), "finishedAt": stamp(time.time())}})
            kind, reason, message = condition
            body["status"] = {"startTime": stamp(job["created"]), "succeeded" if kind == "Complete" else "failed": 1,
                              "conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}

    def pod_json(self, name: str) -> dict:
        job = self.jobs[name]
        pod = job["pod"]
        container = job["body"]["spec"]["template"]["spec"]["containers"][0]
        return {
            "metadata": {"name": pod["name"], "namespace": job["body"]["metadata"]["namespace"],
                         "labels": {"job-name": name}},
            "spec": {"nodeName": "fake-node", "containers": [{"name": "worker", "image": container["image"]}]},
            "status": {"phase": pod["phase"], "containerStatuses": [{
                "name": "worker", "image": container["image"], "imageID": "", "ready": pod["phase"] == "Running",
                "restartCount": 0, "state": pod["state"]}]},
        }

    def delete_job(self, name: str) -> bool:
        with self.lock:
            job = self.jobs.pop(name, None)
            self.changed.notify_all()
        if job is None:
            return False
        proc = job["pod"]["proc"]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        return True


def serve(cluster: FakeCluster) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def reply(self, status: int, payload, text: bool = False) -> None:
            data = payload.encode() if text else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def not_found(self) -> None:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                             "code": 404, "message": f"{self.path} not found"})

        def do_POST(self):
            url = urlparse(self.path)
            cluster.requests.append(("POST", url.path))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            parts = url.path.strip("/").split("/")
            if parts[-1] == "configmaps":
                name = body["metadata"]["name"]
                if name in cluster.configmaps:
                    return self.reply(409, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "reason": "AlreadyExists", "code": 409})
                cluster.configmaps[name] = body
                return self.reply(201, body)
            if parts[-1] == "jobs":
                return self.reply(201, cluster.create_job(body))
            self.not_found()

        def fail_once(self, kind: str) -> bool:
            """Answer 500 if the test asked for one on this kind of request."""
            if cluster.fail_next.get(kind, 0) <= 0:
                return False
            cluster.fail_next[kind] -= 1
            cluster.failed.append(kind)
            self.reply(500, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError",
                             "code": 500, "message": "etcdserver: request timed out"})
            return True

        def do_GET(self):
            url = urlparse(self.path)
            cluster.requests.append(("GET", url.path))
            parts = url.path.strip("/").split("/")
            with cluster.lock:
                cluster.changed.notify_all()  # a test may wait for the runner's first look at its Job
                if parts[:2] == ["apis", "batch"] and parts[-1] == "status" and parts[-2] in cluster.jobs:
                    if self.fail_once("job-status"):
                        return
                    return self.reply(200, cluster.jobs[parts[-2]]["body"])
                if parts[-1] == "pods":
                    if self.fail_once("pods"):
                        return
                    selector = parse_qs(url.query).get("labelSelector", [""])[0]
                    name = selector.removeprefix("job-name=")
                    live = name in cluster.jobs and not cluster.jobs[name]["pod"].get("deleted")
                    items = [cluster.pod_json(name)] if live else []
                    return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                if parts[-1] == "log":
                    for job in cluster.jobs.values():
                        if job["pod"]["name"] == parts[-2] and not job["pod"].get("deleted"):
                            if self.fail_once("log"):
                                return
                            return self.reply(200, job["pod"]["log"].read_text(errors="replace"), text=True)
            self.not_found()

        def do_DELETE(self):
            url = urlparse(self.path)
            cluster.requests.append(("DELETE", url.path))
            if cluster.delete_job(url.path.strip("/").split("/")[-1]):
                return self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            self.not_found()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake_cluster(tmp_path, prepared, keras_home):
    env_dir = prepared("keras3-tensorflow").location
    mapping = {"/opt/kbm-env": env_dir, "/kbm/code": str(tmp_path / "pod" / "code"),
               "/kbm/keras-home": str(keras_home)}
    cluster = FakeCluster(tmp_path, mapping)
    server = serve(cluster)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KBM_K8S_REGISTRY": "registry.example.com/team",
           "KBM_K8S_NAMESPACE": "bench", "KBM_K8S_KERAS_PVC": "keras-cache", "KBM_K8S_POLL_S": "0.5"}
    yield cluster, env
    server.shutdown()
    for name in list(cluster.jobs):
        cluster.delete_job(name)


def runner(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", "--executor", "kubernetes", "--profile", "smoke",
                             "--only", "tensorflow@keras3@keras", "--no-report", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_signals)


@pytest.mark.venv
def test_jobs_are_submitted_watched_and_collected_through_the_client(fake_cluster, tmp_path):
    cluster, env = fake_cluster
    matrix = matrix_with(tmp_path, timeout_s=180, models={"hrnn": {"timeout_s": 8}})
    proc = runner(["--matrix", str(matrix), "--results", str(tmp_path / "results"), "--parallel", "3",
                   "--model", "mlp", "--model", "cnn", "--model", "hrnn"],
                  {**env, "KBM_TESTING": "1", "KBM_FAULT": "abort@cnn,hang@hrnn"})
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 1, output[-3000:]
    run = the_run(tmp_path / "results")
    results = results_by_model(run)

    mlp = results["mlp"]
    assert mlp["status"] == "ok", mlp.get("error")
    assert len(mlp["epochs"]) == 3 and mlp["params"] == 669706 and mlp["data"]["source"] == "keras-cache"
    ex = mlp["executor"]
    assert ex["name"] == "kubernetes" and ex["namespace"] == "bench" and ex["node"] == "fake-node"
    assert ex["state"] == "Complete" and ex["pod"].startswith(ex["job"]) and ex["queue_wait_s"] >= 0
    assert ex["image"].startswith("registry.example.com/team/kbm/keras3-tensorflow:cpu-")
    cell = run / mlp["cell_id"]
    assert (cell / "events.jsonl").read_text().count('"kind": "epoch"') == 3  # collected from the pod log
    assert "@@kbm-" not in (cell / "worker.log").read_text()
    assert yaml.safe_load((cell / "job.yaml").read_text())["spec"]["backoffLimit"] == 0

    cnn = results["cnn"]
    assert cnn["status"] == "failed" and cnn["returncode"] == -signal.SIGABRT
    assert "killed by signal SIGABRT" in cnn["error"] and cnn["executor"]["state"] == "Failed"

    hrnn = results["hrnn"]
    assert hrnn["status"] == "timeout" and hrnn["executor"]["timed_out"] is True
    assert "Kubernetes ended the Job at activeDeadlineSeconds" in hrnn["error"]
    assert "Job was active longer than specified deadline" in hrnn["error"]
    assert cluster.jobs[hrnn["executor"]["job"]]["pod"]["deleted"]  # as the controller does: the pod is gone

    posts = [path for method, path in cluster.requests if method == "POST"]
    assert sum(p.endswith("/configmaps") for p in posts) == 1 and sum(p.endswith("/jobs") for p in posts) == 3
    assert all(p.startswith("/api/v1/namespaces/bench/") or p.startswith("/apis/batch/v1/namespaces/bench/")
               for p in posts)


def start_a_hung_job(cluster: FakeCluster, env: dict[str, str], tmp_path: Path) -> subprocess.Popen:
    """A run of one MLP cell that hangs in training, returned once its Job's pod is running and the runner has
    read the Job's status since it submitted it: by then it has told its watchdog about the Job (right after the
    submission returns, before its first look), so a SIGKILL from here on leaves the Job to the watchdog."""
    proc = runner(["--results", str(tmp_path / "results"), "--model", "mlp"],
                  {**env, "KBM_TESTING": "1", "KBM_FAULT": "hang@mlp"})

    def watched() -> bool:
        running = [name for name, j in cluster.jobs.items() if j["pod"]["phase"] == "Running"]
        return any(("GET", f"/apis/batch/v1/namespaces/bench/jobs/{name}/status") in cluster.requests
                   for name in running)

    if not wait_for(cluster.changed, lambda: watched() or proc.poll() is not None, 120) or not watched():
        proc.kill()
        pytest.fail(f"the Job never ran: {proc.communicate()[0][-2000:]}")
    return proc


@pytest.mark.venv
def test_ctrl_c_deletes_the_runs_jobs(fake_cluster, tmp_path):
    cluster, env = fake_cluster
    proc = start_a_hung_job(cluster, env, tmp_path)
    (job,) = cluster.jobs.values()
    pod_proc = job["pod"]["proc"]
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output[-3000:]
    assert not cluster.jobs and ("DELETE", f"/apis/batch/v1/namespaces/bench/jobs/{job['body']['metadata']['name']}") \
        in cluster.requests
    assert pod_proc.wait(timeout=10) is not None  # the pod's process is gone


@pytest.mark.venv
def test_an_api_server_answering_500_once_does_not_fail_the_cell(fake_cluster, tmp_path):
    """A 500 on each kind of read the executor makes (Job status, pod list, pod log): retried, the cell is ok."""
    cluster, env = fake_cluster
    cluster.fail_next = {"job-status": 1, "pods": 1, "log": 1}
    proc = runner(["--results", str(tmp_path / "results"), "--model", "mlp"], env)
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output[-3000:]
    assert sorted(cluster.failed) == ["job-status", "log", "pods"]  # the server did answer 500 to each once
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    ((path, result),) = iter_results(run)
    assert not isinstance(result, Exception), result
    assert result.status.value == "ok" and len(result.epochs) == 3


@pytest.mark.venv
def test_a_job_the_api_server_keeps_failing_to_report_is_failed_and_deleted(fake_cluster, tmp_path):
    """Job status answered with 500 past the tolerance: the cell fails with the API's words and its Job, which may
    still be running, is deleted rather than left to run unwatched."""
    cluster, env = fake_cluster
    proc = start_a_hung_job(cluster, env, tmp_path)
    (name,) = cluster.jobs
    cluster.fail_next = {"job-status": 1000}
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output[-3000:]
    assert not cluster.jobs and ("DELETE", f"/apis/batch/v1/namespaces/bench/jobs/{name}") in cluster.requests
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    ((path, result),) = iter_results(run)
    assert result.status.value == "failed" and "reads of Job" in result.error and "500" in result.error


@pytest.mark.venv
def test_a_runner_killed_with_sigkill_leaves_no_job_behind(fake_cluster, tmp_path):
    """SIGKILL reaches no handler: the run's watchdog sees the runner gone and deletes its Job through the API."""
    cluster, env = fake_cluster
    proc = start_a_hung_job(cluster, env, tmp_path)
    (job,) = cluster.jobs.values()
    proc.kill()
    proc.communicate(timeout=30 / idle_speed())
    # the watchdog notices the closed pipe, imports the kubernetes client and deletes the Job: seconds on an idle
    # machine, as long as the machine's load makes it (wait_for counts idle seconds), woken by the deletion itself
    assert wait_for(cluster.changed, lambda: not cluster.jobs, 30), "the Job outlived the runner"
    assert ("DELETE", f"/apis/batch/v1/namespaces/bench/jobs/{job['body']['metadata']['name']}") in cluster.requests
    assert job["pod"]["proc"].wait(timeout=10) is not None
