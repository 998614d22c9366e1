"""`python -m tooling.bench_docker`: what running a cell in a container costs, against the venv executor.

In one run, for one cell (default: the MLP on JAX, bench profile: full MNIST, 6 epochs): the image build time
cold (`--cold` removes the image first; otherwise the cold figure is the one recorded when it was built) and warm
(the second prepare: a lookup by hash), then rounds of the same cell through venv and docker, interleaved so drift
hits both. Prints per executor the per-cell fixed overhead (launch to first batch, less the framework's import;
goal for docker <= 3 s and <= 1 s more than venv), the launch-to-interpreter time, and the steady-epoch ratio
docker/venv (goal <= 1.02). The last line is `docker_ratio=<x> docker_extra_overhead_s=<y>`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from runner.cells import Selection, expand
from runner.executors.base import Executor
from runner.executors.docker import DockerExecutor, DockerUnavailable
from runner.executors.venv import VenvExecutor
from runner.matrix import load_matrix
from runner.paths import REPO_ROOT
from runner.progress import make_console
from tooling.bench import run_one_cell


def _one(matrix: Any, cell: Any, executor: Executor, args: argparse.Namespace) -> dict[str, Any]:
    return run_one_cell(matrix, cell, executor, args.results, args.data, "bench-docker")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tooling.bench_docker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--matrix", type=Path, default=REPO_ROOT / "matrix.yaml")
    p.add_argument("--backend", default="jax")
    p.add_argument("--model", default="mlp")
    p.add_argument("--profile", default="bench")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data", choices=["real", "synthetic"], default="real")
    p.add_argument("--cold", action="store_true", help="remove the image first, to time a cold build")
    p.add_argument("--results", type=Path, default=Path("results") / "bench-docker")
    args = p.parse_args(argv)
    console = make_console()
    matrix = load_matrix(args.matrix)
    (cell,) = expand(matrix, Selection(backends=(args.backend,), models=(args.model,), profile=args.profile))[:1]
    env = matrix.environments[cell.environment]
    try:
        docker_ex = DockerExecutor()
    except DockerUnavailable as exc:
        console.print(f'[red]error:[/] {exc} (`eval "$(make -s engine)"` starts one)')
        return 2
    venv_ex = VenvExecutor()
    venv_ex.prepare(cell.environment, env, console.print)

    if args.cold:
        tag = docker_ex.plan(cell.environment, env)["location"].split(" ")[0]
        if docker_ex.images.image(tag) is not None:
            docker_ex.client.images.remove(tag, force=True)
            docker_ex.client.images.prune(filters={"dangling": True})
    t = time.perf_counter()
    built = docker_ex.prepare(cell.environment, env, console.print)
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    again = docker_ex.prepare(cell.environment, env, lambda _: None)
    warm_s = time.perf_counter() - t
    cold = f"{first_s:.1f} s (this run)" if not built.reused else "not timed here (image present; pass --cold)"
    console.print(
        f"image {built.location}: {built.info.get('size_mb')} MB; cold build {cold}; warm {warm_s:.2f} s "
        f"(reused: {again.reused})"
    )

    rows: dict[str, list[dict[str, Any]]] = {"venv": [], "docker": []}
    for round_no in range(1, args.rounds + 1):
        for executor in (venv_ex, docker_ex):
            r = _one(matrix, cell, executor, args)
            rows[executor.name].append(r)
            tl = r["timeline"]
            console.print(
                f"round {round_no} {executor.name:6s}: steady {r['steady_epoch_s']:.4f} s/epoch, fixed overhead "
                f"{tl['fixed_overhead_s']:.2f} s (launch to interpreter {tl['worker_start_s']:.2f} s, import "
                f"{tl['import_s']:.2f} s, data {tl['data_s']:.2f} s, build {tl['build_s']:.2f} s), other CPU "
                f"{(r['host'].get('load') or {}).get('other_cpu_share')}"
            )

    def med(name: str, key: str) -> float:
        values = [r["timeline"][key] if key in r["timeline"] else r[key] for r in rows[name]]
        return statistics.median(values)

    ratio = med("docker", "steady_epoch_s") / med("venv", "steady_epoch_s")
    fixed_d, fixed_v = med("docker", "fixed_overhead_s"), med("venv", "fixed_overhead_s")
    start_d, start_v = med("docker", "worker_start_s"), med("venv", "worker_start_s")
    console.print(f"cell {cell.id}, {args.rounds} rounds, medians:")
    console.print(
        f"  steady s/epoch      venv {med('venv', 'steady_epoch_s'):.4f}  docker "
        f"{med('docker', 'steady_epoch_s'):.4f}  ratio {ratio:.4f} (goal <= 1.02: "
        f"{'met' if ratio <= 1.02 else 'NOT met'})"
    )
    met = "met" if fixed_d <= 3 and fixed_d - fixed_v <= 1 else "NOT met"
    console.print(
        f"  fixed overhead s    venv {fixed_v:.2f}  docker {fixed_d:.2f}  extra {fixed_d - fixed_v:+.2f} "
        f"(goal docker <= 3 s and extra <= 1 s: {met})"
    )
    console.print(f"  launch->interpreter venv {start_v:.2f}  docker {start_d:.2f}  extra {start_d - start_v:+.2f}")
    print(f"docker_ratio={ratio:.4f} docker_extra_overhead_s={fixed_d - fixed_v:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
