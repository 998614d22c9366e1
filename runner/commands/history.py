"""`kbm history ...`: history/cli.py holds the code (history/ reads results through reports/, imported on demand)."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from history.cli import parser as history_parser

    return history_parser()


def main(argv: list[str]) -> int:
    from history.cli import main as history_main

    return history_main(argv)
