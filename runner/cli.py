"""`python -m runner`: the pipeline load matrix -> expand cells -> filter -> run -> summarise -> exit status.

Each step is a plain function (testable without a GPU); only `main` turns outcomes into exit statuses:
0 every cell ok or skipped (and at least one measured), 1 a cell failed or timed out, or no cell ran at all,
2 bad input (nothing ran), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from runner import paths
from runner.cells import Selection, SelectionError, plan
from runner.dryrun import dry_run
from runner.executors import EXECUTORS, choose
from runner.executors.existing import ExistingExecutor
from runner.matrix import MatrixError, load_matrix
from runner.orchestrate import ResumeError, run_cells
from runner.progress import Display, make_console
from runner.results import RESULT_FILE, ResultError, iter_results
from runner.summary import print_summary

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DESCRIPTION = """\
Train the five classic Keras examples on every backend of the matrix, each model x backend cell in its own
process inside the environment that hosts its backend, and write one JSON result per cell.

subcommands:
  python -m runner [options]            run the matrix (the default)
  python -m runner check RUN_DIR        validate every result in a run folder (exit 1 on any problem)
  python -m runner report [RUN...]      write results/<run-id>/report/ (HTML, Markdown, plots, CSV/Parquet)
  python -m runner compare RUN_A RUN_B  per-cell ratio and accuracy delta; exit 1 on a regression beyond noise
  python -m runner sweep [options]      every variant that applies, on the MNIST tests, 3 interleaved repeats;
                                        the report shows each backend's best variant and the default's distance

tooling (tests, CI, measurement; the tooling/ package): make bench-overhead, make engine, make slurm-up
"""

EPILOG = """\
examples:
  python -m runner                          the default profile (quick) on every backend
  python -m runner --only tensorflow        TensorFlow's cells, every generation (tensorflow@keras3: Keras 3's)
  python -m runner --profile smoke --model mlp --model cnn
  python -m runner --data synthetic --dry-run
  python -m runner --python /opt/conda/bin/python --only jax     the cells in an interpreter you already have
  python -m runner --only jax --variant default --variant jax-onednn --repeats 3
  python -m runner sweep --only torch --dry-run
"""

SWEEP_MODELS = ("mlp", "cnn", "hrnn")  # the MNIST tests: what the sweep measures unless --model says otherwise
SWEEP_REPEATS = 3


def build_parser(prog: str = "python -m runner") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--matrix",
        type=Path,
        help="the matrix file (default: ./matrix.yaml of this checkout)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="BACKEND",
        help="run only this backend's cells (repeatable): a backend (jax, tensorflow1), a framework family "
        "(tensorflow: every generation) or NAME@GENERATION (tensorflow@keras3)",
    )
    p.add_argument("--model", action="append", default=[], help="run only this model (repeatable)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="ENVIRONMENT",
        help="run only the cells of this environment (repeatable)",
    )
    p.add_argument("--profile", help="smoke, quick, bench or article (default: the matrix's defaults.profile)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME",
        help="run each cell under this variant of matrix.yaml's `variants` (repeatable; `all`: every variant that "
        "applies; default: each environment's default variant)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        help="run each cell N times, each in a fresh process, interleaved (repeat 1 of every cell, then repeat 2, "
        "...), each repeat with its own seed derived from --seed",
    )
    p.add_argument("--seed", type=int, help="base random seed (default: the matrix's defaults.seed); repeat 1 uses "
                   "it as is, later repeats a seed derived from it")
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="folder that receives one new run folder per run (default: ./results)",
    )
    p.add_argument(
        "--data",
        choices=["real", "synthetic"],
        help="real files (default) or synthetic arrays of the real shapes, for speed-only runs",
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell time limit (default: the profile's)")
    p.add_argument(
        "--executor",
        choices=["auto", *EXECUTORS],
        help="where cells run: venv (cached virtualenvs), slurm (one sbatch job per cell), kubernetes (one Job "
        "per cell), or auto (the best available)",
    )
    p.add_argument(
        "--python",
        metavar="PATH",
        help="run the selected cells in this existing interpreter (with its own Keras and frameworks, e.g. the "
        "machine's CUDA builds); builds nothing, records the versions it imported",
    )
    p.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="keep up to N cells in flight (default 1: one after another, as timing wants; a scheduler's slots)",
    )
    p.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="give each cell N GPUs (docker: a device request and the GPU image; an error where the engine has none)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue results/<run-id> with its own options (from its run.json): keep cells whose ok result "
        "matches the spec, run the rest",
    )
    p.add_argument("--dry-run", action="store_true", help="list the cells and what would be installed, run nothing")
    p.add_argument(
        "--no-report", action="store_true", help="do not write results/<run-id>/report/ at the end of the run"
    )
    return p


def existing_interpreter(args: argparse.Namespace, matrix, cells) -> tuple[ExistingExecutor, str]:
    """--python: the cells run in that interpreter; it must import Keras and every selected backend first."""
    if args.executor not in ("auto", "existing"):
        raise SelectionError(f"--python runs the cells in that interpreter; it cannot be combined with --executor "
                             f"{args.executor} (leave out one of them)")
    if args.gpus:
        raise SelectionError("--gpus asks a container engine for devices; with --python the interpreter's own "
                             "frameworks find the GPU (leave out --gpus)")
    executor = ExistingExecutor(args.python, matrix)
    executor.preflight(list(dict.fromkeys(c.environment for c in cells)))
    return executor, f"existing: --python {args.python} (builds nothing; the interpreter's own packages)"


# What `--resume` takes from a run's run.json when the command line does not say it. The first group decides the
# experiment: a value that differs is refused; the rest (where and how fast it runs) may differ.
EXPERIMENT = ("profile", "repeats", "seed", "data")
CARRIED = ("matrix", "executor", "gpus", "parallel", "timeout", "python")
LISTS = {"only": "--only", "model": "--model", "env": "--env", "variant": "--variant"}


def selection_of(args: argparse.Namespace, matrix: Any) -> dict[str, Any]:
    """The run's options as run.json records them, defaults resolved (a later default change cannot alter them)."""
    return {
        "only": list(args.only),
        "model": list(args.model),
        "env": list(args.env),
        "variant": list(args.variant),
        "profile": args.profile or matrix.defaults.profile,
        "repeats": args.repeats or matrix.defaults.repeats,
        "seed": matrix.defaults.seed if args.seed is None else args.seed,
        "data": args.data or matrix.defaults.data,
        "matrix": str(Path(args.matrix).resolve()),
        "executor": args.executor,
        "gpus": args.gpus,
        "parallel": args.parallel,
        "timeout": args.timeout,
        "python": getattr(args, "python", None),
    }


def recorded_selection(run: Path) -> tuple[dict[str, Any], list[str]]:
    """(options, planned cell ids) from a run's run.json; older runs without `selection` re-parse their argv."""
    try:
        manifest = json.loads((run / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"--resume {run}: not a run folder ({exc}); pass results/<run-id>") from None
    recorded = manifest.get("selection")
    if not recorded:
        argv = [a for a in manifest.get("argv", [])[3:] if a]
        old, _ = build_parser().parse_known_args(argv)
        recorded = {key: getattr(old, key, None) for key in (*LISTS, *EXPERIMENT, *CARRIED)}
    return recorded, list(manifest.get("cells") or [])


def merge_resume(args: argparse.Namespace, recorded: dict[str, Any]) -> None:
    """Fill what the command line left out from the run's options; refuse an option that contradicts them."""
    flags = {"profile": "--profile", "repeats": "--repeats", "seed": "--seed", "data": "--data"}
    for key in EXPERIMENT:
        given, before = getattr(args, key), recorded.get(key)
        if given is not None and before is not None and given != before:
            raise SelectionError(
                f"{flags[key]} {given}: the run being resumed used {flags[key]} {before}; a resume continues the "
                "same experiment (start a new run for a different one, or leave the option out)"
            )
        if given is None:
            setattr(args, key, before)
    for key in LISTS:
        if not getattr(args, key):
            setattr(args, key, list(recorded.get(key) or []))
    for key in CARRIED:
        if getattr(args, key) is None and recorded.get(key) is not None:
            setattr(args, key, Path(recorded[key]) if key == "matrix" else recorded[key])


def check_resumed_cells(cells: list[Any], planned: list[str], recorded: dict[str, Any]) -> None:
    """Every cell of a resume must be one the run planned; name the option that asks for another."""
    for cell in cells:
        if cell.id in planned:
            continue
        for key, value in (("model", cell.model), ("only", cell.backend), ("env", cell.environment),
                           ("variant", cell.variant)):
            if recorded.get(key) and value not in recorded[key] and "all" not in recorded[key]:
                raise SelectionError(
                    f"{LISTS[key]} {value}: the run being resumed has no such cells (it ran "
                    f"{' '.join(f'{LISTS[key]} {v}' for v in recorded[key])})"
                )
        raise SelectionError(f"the run being resumed planned no cell {cell.id}; leave the selection options out")


def check_numbers(args: argparse.Namespace) -> None:
    if args.repeats is not None and args.repeats < 1:
        raise SelectionError("--repeats must be at least 1")
    if args.parallel is not None and args.parallel < 1:
        raise SelectionError("--parallel must be at least 1 (1 runs the cells one after another)")
    if args.timeout is not None and not args.timeout > 0:
        raise SelectionError(f"--timeout {args.timeout:g}: a time limit must be more than 0 seconds")
    if args.seed is not None and args.seed < 0:
        raise SelectionError(f"--seed {args.seed}: seeds are 0 or more (numpy and the frameworks take unsigned seeds)")


def run_main(argv: list[str], sweep: bool = False) -> int:
    """Run the matrix; `sweep` changes the defaults to every applicable variant of the MNIST tests, 3 repeats."""
    args = build_parser("python -m runner sweep" if sweep else "python -m runner").parse_args(argv)
    args.sweep = sweep
    if sweep:
        args.model = args.model or list(SWEEP_MODELS)
        args.variant = args.variant or ["all"]
        args.repeats = args.repeats or SWEEP_REPEATS
    console = make_console(stderr=True)
    try:
        check_numbers(args)
        planned: list[str] | None = None
        if args.resume is not None:
            recorded, planned = recorded_selection(args.resume)
            merge_resume(args, recorded)
        args.matrix = args.matrix or paths.REPO_ROOT / "matrix.yaml"
        args.executor = args.executor or "auto"
        args.parallel = args.parallel or 1
        matrix = load_matrix(args.matrix)
        sel = Selection(tuple(args.only), tuple(args.model), tuple(args.env), args.profile, args.repeats, args.seed,
                        tuple(args.variant), args.gpus)
        if args.python:
            # the environments the selection touches (each default variant fits its own pins), then the variants
            # checked against what that interpreter really imports (XLA aborts on flags its jaxlib lacks)
            touched = plan(matrix, replace(sel, variants=()))[0]
            executor, why = existing_interpreter(args, matrix, touched)
            sel = replace(sel, found=executor.found_versions(list(dict.fromkeys(c.environment for c in touched))))
        cells, notes = plan(matrix, sel)
        for note in notes:
            console.print(f"[yellow]not planned:[/] {note}", highlight=False)
        if planned is not None:
            check_resumed_cells(cells, planned, recorded)
        if not args.python:
            executor, why = choose(args.executor, gpus=args.gpus, dry_run=args.dry_run)
    except (MatrixError, SelectionError, ResumeError, ValueError) as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    data = args.data or matrix.defaults.data
    if args.dry_run:
        dry_run(make_console(), matrix, cells, executor, data, args.timeout, sel)
        folder = executor.write_manifests(matrix, cells, data, args.timeout, args.results)  # a scheduler's jobs
        if folder is not None:
            console.print(f"manifests: {folder}", highlight=False)
        return EXIT_OK
    console.print(f"executor {why}", style="cyan", highlight=False)
    try:
        with Display(console) as display:
            outcome = run_cells(
                matrix,
                cells,
                executor,
                results_root=args.results,
                data_source=data,
                timeout_s=args.timeout,
                display=display,
                argv=["python", "-m", "runner", *argv],
                executor_why=why,
                resume=args.resume,
                parallel=args.parallel,
                selection=selection_of(args, matrix),
                sel=sel,
            )
    except ResumeError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print(
            "[red]interrupted[/] while preparing environments; nothing was run, no half-built environment is kept",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    resume = f"{shlex.quote(sys.executable)} -m runner --resume {shlex.quote(str(outcome.run_dir))}"
    try:
        return close_run(args, console, matrix, outcome, len(cells), resume)
    except KeyboardInterrupt:  # Ctrl-C during the summary or the report: the results and run.json are complete
        console.print(f"[red]interrupted[/]; results kept in {outcome.run_dir}. To finish the run: {resume}",
                      highlight=False)
        return EXIT_INTERRUPTED


def close_run(
    args: argparse.Namespace, console: Console, matrix: Any, outcome: Any, planned: int, resume: str
) -> int:
    """The summary (each skip's fix stated once below it), the report, and the exit status a run ends with."""
    print_summary(
        make_console(), outcome.results, f"run {outcome.run_dir.name} ({len(outcome.results)} of {planned} cells)"
    )
    busy = [r for r in outcome.results if (r.get("host") or {}).get("load", {}).get("busy")]
    if busy:  # name the backends that ran busy, and only those
        names = ", ".join(dict.fromkeys(matrix.backends[r["cell"]["backend"]].title for r in busy))
        console.print(
            f"[yellow]warning:[/] the machine was busy with other work during {len(busy)} cell(s) ({names}); "
            "their times are suspect, and backends suffer unequally. Rerun on a quiet machine.",
            highlight=False,
        )
    unserved = {r["cell"]["environment"]: r["error"] for r in outcome.results
                if r.get("stage") == "environment" and r["status"] == "skipped"}
    for name, why in unserved.items():  # never a silent omission: what this machine could not serve, and the fix
        console.print(f"[yellow]not served here:[/] {name}: {why}", highlight=False)
    console.print(f"results: {outcome.run_dir}", highlight=False)
    if not args.no_report:
        from reports.cli import report_after_run

        report_after_run(outcome.run_dir, console)
    if getattr(args, "sweep", False):
        from reports.sweep import print_sweep

        print_sweep(outcome.run_dir, make_console())
    if outcome.interrupted:
        console.print(
            f"[red]interrupted[/] during {outcome.interrupted.id}; {len(outcome.results)} results kept. "
            f"To finish the run with its own options: {resume}",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} cell(s) failed:[/] " + ", ".join(r["cell_id"] for r in outcome.failed),
            highlight=False,
        )
        return EXIT_FAILED
    if not any(r["status"] == "ok" for r in outcome.results):
        console.print("[red]no cell ran:[/] nothing was measured (the reasons are below the table)", highlight=False)
        return EXIT_FAILED
    return EXIT_OK


def check_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m runner check",
        description="Validate every result.json in run folders against the result contract.",
    )
    p.add_argument("runs", nargs="+", type=Path, help="run folders (results/<run-id>)")
    args = p.parse_args(argv)
    problems = count = 0
    for run in args.runs:
        if not run.is_dir():
            print(f"error: {run}: no such run folder; pass results/<run-id>", file=sys.stderr)
            return EXIT_USAGE
    for run in args.runs:
        try:
            planned = json.loads((run / "run.json").read_text()).get("cells") or []
        except (OSError, ValueError):
            planned = []
        for cell_id in planned:
            if not (run / cell_id / RESULT_FILE).exists():
                problems += 1
                print(f"FAIL {run / cell_id}: planned but has no {RESULT_FILE} (an interrupted run? --resume {run})")
        for path, outcome in iter_results(run):
            count += 1
            if isinstance(outcome, ResultError):
                problems += 1
                print(f"FAIL {outcome}")
            else:
                print(f"ok   {path} ({outcome.status.value})")
    print(f"{count} results checked, {problems} problems")
    return EXIT_FAILED if problems or not count else EXIT_OK


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP (a closed terminal) stop a run the way Ctrl-C does: running cells are killed, finished
    results stay."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # an inherited ignore (nohup) is what the caller asked for
            signal.signal(sig, _sigterm_as_interrupt)
    if argv and argv[0] == "check":
        return check_main(argv[1:])
    if argv and argv[0] in ("report", "compare"):
        from reports.cli import compare_main, report_main

        return (report_main if argv[0] == "report" else compare_main)(argv[1:])
    if argv and argv[0] == "bench-overhead":  # measurement is tooling, outside the product (tooling/bench.py)
        print("error: bench-overhead is not a runner subcommand: run `make bench-overhead` "
              "(python -m tooling.bench)", file=sys.stderr)
        return EXIT_USAGE
    if argv and argv[0] == "sweep":
        return run_main(argv[1:], sweep=True)
    return run_main(argv)
