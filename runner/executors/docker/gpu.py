"""GPU probing: whether the engine can give a container the GPUs a run asks for, and saying so when it cannot.

--gpus never turns into a silent CPU run: the probe fails before anything builds, and a cell whose container
cannot get its device fails with the engine's reason and the fix.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

from runner.executors.docker.client import IMAGE_REPO, LABEL, DockerUnavailable, engine_where

NO_GPU_MARKERS = ("could not select device driver", "nvidia-container-cli", "no nvidia")


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
