"""`kbm check RUN...`: validate every result of run folders against the contract (common/results.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.results import RESULT_FILE, ResultError, Status, iter_results
from runner.commands import make_parser

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = make_parser("check", "Validate every result.json in run folders against the result contract (schema 1 "
                    "files are migrated as they are read); a planned cell without a result, and an interrupted "
                    "one, count as problems.", "exit status: 0 all valid, 1 a problem, 2 no such folder.")
    p.add_argument("runs", nargs="+", type=Path, help="run folders (results/<run-id>)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    for run in args.runs:
        if not run.is_dir():
            print(f"error: {run}: no such run folder; pass results/<run-id>", file=sys.stderr)
            return EXIT_USAGE
    problems = count = 0
    for run in args.runs:
        problems += _planned_without_result(run)
        for path, outcome in iter_results(run):
            count += 1
            if isinstance(outcome, ResultError):
                problems += 1
                print(f"FAIL {outcome}")
            elif outcome.status is Status.interrupted:
                problems += 1
                print(f"FAIL {path}: interrupted ({outcome.error}); --resume {run} runs it again")
            else:
                print(f"ok   {path} ({outcome.status.value})")
    print(f"{count} results checked, {problems} problems")
    return EXIT_FAILED if problems or not count else EXIT_OK


def _planned_without_result(run: Path) -> int:
    try:
        planned = json.loads((run / "run.json").read_text()).get("cells") or []
    except (OSError, ValueError):
        planned = []
    missing = [c for c in planned if not (run / c / RESULT_FILE).exists()]
    for cell_id in missing:
        print(f"FAIL {run / cell_id}: planned but has no {RESULT_FILE} (an interrupted run? --resume {run})")
    return len(missing)
