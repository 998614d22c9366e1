"""`kbm history [show|add|rebuild|report|check]`: the history of every run, by series.

Exit statuses as the runner's: 0 fine, 1 `check` found a new conclusive regression, 2 bad input (no history, an
unknown series, a folder that is not a run, an unreachable database).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from history.errors import HistoryError

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2
SUBCOMMANDS = ("show", "add", "rebuild", "report", "check")
# the options that name files or folders, made absolute as they are read (a postgresql:// URL stays as typed), as
# the runner's are (common/userpaths.py; history/ reaches outside itself only through history/source.py)
PATHS = ("history", "runs", "results", "out")


def _absolute(value: str | Path) -> str | Path:
    """A path absolute against the current folder (`~` expanded, symlinks kept as named); a URL as typed."""
    if isinstance(value, str) and "://" in value:
        return value
    path = Path(os.path.expanduser(value)).absolute()
    return path if isinstance(value, Path) else str(path)


def make_absolute(args: argparse.Namespace) -> None:
    """Each path option absolute against the folder the command runs in, once, before anything reads it."""
    for dest in PATHS:
        value = getattr(args, dest, None)
        if isinstance(value, list):
            setattr(args, dest, [_absolute(v) for v in value])
        elif value is not None:
            setattr(args, dest, _absolute(value))

DESCRIPTION = """\
The history of every run: each series (one cell on one hardware fingerprint, one figure) with its latest value,
trend and detected steps, from a SQLite file (default results/history.sqlite; KBM_HISTORY or --history name
another file or a postgresql:// URL shared by a fleet). A run adds itself when it ends (--no-history skips it).

subcommands:
  history [show]            per series: latest value, trend, detected steps (when, how large, which commits)
  history add RUN...        add run folders (idempotent: adding a run twice changes nothing)
  history rebuild RESULTS   empty the history and add every run folder in RESULTS (the files are the truth)
  history report [--out D]  a static site: index with sparklines and regressions first, a page per test
  history check             exit 1 on a new conclusive step or drift the wrong way (slower, less accurate,
                            more memory, lower throughput), 0 otherwise, 2 on bad input
"""

EPILOG = "exit status: 0 fine, 1 `check` found a new conclusive regression, 2 bad input."


def _history_arg(p: argparse.ArgumentParser, default_text: str = "results/history.sqlite") -> None:
    p.add_argument("--history", metavar="PATH|URL",
                   help=f"the history: a SQLite file or a postgresql://user@host:port/db URL (default: $KBM_HISTORY, "
                   f"else {default_text})")


def _judge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--series", action="append", default=[], metavar="TEXT",
                   help="only series whose name holds TEXT (model, backend, environment, profile, variant, data "
                   "source, hardware or figure; repeatable: all must match)")
    p.add_argument("--window", type=int, default=None, metavar="N",
                   help="a change is new while it landed within the last N runs of its series (default 10)")
    p.add_argument("--threshold", type=float, default=None,
                   help="smallest relative step that counts (default 0.05 = 5%%); it must also pass the noise test")
    p.add_argument("--acc-threshold", type=float, default=None,
                   help="smallest accuracy change that counts (default 0.01)")
    p.add_argument("--z", type=float, default=None,
                   help="standard errors a step must be away from zero under the series' own noise (default 3)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kbm history", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    show = sub.add_parser("show", help="per series: latest value, trend, steps (the default)",
                          description="Per series: latest value, trend (sparkline and drift), detected steps.")
    show.add_argument("--metric", action="append", default=[], metavar="NAME",
                      help="figures to list (steady_epoch_s by default; `all`, or e.g. test_accuracy, first_epoch_s)")
    _judge_args(show)
    _history_arg(show)
    add = sub.add_parser("add", help="add run folders", description="Add run folders (results/<run-id>) to the "
                         "history. Idempotent: adding a run twice changes nothing; a resumed run's new cells are "
                         "added.")
    add.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    _history_arg(add)
    rebuild = sub.add_parser("rebuild", help="rebuild the history from a results folder",
                             description="Empty the history and add every run folder of RESULTS again.")
    rebuild.add_argument("results", type=Path, metavar="RESULTS_DIR")
    _history_arg(rebuild, "RESULTS_DIR/history.sqlite")
    report = sub.add_parser("report", help="write the static history site",
                            description="Write the history site (opens offline): index.html with every series' "
                            "sparkline and the regressions first, and one page per test with a trend plot per backend.")
    report.add_argument("--out", type=Path, metavar="DIR", help="where (default: history-site/ beside a SQLite "
                        "history, else results/history-site/)")
    _judge_args(report)
    _history_arg(report)
    check = sub.add_parser("check", help="exit 1 on a new conclusive regression",
                           description="Exit 1 on a new conclusive step or drift the wrong way in any judged series "
                           "(steady and article-style s/epoch, test accuracy on real data, inference latency and "
                           "throughput, peak memory), printing each; 0 otherwise; 2 on bad input.")
    _judge_args(check)
    _history_arg(check)
    return p


def main(argv: list[str]) -> int:
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["show", *argv]
    args = parser().parse_args(argv)
    make_absolute(args)
    console = Console(width=200) if not sys.stdout.isatty() else Console()
    from history import commands

    try:
        return getattr(commands, args.command)(args, console)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
