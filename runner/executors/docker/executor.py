"""The Docker executor: one image per environment (images.py), one fresh confined container per cell
(containers.py), GPUs only where the engine can give them (gpu.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from runner.executors.base import CellHandle, CellJob, Executor, LaunchFailed, PreparedEnv
from runner.executors.container import CELL_DIR, PYTHON
from runner.executors.docker.client import connect
from runner.executors.docker.containers import (
    CONTAINER_SPEC,
    ContainerHandle,
    Mounts,
    cell_mounts,
    container_kwargs,
    container_spec,
    convert_mnist_wheel,
)
from runner.executors.docker.gpu import check_gpu_support, explain_start_error
from runner.executors.docker.images import ImageStore
from runner.matrix import Environment


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, client: Any | None = None, gpus: int | None = None, check_gpus: bool = True):
        self.client = client if client is not None else connect()
        self.gpus = gpus
        if gpus and check_gpus:  # building GPU images needs no GPU; running them does
            check_gpu_support(self.client, gpus)
        self.images = ImageStore(self.client)

    # -- environments ----------------------------------------------------------------------------------------
    @property
    def flavour(self) -> str:
        return "gpu" if self.gpus else "cpu"

    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        return self.images.plan(name, env, self.flavour)

    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        return self.images.prepare(name, env, self.flavour, on_status)

    # -- cells -----------------------------------------------------------------------------------------------
    def gpus_for(self, spec: dict[str, Any]) -> int:
        return int(self.gpus if self.gpus is not None else (spec.get("resources") or {}).get("gpus") or 0)

    def _mounts(self, job: CellJob) -> Mounts:
        return cell_mounts(job)

    def container_kwargs(self, prepared: PreparedEnv, job: CellJob, spec: dict[str, Any], mounts: Mounts) -> dict:
        """Everything `containers.create` gets for a cell but the command and KBM_LAUNCHED_AT (tests reuse it)."""
        return container_kwargs(prepared.location, job, spec, mounts, self.gpus_for(spec))

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        import docker

        spec = json.loads(job.spec_path.read_text())
        mounts = cell_mounts(job, prepared.name, prepared.spec)
        inner = container_spec(spec, mounts)
        (job.cell_dir / CONTAINER_SPEC).write_text(json.dumps(inner, indent=1))
        info: dict[str, Any] = {"image": prepared.location, "image_id": prepared.info.get("image_id")}
        gpus = self.gpus_for(spec)
        container = None
        try:
            convert_mnist_wheel(self.client, prepared.location, spec, mounts)
            kwargs = self.container_kwargs(prepared, job, spec, mounts)
            extra = [mounts.map(a) if a.startswith("/") else a for a in job.extra_args]
            command = [PYTHON, "-m", job.module, f"{CELL_DIR}/{CONTAINER_SPEC}", *extra]
            kwargs["environment"]["KBM_LAUNCHED_AT"] = repr(time.time())  # container start counts in the timeline
            container = self.client.containers.create(command=command, **kwargs)
            container.start()
        except docker.errors.APIError as exc:
            if container is not None:  # created but refused at start (no GPU): never leave it behind
                try:
                    container.remove(force=True)
                except docker.errors.APIError:
                    pass
            message = explain_start_error(str(exc.explanation or exc), gpus)
            # 125: docker's own status for "the engine failed to run the container"
            log = f"[docker executor] the cell's container did not start: {message}"
            return LaunchFailed(125, dict(info, start_error=message), job.log_path, log)
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
