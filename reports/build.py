"""Write a report: result folders in, a report folder out (index.html, summary.md, plots, tidy data, raw copies).

The report is rebuilt from scratch into a temporary folder beside the target and swapped in, so a reader never
opens a half-written report and a rebuild leaves no stale plots behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from common.errors import BadInput
from common.results import CellResult
from reports import html, keras_io, markdown
from reports.article import load_article
from reports.content import Report, assemble
from reports.load import load_runs, run_id_of
from reports.provenance import copy_raw

SUMMARY_COLUMNS_DROPPED = ["result_keys", "anchor"]


REPORT_DIR = "report"  # results/<run-id>/report/: a run's report lives beside its results
MERGED_DIR = "reports"  # results/reports/<name>/: a report of several runs (`--name`) belongs to none of them


def run_report_dir(run_dir: Path) -> Path:
    """Where a run's own report goes: inside the run folder (results/latest/report/index.html follows)."""
    return Path(run_dir).resolve() / REPORT_DIR


def merged_report_dir(run_dir: Path, name: str) -> Path:
    """Where a merged report named `name` goes: beside the runs, in the results folder of the first one."""
    return Path(run_dir).resolve().parent / MERGED_DIR / name


def write_data(report: Report, cells: pd.DataFrame, out: Path) -> None:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    report.epochs.to_csv(data / "epochs.csv", index=False)
    try:
        report.epochs.to_parquet(data / "epochs.parquet", index=False)
    except ImportError:  # no pyarrow (a GPU machine's own Python, a lean bundle): epochs.csv holds the same rows
        pass
    cells.to_csv(data / "cells.csv", index=False)
    summary = report.table.drop(columns=[c for c in SUMMARY_COLUMNS_DROPPED if c in report.table])
    summary.to_csv(data / "summary.csv", index=False)


class NothingToReport(BadInput):
    """Run folders without a single readable result: a report of nothing would look like a report."""


def suite_lines(paths: Iterable[Path]) -> list[str]:
    """The keras.io suite's section (reports/keras_io.py) as markdown lines; empty without suite cells."""
    results = []
    for path in paths:
        try:
            results.append(CellResult.model_validate(json.loads(Path(path).read_text())))
        except (ValueError, OSError):
            continue  # the loader already listed it among the problems
    return keras_io.suite_lines(results)


def write_report(run_dirs: list[Path], out_dir: Path, name: str | None = None) -> Path:
    """Build the report of `run_dirs` into `out_dir`; returns the path of its index.html. Raises NothingToReport
    (and writes nothing) where the folders hold no readable result."""
    run_dirs = [Path(p) for p in run_dirs]
    name = name or (out_dir.name if out_dir.name != REPORT_DIR else run_id_of(run_dirs[0]))
    loaded = load_runs(run_dirs)
    if loaded.cells.empty:
        why = f" ({'; '.join(loaded.problems[:3])})" if loaded.problems else ""
        raise NothingToReport(f"no readable result in {', '.join(map(str, run_dirs))}{why}: nothing to report")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        report = assemble(name, loaded, load_article(), tmp)
        write_data(report, loaded.cells, tmp)
        copy_raw(loaded.raw, tmp)
        suite = suite_lines(loaded.raw.values())  # after the rest: summary.md's end, index.html's footer
        (tmp / "summary.md").write_text(markdown.render(report) + ("\n" + "\n".join(suite).rstrip() + "\n"
                                                                   if suite else ""))
        (tmp / "index.html").write_text(html.render(report).replace("<footer>", keras_io.lines_html(suite)
                                                                     + "<footer>", 1))
        old = out_dir.with_name(f".{out_dir.name}.old")
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "index.html"
