"""`python -m runner.executors.docker build [ENV ...] [--gpus N | --gpu-images]`: the Docker executor's command
line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner import paths
from runner.executors.base import EnvironmentBuildError
from runner.executors.docker.client import DockerUnavailable
from runner.executors.docker.executor import DockerExecutor
from runner.matrix import MatrixError, load_matrix


def main(argv: list[str] | None = None) -> int:
    """`python -m runner.executors.docker build [ENV ...] [--gpus N | --gpu-images]`: build (or reuse) images."""
    p = argparse.ArgumentParser(prog="python -m runner.executors.docker", description=main.__doc__)
    p.add_argument("action", choices=["build"])
    p.add_argument("environments", nargs="*", help="default: every environment with a container recipe")
    p.add_argument("--gpus", type=int, help="build the GPU flavour (and check the engine can give a GPU)")
    p.add_argument("--gpu-images", action="store_true", help="build the GPU flavour on a machine without a GPU")
    p.add_argument("--matrix", type=Path, default=paths.DEFAULT_MATRIX)
    args = p.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
        executor = DockerExecutor(gpus=args.gpus or (1 if args.gpu_images else None), check_gpus=not args.gpu_images)
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
