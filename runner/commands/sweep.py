"""`kbm sweep`: the run with other defaults (every variant that applies, the MNIST tests, 3 repeats)."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from runner.options import build_parser

    return build_parser("kbm sweep", sweep=True)


def main(argv: list[str]) -> int:
    from runner.cli import run_main

    return run_main(argv, sweep=True)
