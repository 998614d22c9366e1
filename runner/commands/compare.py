"""`kbm compare`: reports/cli.py holds the code, so that the runner starts without pandas and matplotlib."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from reports.cli import compare_parser

    return compare_parser()


def main(argv: list[str]) -> int:
    from reports.cli import compare_main

    return compare_main(argv)
