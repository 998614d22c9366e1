"""Reaching a Docker engine: the client the executor, its image store and its GPU probe share.

The engine is the one DOCKER_HOST names (else the default socket); it must share the host's filesystem, since
cells bind-mount host folders (a local engine does; `make engine` starts a private one).
"""

from __future__ import annotations

import os
from typing import Any

from common.errors import BadInput

IMAGE_REPO = "kbm"
LABEL = "org.keras-backend-matrix"
PING_TIMEOUT_S = 3.0


class DockerUnavailable(BadInput):
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



def find_image(client: Any, tag: str) -> Any | None:
    """The engine's image of that name, or None."""
    import docker

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
