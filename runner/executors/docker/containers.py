"""Running confined containers: one fresh container per cell, watched until it ends, then removed.

A cell's container runs the same worker as the venv executor: models/ mounted read-only, the cell folder the only
writable mount, the Keras cache and the runner's data cache read-only, no network, no capabilities, no new
privileges, a read-only root with a tmpfs /tmp, the profile's CPU/memory/shm limits and the GPUs asked for. The
worker reads `container-spec.json` (spec.json with its paths mapped into the container; spec.json itself keeps
the host's view). Logs stream into the cell's worker.log.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from runner import paths
from runner.datafetch import data_cache, keras_datasets_dir
from runner.executors.base import CellHandle, CellJob, signal_exit_status
from runner.executors.container import (
    CELL_DIR,
    CODE_DIR,
    KERAS_HOME,
    MODEL_FILES_DIR,
    PYTHON,
    USER_DATA_FILE,
    container_variables,
)
from runner.executors.docker.client import LABEL
from runner.matrix import Environment

DATA_DIR = "/kbm/data"
CONTAINER_SPEC = "container-spec.json"
STOP_GRACE_S = 5


class Mounts:
    """Host folders bound into the container; maps host paths below them to container paths."""

    def __init__(self) -> None:
        self.binds: list[tuple[Path, str, bool]] = []

    def add(self, host: Path, target: str, read_only: bool = True) -> None:
        self.binds.append((host.resolve(), target, read_only))

    def map(self, value: str | None) -> str | None:
        if not value:
            return value
        path = Path(value).resolve()
        for host, target, _ in sorted(self.binds, key=lambda b: len(str(b[0])), reverse=True):
            if path == host or host in path.parents:
                return str(Path(target) / path.relative_to(host))
        return value

    def sdk(self) -> list[Any]:
        from docker.types import Mount

        return [Mount(target, str(host), type="bind", read_only=ro) for host, target, ro in self.binds]


def container_spec(spec: dict[str, Any], mounts: Mounts) -> dict[str, Any]:
    """spec.json as the worker sees it inside the container: the same experiment, container paths."""
    out = json.loads(json.dumps(spec))
    out["paths"] = {key: mounts.map(value) for key, value in spec.get("paths", {}).items()}
    data = out.get("data", {})
    for key in ("offline_wheel", "cache_dir"):
        if data.get(key):
            data[key] = mounts.map(data[key])
    model = out.get("model", {})
    for key in ("module", "data_file"):  # a model file of the user's own, and its data
        if model.get(key):
            model[key] = mounts.map(model[key])
    return out


def cell_mounts(job: CellJob, env_name: str = "", env: Environment | None = None) -> Mounts:
    """The cell folder writable, the code, the Keras cache and the data cache read-only; the environment's compile
    caches (matrix `docker.caches`) writable, kept between cells as the venv executor's ~/.theano is."""
    mounts = Mounts()
    mounts.add(paths.code_root() / "models", f"{CODE_DIR}/models")
    mounts.add(job.cell_dir, CELL_DIR, read_only=False)
    for name, target in (env.docker.caches if env is not None and env.docker else {}).items():
        host = paths.cache_dir() / "docker" / "caches" / env_name / name
        host.mkdir(parents=True, exist_ok=True)
        mounts.add(host, target, read_only=False)
    home = Path(keras_datasets_dir()).parent
    if home.is_dir():
        mounts.add(home, KERAS_HOME)
    mounts.add(data_cache(), DATA_DIR)
    model = json.loads(job.spec_path.read_text()).get("model", {}) if job.spec_path.exists() else {}
    if model.get("module"):  # the run's copy of a model file, read-only
        mounts.add(Path(model["module"]).parent, MODEL_FILES_DIR)
    if model.get("data_file"):
        mounts.add(Path(model["data_file"]), USER_DATA_FILE)
    return mounts


def convert_mnist_wheel(client: Any, image: str, spec: dict[str, Any], mounts: Mounts) -> None:
    """The worker converts the offline MNIST wheel once into the data cache; that cache is read-only in a
    cell, so a short container with it writable (and still no network) does the conversion first."""
    from docker.types import Mount

    wheel = spec["data"].get("offline_wheel")
    cache = spec["data"].get("cache_dir")
    if not wheel or not cache or (Path(cache) / (Path(wheel).name + ".uint8.npz")).exists():
        return
    code = "import sys; from models.data import _mnist_from_wheel; _mnist_from_wheel(sys.argv[1], sys.argv[2])"
    client.containers.run(
        image,
        [PYTHON, "-c", code, mounts.map(wheel), DATA_DIR],
        environment={"PYTHONPATH": CODE_DIR},
        working_dir=CODE_DIR,
        network_mode="none",
        remove=True,
        user=f"{os.getuid()}:{os.getgid()}",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mounts=[
            Mount(f"{CODE_DIR}/models", str(paths.code_root() / "models"), type="bind", read_only=True),
            Mount(DATA_DIR, str(data_cache()), type="bind", read_only=False),
        ],
    )


def container_kwargs(image: str, job: CellJob, spec: dict[str, Any], mounts: Mounts, gpus: int) -> dict:
    """Everything `containers.create` gets for a cell but the command and KBM_LAUNCHED_AT (tests reuse it)."""
    import docker

    resources = spec.get("resources") or {}
    variables = container_variables(job.env, keras_home_mounted=Path(keras_datasets_dir()).parent.is_dir())
    variables.update(USER="kbm", PYTHONDONTWRITEBYTECODE="1")
    kwargs: dict[str, Any] = {
        "image": image,
        "working_dir": CODE_DIR,
        "environment": variables,
        "user": f"{os.getuid()}:{os.getgid()}",
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,exec,size=4g"},
        "init": True,
        "mounts": mounts.sdk(),
        "labels": {LABEL: "cell", f"{LABEL}.cell": spec.get("cell_id", "")},
    }
    if resources.get("cpus"):
        kwargs["nano_cpus"] = int(float(resources["cpus"]) * 1e9)
    if resources.get("shm_gb"):
        kwargs["shm_size"] = int(float(resources["shm_gb"]) * (1 << 30))
    if spec.get("memory_limit_gb"):
        # the worker's own RLIMIT_DATA (the limit itself) fails cleanly with MemoryError first; the cgroup
        # limit, a quarter above it, catches what that rlimit does not count (shared libraries, tmpfs)
        limit = int(float(spec["memory_limit_gb"]) * 1.25 * (1 << 30))
        kwargs.update(mem_limit=limit, memswap_limit=limit)
    if gpus:
        kwargs["device_requests"] = [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    return kwargs


def cgroup_cpu_files(container_id: str) -> list[Path]:
    """Where the kernel counts a container's CPU time (cgroup v1 cgroupfs, v2 cgroupfs or systemd)."""
    root = Path("/sys/fs/cgroup")
    return [
        root / "cpuacct" / "docker" / container_id / "cpuacct.usage",
        root / "cpu,cpuacct" / "docker" / container_id / "cpuacct.usage",
        root / "docker" / container_id / "cpu.stat",
        root / "system.slice" / f"docker-{container_id}.scope" / "cpu.stat",
    ]


def read_cpu_seconds(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    if path.name == "cpu.stat":
        fields = dict(line.split() for line in text.splitlines() if line.strip())
        return int(fields.get("usage_usec", 0)) / 1e6
    return int(text.strip()) / 1e9


class ContainerHandle(CellHandle):
    """A running cell container: one thread waits for its exit, one copies its output into worker.log."""

    def __init__(self, container: Any, log_path: Path, info: dict[str, Any]):
        self.container = container
        self._info = info
        self._code: int | None = None
        self._done = False
        self._cpu_file: Path | None = None
        self._log = open(log_path, "ab", buffering=0)
        self._waiter = threading.Thread(target=self._wait_exit, daemon=True)
        self._logger = threading.Thread(target=self._copy_logs, daemon=True)
        self._logger.start()
        self._waiter.start()

    def _wait_exit(self) -> None:
        while True:
            try:
                self._code = int(self.container.wait()["StatusCode"])
                return
            except Exception as exc:  # noqa: BLE001 - a read timeout on a long cell: wait again
                if "timed out" not in str(exc).lower() and "timeout" not in type(exc).__name__.lower():
                    self._code = 125
                    self._info["wait_error"] = f"{type(exc).__name__}: {exc}"
                    return

    def _copy_logs(self) -> None:
        try:
            for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=True):
                self._log.write(chunk)
        except Exception as exc:  # noqa: BLE001 - the log is best effort; the result file is the contract
            self._log.write(f"\n[docker executor: log stream ended: {exc}]\n".encode())

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._logger.join(timeout=10)
        try:
            state = self.container.client.api.inspect_container(self.container.id)["State"]
            self._info["oom_killed"] = bool(state.get("OOMKilled"))
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._log.close()

    def _sample_cpu(self) -> None:
        """The container's CPU seconds so far (its cgroup goes with it, so the last sample before exit counts);
        the runner's load probe only sees its own children, which a container is not."""
        if self._cpu_file is None:
            self._cpu_file = next((f for f in cgroup_cpu_files(self.container.id) if f.exists()), Path("/nonexistent"))
        seconds = read_cpu_seconds(self._cpu_file)
        if seconds is not None:
            self._info["cpu_s"] = round(seconds, 3)

    def wait(self, timeout: float) -> int | None:
        self._sample_cpu()
        self._waiter.join(timeout)
        if self._waiter.is_alive():
            self._sample_cpu()
            return None
        self._finish()
        code = signal_exit_status(self._code if self._code is not None else 125)
        if self._info.get("oom_killed") and code == -signal.SIGKILL:
            self._log_note("the container hit its memory limit and was killed (OOM)")
        return code

    def _log_note(self, text: str) -> None:
        with open(self._log.name, "ab") as log:
            log.write(f"\n[docker executor: {text}]\n".encode())

    def kill(self) -> None:
        """SIGTERM through the container's init, SIGKILL after a grace period; then the container is removed."""
        try:
            self.container.stop(timeout=STOP_GRACE_S)
        except Exception:  # noqa: BLE001 - it may have ended on its own meanwhile
            pass
        self._waiter.join(timeout=STOP_GRACE_S + 10)
        self._finish()

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def orphan_cleanup(self) -> dict[str, Any] | None:
        return {"container": self.container.id}  # a container outlives the runner that started it

