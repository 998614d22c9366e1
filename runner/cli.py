"""`kbm run` (`python -m runner` with no subcommand): load matrix -> expand cells -> filter -> run -> summarise.

Each step is a plain function (testable without a GPU); only `run_main` turns outcomes into exit statuses:
0 every cell ok or skipped (and at least one measured), 1 a cell failed or timed out, or no cell ran at all,
2 bad input (nothing ran: the project's own BadInput errors, never any ValueError), 130 interrupted. A bug in the
project prints its traceback and exits 1. The options are runner/options.py; `--resume` is runner/resume.py; the
other subcommands are runner/commands/, which `main` dispatches to.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from dataclasses import dataclass, replace

from rich.console import Console
from rich.markup import escape

from common.errors import BadInput
from common.results import Status
from runner import paths
from runner.cells import Cell, Selection, SelectionError, plan
from runner.dryrun import dry_run
from runner.executors import Executor, ExecutorOptions, choose
from runner.matrix import Matrix, load_matrix
from runner.options import SWEEP_DATASET, SWEEP_REPEATS, build_parser, check_numbers, parse_paths, selection_of
from runner.orchestrate import RunOptions, RunOutcome, run_cells
from runner.progress import Display, make_console
from runner.resume import check_resumed_cells, merge_resume, recorded_selection
from runner.summary import print_summary
from runner.usermodels import add_model_files

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class Planned:
    """What a run is about to do: the matrix, the cells, the selection they came from, where they run."""

    matrix: Matrix
    cells: list[Cell]
    sel: Selection
    executor: Executor
    why: str


def parse(argv: list[str], sweep: bool, prog: str = "kbm") -> argparse.Namespace:
    """The options, every path among them absolute (what was typed kept in `typed_paths`, for run.json); `sweep`
    changes the defaults to every applicable variant, 3 repeats (the MNIST tests are chosen once the matrix is
    loaded, in plan_run)."""
    args = build_parser("kbm sweep" if sweep else prog, sweep=sweep).parse_args(argv)
    args.typed_paths = parse_paths(args)
    args.sweep = sweep
    if sweep:
        args.variant = args.variant or ["all"]
        args.repeats = args.repeats or SWEEP_REPEATS
    return args


def existing_interpreter(args: argparse.Namespace, matrix: Matrix, sel: Selection) -> tuple[Executor, str, Selection]:
    """--python: the cells run in that interpreter; it must import Keras and every selected backend first. The
    environments the selection touches are probed (each default variant fits its own pins), then the variants are
    checked against what that interpreter really imports (XLA aborts on flags its jaxlib lacks) and on the device
    class it has (GPUs its frameworks see)."""
    if args.executor not in ("auto", "existing"):
        raise SelectionError(f"--python runs the cells in that interpreter; it cannot be combined with --executor "
                             f"{args.executor} (leave out one of them)")
    if args.gpus:
        raise SelectionError("--gpus asks a container engine for devices; with --python the interpreter's own "
                             "frameworks find the GPU (leave out --gpus)")
    touched = plan(matrix, replace(sel, variants=()))[0]
    environments = list(dict.fromkeys(c.environment for c in touched))
    executor, why = choose("existing", ExecutorOptions(python=args.python, matrix=matrix))
    executor.preflight(environments)
    # the device class is the interpreter's: GPUs its frameworks see make the cells GPU cells (default variants)
    return executor, why, replace(sel, found=executor.found_versions(environments),
                                  gpus=executor.gpu_count(environments) or None)


def plan_run(args: argparse.Namespace, console: Console) -> Planned:
    """Options to cells and an executor, or BadInput saying what to fix (nothing has run yet)."""
    check_numbers(args)
    recorded, planned = (None, None) if args.resume is None else recorded_selection(args.resume)
    if recorded is not None:
        merge_resume(args, recorded)
    args.matrix = args.matrix or paths.DEFAULT_MATRIX
    args.executor = args.executor or "auto"
    args.parallel = args.parallel or 1
    warnings: list[str] = []
    matrix = load_matrix(args.matrix)
    if getattr(args, "sweep", False) and not args.model and not args.model_file:
        args.model = matrix.models_of(SWEEP_DATASET)  # the matrix's MNIST tests
    matrix = add_model_files(matrix, args, warnings)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    sel = Selection(tuple(args.only), tuple(args.model), tuple(args.env), args.profile, args.repeats, args.seed,
                    tuple(args.variant), args.gpus, inference=not args.no_inference)
    executor = why = None
    if args.python:
        executor, why, sel = existing_interpreter(args, matrix, sel)
    cells, notes = plan(matrix, sel)
    if args.budget_s is not None:
        from runner.estimate import fit_budget

        cells, more, unknown = fit_budget(matrix, cells, sel, args.budget_s)
        notes += more
        if not cells:
            raise SelectionError(f"--budget-s {args.budget_s:g}: no variant's cells fit by the recorded per-step "
                                 "figures (matrix.yaml step_seconds); give more seconds or select fewer cells")
        if unknown:
            console.print(f"[yellow]note:[/] {len(unknown)} cells have no recorded per-step figure (matrix.yaml "
                          f"step_seconds), planned without counting against --budget-s: {', '.join(unknown[:4])}"
                          + (", ..." if len(unknown) > 4 else ""), highlight=False)
    for note in notes:
        console.print(f"[yellow]not planned:[/] {note}", highlight=False)
    if planned is not None:
        cells = check_resumed_cells(cells, planned, recorded, matrix)  # the run's cells only
    if executor is None:
        executor, why = choose(args.executor, ExecutorOptions(gpus=args.gpus, dry_run=args.dry_run))
    return Planned(matrix, cells, sel, executor, why)


def run_main(argv: list[str], sweep: bool = False, prog: str = "kbm") -> int:
    args = parse(argv, sweep, prog)
    console = make_console(stderr=True)
    try:
        planned = plan_run(args, console)
    except BadInput as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    data = args.data or planned.matrix.defaults.data
    if args.dry_run:
        dry_run(make_console(), planned.matrix, planned.cells, planned.executor, data, args.timeout, planned.sel)
        from runner.estimate import describe, planned_time

        make_console().print(describe(planned_time(planned.matrix, planned.cells, planned.sel)), highlight=False)
        folder = planned.executor.write_manifests(planned.matrix, planned.cells, data, args.timeout, args.results)
        if folder is not None:  # a scheduler's jobs, as files
            console.print(f"manifests: {folder}", highlight=False)
        return EXIT_OK
    console.print(f"executor {planned.why}", style="cyan", highlight=False)
    options = RunOptions(args.results.resolve(), data, args.timeout, ["python", "-m", "runner", *argv], planned.why,
                         args.resume, args.parallel, selection_of(args, planned.matrix), planned.sel,
                         typed_paths=args.typed_paths)
    try:
        with Display(console) as display:
            outcome = run_cells(planned.matrix, planned.cells, planned.executor, options, display)
    except BadInput as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[red]interrupted[/] while preparing environments; nothing was run, no half-built "
                      "environment is kept", highlight=False)
        return EXIT_INTERRUPTED
    resume = f"{shlex.quote(sys.executable)} -m runner --resume {shlex.quote(str(outcome.run_dir))}"
    try:
        return close_run(args, console, planned.matrix, outcome, len(planned.cells), resume)
    except KeyboardInterrupt:  # Ctrl-C during the summary or the report: the results and run.json are complete
        console.print(f"[red]interrupted[/]; results kept in {outcome.run_dir}. To finish the run: {resume}",
                      highlight=False)
        return EXIT_INTERRUPTED


def warn_busy_and_unserved(console: Console, matrix: Matrix, outcome: RunOutcome) -> None:
    """Name the backends that ran busy (only those), and what this machine could not serve, with the fix."""
    busy = [r for r in outcome.results if r.busy]
    if busy:
        names = ", ".join(dict.fromkeys(matrix.backends[r.cell.backend].title for r in busy))
        console.print(
            f"[yellow]warning:[/] the machine was busy with other work during {len(busy)} cell(s) ({names}); "
            "their times are suspect, and backends suffer unequally. Rerun on a quiet machine.",
            highlight=False,
        )
    unserved = {r.cell.environment: r.error for r in outcome.results
                if r.stage == "environment" and r.status is Status.skipped}
    for name, why in unserved.items():  # never a silent omission
        console.print(f"[yellow]not served here:[/] {name}: {why}", highlight=False)


def close_run(args: argparse.Namespace, console: Console, matrix: Matrix, outcome: RunOutcome, planned: int,
              resume: str) -> int:
    """The summary (each skip's fix stated once below it), the report, the history, and the exit status."""
    print_summary(make_console(), outcome.results,
                  f"run {outcome.run_dir.name} ({len(outcome.results)} of {planned} cells)")
    warn_busy_and_unserved(console, matrix, outcome)
    console.print(f"results: {outcome.run_dir}", highlight=False)
    if not args.no_report:
        from reports.cli import report_after_run

        report_after_run(outcome.run_dir, console)
    if not args.no_history:  # every finished run joins the history; a failure there is a warning (history/hook.py)
        from history.hook import add_after_run

        add_after_run(outcome.run_dir, args.history, args.results, console)
    if getattr(args, "sweep", False):
        from reports.sweep import print_sweep

        print_sweep(outcome.run_dir, make_console())
    if outcome.interrupted:
        console.print(f"[red]interrupted[/] during {outcome.interrupted.id}; {len(outcome.results)} results kept. "
                      f"To finish the run with its own options: {resume}", highlight=False)
        return EXIT_INTERRUPTED
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} cell(s) failed:[/] " + ", ".join(r.cell_id for r in outcome.failed),
                      highlight=False)
        return EXIT_FAILED
    if not any(r.status is Status.ok for r in outcome.results):
        console.print("[red]no cell ran:[/] nothing was measured (the reasons are below the table)", highlight=False)
        return EXIT_FAILED
    return EXIT_OK


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP (a closed terminal) stop a run the way Ctrl-C does: running cells are killed, finished
    results stay."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # an inherited ignore (nohup) is what the caller asked for
            signal.signal(sig, _sigterm_as_interrupt)
    from runner.commands import dispatch

    return dispatch(argv)
