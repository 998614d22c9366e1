"""The history subcommands, each `(args, console) -> exit status`; bad input raises HistoryError (exit 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from history import series as series_mod
from history.errors import HistoryError
from history.judge import DEFAULT_WINDOW
from history.source import read_runs, run_folders
from history.store import Store, default_target
from history.terminal import regression_lines, series_table
from history.view import Row, Settings, analyse_all

EXIT_OK, EXIT_REGRESSION = 0, 1
DEFAULT_RESULTS = Path("results")
SITE_DIR = "history-site"


def _target(args: argparse.Namespace, results: Path = DEFAULT_RESULTS) -> str:
    return args.history or default_target(results)


def _settings(args: argparse.Namespace) -> Settings:
    window = DEFAULT_WINDOW if args.window is None else args.window
    if window < 1:
        raise HistoryError(f"--window {window}: must be 1 or more runs")
    for name in ("threshold", "acc_threshold", "z"):
        if (value := getattr(args, name)) is not None and value < 0:
            raise HistoryError(f"--{name.replace('_', '-')} {value}: must not be negative")
    return Settings(window, args.z, args.threshold, args.acc_threshold)


def load_rows(args: argparse.Namespace) -> tuple[list[Row], str]:
    """The analysed series the arguments select; an empty history or no match is bad input."""
    settings = _settings(args)
    with Store(_target(args), create=False) as store:
        where, cells = store.where, store.cells_frame()
    found = series_mod.build(cells)
    if not found:
        raise HistoryError(f"the history at {where} holds no ok result yet: add runs with `./kbm history add RUN`")
    chosen = series_mod.select(found, args.series)
    if not chosen:
        names = sorted({s.key.name for s in found})
        raise HistoryError(f"no series matches {' and '.join(map(repr, args.series))}; known series:\n  "
                           + "\n  ".join(names[:40]))
    return analyse_all(chosen, settings), where


def show(args: argparse.Namespace, console: Console) -> int:
    unknown = [m for m in args.metric if m != "all" and m not in series_mod.BY_COLUMN]
    if unknown:
        raise HistoryError(f"unknown figure {', '.join(unknown)}; known: all, {', '.join(series_mod.BY_COLUMN)}")
    rows, where = load_rows(args)
    wanted = args.metric or ["steady_epoch_s"]
    listed = rows if "all" in wanted else [r for r in rows if r.series.metric.column in wanted]
    for line in regression_lines(rows):  # every figure's regressions first, whatever the table lists
        console.print(line, style="red bold", highlight=False, markup=False, soft_wrap=True)
    console.print(series_table(listed, f"history: {where} ({len(listed)} series; --metric all for every figure)"))
    return EXIT_OK


def add(args: argparse.Namespace, console: Console) -> int:
    missing = [str(r) for r in args.runs if not (r / "run.json").is_file()]
    if missing:
        raise HistoryError(f"not a run folder (no run.json): {', '.join(missing)}; pass results/<run-id>")
    batch = read_runs(args.runs)
    for problem in batch.problems:
        console.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    if not batch.runs:
        raise HistoryError("no readable result in " + ", ".join(map(str, args.runs)))
    with Store(_target(args)) as store:
        added = store.add(batch)
        where = store.where
    what = (f"{added.runs} new run(s), {added.new} new result(s), {added.updated} updated" if added.changed
            else "already there, nothing changed")
    console.print(f"history {where}: {len(batch.runs)} run(s) read, {what}", highlight=False)
    return EXIT_OK


def rebuild(args: argparse.Namespace, console: Console) -> int:
    if not args.results.is_dir():
        raise HistoryError(f"{args.results}: not a folder; pass the results folder (results)")
    folders = run_folders(args.results)
    if not folders:
        raise HistoryError(f"{args.results}: holds no run folder (results/<run-id>/run.json)")
    batch = read_runs(folders)
    for problem in batch.problems:
        console.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    with Store(_target(args, args.results)) as store:
        store.clear()
        added = store.add(batch)
        where = store.where
    console.print(f"history {where} rebuilt from {args.results}: {added.runs} run(s), {added.new} result(s)",
                  highlight=False)
    return EXIT_OK


def report(args: argparse.Namespace, console: Console) -> int:
    from history.site.build import write_site

    rows, where = load_rows(args)
    target = _target(args)
    out = args.out or (Path(target).parent / SITE_DIR if "://" not in target else DEFAULT_RESULTS / SITE_DIR)
    index = write_site(rows, out, where)
    console.print(f"history site: {index}", highlight=False)
    return EXIT_OK


def check(args: argparse.Namespace, console: Console) -> int:
    rows, where = load_rows(args)
    judged = [r for r in rows if r.series.metric.judged and not r.series.ended]
    lines = regression_lines(judged)
    for line in lines:
        console.print(line, style="red bold", highlight=False, markup=False, soft_wrap=True)
    console.print(f"history {where}: {len(judged)} series judged, {len(lines)} new conclusive regression(s)",
                  highlight=False)
    return EXIT_REGRESSION if lines else EXIT_OK
