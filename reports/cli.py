"""The `report` and `compare` subcommands of `python -m runner`, and the report a matrix run ends with.

Kept out of runner/ so that the runner starts without pandas and matplotlib; runner.cli imports this lazily.
Exit statuses follow the runner's: 0 fine, 1 a regression (compare), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from common.errors import BadInput

EXIT_OK, EXIT_BAD_INPUT = 0, 2  # as reports.compare; pandas and matplotlib are imported only when needed

DEFAULT_RUN = Path("results") / "latest"


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kbm report",
        description="Turn run folders into results/<run-id>/report/: index.html (opens offline), summary.md, plots "
        "(PNG and SVG), every epoch as CSV and Parquet, copies of the raw results.",
        epilog="exit status: 0 written, 2 bad input (not a run folder).",
    )
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN",
                   help=f"run folders (default: {DEFAULT_RUN}); each gets its own report unless --name. A results "
                   "folder (one holding run folders) stands for its latest run, or for every run with --all")
    p.add_argument("--all", action="store_true", help="a results folder stands for every run folder inside it")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder that receives the report folders, one per run (or the one named by --name); "
                   "default: each run's own folder (results/<run-id>/report/)")
    p.add_argument("--name", help="merge all RUNs into one report of this name (e.g. to put backends run "
                   "separately side by side), written to results/reports/NAME/ beside the first run")
    return p


def report_main(argv: list[str]) -> int:
    args = report_parser().parse_args(argv)
    from reports.build import NothingToReport, merged_report_dir, run_report_dir, write_report
    from reports.load import run_id_of

    asked = args.runs or [DEFAULT_RUN]
    missing = [r for r in asked if not r.is_dir()]
    if missing:
        hint = " (run the matrix first, or name a run folder)" if asked == [DEFAULT_RUN] else ""
        print(f"error: not a run folder: {', '.join(map(str, missing))}{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        runs = [run for path in asked for run in runs_in(path, args.all)]
        groups = [(args.name, runs)] if args.name else [(run_id_of(r), [r]) for r in runs]
        for name, group in groups:
            if args.out:
                out = args.out / name
            else:
                out = merged_report_dir(group[0], name) if args.name else run_report_dir(group[0])
            index = write_report(group, out, name)
            print(f"report: {index}  (Markdown: {index.with_name('summary.md')})")
    except (NotARun, NothingToReport) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


class NotARun(BadInput):
    """A folder that is neither a run folder nor a results folder holding one."""


def runs_in(path: Path, every: bool) -> list[Path]:
    """A run folder is itself; a results folder (`./kbm report results`, as a user naturally types it) stands for
    its latest run (the `latest` link, else the newest run id), or all of them with `every`. Anything else is an
    error naming what it holds, never an empty report."""
    from reports.load import is_run_folder, run_folders

    if is_run_folder(path):
        return [path]
    runs = run_folders(path)
    if not runs:
        inside = sorted(p.name for p in path.iterdir() if p.is_dir())[:8]
        held = f"; it holds {', '.join(inside)}" if inside else "; it is empty"
        raise NotARun(f"{path}: not a run folder (no run.json) and no run folder inside it{held}")
    if every:
        return runs
    latest = path / "latest"
    chosen = latest.resolve() if latest.is_symlink() and is_run_folder(latest) else runs[-1]
    others = f" (--all for all {len(runs)} runs: {', '.join(r.name for r in runs)})" if len(runs) > 1 else ""
    print(f"{path}: a results folder; reporting its latest run, {chosen.name}{others}", file=sys.stderr)
    return [chosen]


def report_after_run(run_dir: Path, console: Console) -> Path | None:
    """The report a matrix run ends with. A report that cannot be written is a warning: the results stand."""
    try:
        from reports.build import run_report_dir, write_report

        index = write_report([run_dir], run_report_dir(run_dir), run_dir.name)
    except Exception as exc:  # noqa: BLE001 - a report bug must not turn a finished run into a failure
        console.print(f"[yellow]warning:[/] the report could not be written: {escape(repr(exc))}", highlight=False)
        return None
    console.print(f"report: {index}", highlight=False)
    return index


def compare_table(rows: list[list[str]], title: str, width: int) -> Table:
    """The comparison at any terminal width: the cell, B/A, the accuracy delta and the verdict always whole.
    Parts of the cell's name shared by every row (profile, data source; the environment where each backend has
    one) are said once in the title."""
    from common.termtable import Column, fit

    parts = [row[0].split(" ") for row in rows]
    if parts:
        n = len(parts[0])
        common = [i for i in range(n) if len({p[i] for p in parts}) == 1 and i > 1]
        if 2 not in common and len({(p[1], p[2]) for p in parts}) == len({p[1] for p in parts}):
            common.append(2)  # one environment per backend: the backend says it
        said = [parts[0][i] for i in sorted(common) if len({p[i] for p in parts}) == 1]
        title += f" ({', '.join(said)})" if said else ""
        rows = [[" ".join(x for i, x in enumerate(p) if i not in common), *row[1:]] for p, row in zip(parts, rows,
                                                                                                       strict=True)]
    columns = [Column("cell"), Column("A s/epoch", "right", 2), Column("B s/epoch", "right", 1),
               Column("B/A", "right"), Column("noise", "right", 2), Column("A acc", "right", 3),
               Column("B acc", "right", 3), Column("acc delta", "right"), Column("verdict"),
               Column("notes", priority=4, flex=True)]
    styles = ["red" if row[8].startswith("REGRESSION") else None for row in rows]
    return fit(columns, rows, width, title, styles)


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kbm compare",
        description="Per cell, B's steady s/epoch over A's, the test accuracy delta, and the batch-1 latency, "
        "throughput and peak memory ratios, each judged against the spread between runs (repeats), not between "
        "epochs. Only cells of the same work are compared.",
        epilog="exit status: 0 no conclusive regression, 1 a conclusive regression, 2 bad input (different hardware "
        "or work without --allow-mixed / --allow-different-work).",
    )
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="the baseline run folder")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the run to judge")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="change that counts at all, as a fraction (default 0.05 = 5%%); a verdict also needs it to "
                   "lie outside the between-run spread")
    p.add_argument("--acc-threshold", type=float, default=0.01,
                   help="accuracy loss tolerated on top of the spread over repeats (default 0.01)")
    p.add_argument("--between-run-spread", type=float, default=None, metavar="FRACTION",
                   help="run-to-run drift assumed when a side has one repeat (default 0.30: unchanged runs drifted "
                   "up to 27%% on a shared 2-core VM); with 2+ repeats on both sides the measured interval is used")
    p.add_argument("--allow-mixed", action="store_true",
                   help="compare runs made on different hardware anyway (labelled as such)")
    p.add_argument("--allow-different-work", action="store_true",
                   help="compare cells whose work differs (samples per epoch, batch, epochs, data) anyway "
                   "(labelled); refused otherwise, exit 2")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as Markdown (PR comments)")
    return p


def compare_main(argv: list[str]) -> int:
    args = compare_parser().parse_args(argv)
    from reports.compare import (
        DEFAULT_BETWEEN_RUN_SPREAD,
        CompareError,
        compare_runs,
        render_markdown,
        summary_line,
        table_rows,
    )
    from reports.load import run_id_of

    spread = DEFAULT_BETWEEN_RUN_SPREAD if args.between_run_spread is None else args.between_run_spread
    try:
        comparison = compare_runs([args.run_a], [args.run_b], args.threshold, args.acc_threshold, args.allow_mixed,
                                  spread, args.allow_different_work)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    for w in comparison.warnings:
        console.print(w, style="red bold", highlight=False, markup=False)
    for problem in comparison.problems:
        console.print(f"[yellow]skipped unreadable result:[/] {escape(str(problem))}", highlight=False)
    title = f"{run_id_of(args.run_b)} (B) vs {run_id_of(args.run_a)} (A)"
    console.print(compare_table(table_rows(comparison), title, min(console.width, 160)))
    for what, cells in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        if cells:
            console.print(f"{what}: {', '.join(cells)}", highlight=False, markup=False)
    console.print(summary_line(comparison), highlight=False, markup=False)
    if args.markdown:
        args.markdown.write_text(render_markdown(comparison, run_id_of(args.run_a), run_id_of(args.run_b),
                                                 args.threshold))
    return comparison.exit_status
