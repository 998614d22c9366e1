"""`python -m tooling.bench_slurm` (`make bench-slurm`): what Slurm costs and gives on one machine.

Runs the same smoke cells (synthetic data of the real shapes, so nothing is downloaded and no cell is skipped)
twice: with the local venv executor, one after another, and as sbatch jobs on a local 2-GPU Slurm cluster with
`--parallel 2`, then prints each job's submit-to-start time (sbatch called -> the batch script running) and both
wall times. The cluster is started in a temporary folder and stopped by pid at the end, unless SLURM_CONF already
points at one (then that one is used, as it is).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from runner.paths import REPO_ROOT
from tooling.slurm_cluster import ClusterError, LocalSlurmCluster


def _matrix(folder: Path, gpus: int) -> Path:
    data = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    data["profiles"]["smoke"]["gpus"] = gpus
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(label: str, args: list[str], env: dict[str, str], results: Path) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "runner", "--results", str(results), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-3000:])
        raise SystemExit(f"the {label} run failed (exit status {proc.returncode})")
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return wall, [json.loads(p.read_text()) for p in sorted(run.glob("*/result.json"))]


def bench_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.bench_slurm", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="keras3-tensorflow", help="environment whose cells run (default keras3-tensorflow)")
    p.add_argument("--model", action="append", help="models (default: mlp, cnn, cifar10_cnn, babi_rnn)")
    p.add_argument("--slots", type=int, default=2, help="fake GPUs on the node, and --parallel (default 2)")
    args = p.parse_args(argv)
    models = args.model or ["mlp", "cnn", "cifar10_cnn", "babi_rnn"]
    with tempfile.TemporaryDirectory(prefix="kbm-bench-slurm-") as tmp:
        root = Path(tmp)
        cluster = None
        env = dict(os.environ)
        if not env.get("SLURM_CONF"):
            cluster = LocalSlurmCluster(root / "cluster", cpus=2 * args.slots, gpus=args.slots)
            try:
                up = cluster.start()
            except ClusterError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            env = cluster.env()
            print(f"local Slurm cluster ({args.slots} GPU slots) up in {up:.1f} s")
        try:
            common = ["--matrix", str(_matrix(root, gpus=1)), "--profile", "smoke", "--env", args.env, "--data",
                      "synthetic", "--no-report", *[a for m in models for a in ("--model", m)]]
            venv_wall, venv_results = _run("venv", [*common, "--executor", "venv"], env, root / "venv")
            slurm_wall, slurm_results = _run(
                "slurm", [*common, "--executor", "slurm", "--parallel", str(args.slots)], env, root / "slurm"
            )
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"{len(models)} smoke cells of {args.env} (synthetic data)")
    print(f"{'cell':<50} {'job':>4} {'GPU':>3} {'submit->start s':>15} {'job s':>7} {'venv cell s':>11}")
    venv_by_id = {r["cell_id"]: r for r in venv_results}
    waits = []
    for r in sorted(slurm_results, key=lambda r: int(r["executor"]["job_id"])):
        ex = r["executor"]
        waits.append(ex["queue_wait_s"])
        ran = ex["ended_at"] - ex["started_at"]
        print(f"{r['cell_id']:<50} {ex['job_id']:>4} {ex['cuda_visible_devices']:>3} {ex['queue_wait_s']:>15.2f} "
              f"{ran:>7.1f} {venv_by_id[r['cell_id']]['cell_wall_s']:>11.1f}")
    print(f"submit-to-start per cell: median {statistics.median(waits):.2f} s, max {max(waits):.2f} s")
    print(f"wall time: venv one after another {venv_wall:.1f} s; slurm on {args.slots} slots {slurm_wall:.1f} s "
          f"(x{venv_wall / slurm_wall:.2f})")
    print(f"slurm_submit_to_start_median_s={statistics.median(waits):.3f} venv_wall_s={venv_wall:.1f} "
          f"slurm_wall_s={slurm_wall:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(bench_main())
