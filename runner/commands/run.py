"""`kbm run` (also `kbm` with no subcommand): plan the cells, run them, summarise; the code is runner/cli.py."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from runner.options import build_parser

    return build_parser("kbm run")


def main(argv: list[str], prog: str = "kbm run") -> int:
    from runner.cli import run_main

    return run_main(argv, prog=prog)
