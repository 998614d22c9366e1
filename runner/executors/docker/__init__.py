"""Docker executor: one image per environment, one fresh container per cell. Split along its four jobs:

    client.py      reaching the engine (DOCKER_HOST or the default socket)
    images.py      building and caching each environment's image (tagged by the hash of its recipe)
    containers.py  running a cell in a confined container and watching it end
    gpu.py         probing whether the engine can give containers GPUs
    executor.py    DockerExecutor, the Executor interface over those
    cli.py         `python -m runner.executors.docker build [--gpus N] [ENV ...]`

Container paths and variables shared with the Kubernetes executor live in runner/executors/container.py. Needs an
engine that shares the host's filesystem (a local one: `make engine` starts one). Like every executor, never
imports the orchestration loop (runner.orchestrate).
"""

from runner.executors.docker.client import DockerUnavailable, connect, engine_where
from runner.executors.docker.executor import DockerExecutor
from runner.executors.docker.images import resolve_recipe

__all__ = ["DockerExecutor", "DockerUnavailable", "connect", "engine_where", "resolve_recipe"]
