"""`kbm gpu-bundle` (also `make gpu-bundle BUNDLE=DIR`): the code is runner/bundle.py."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from runner.bundle import parser as bundle_parser

    return bundle_parser()


def main(argv: list[str]) -> int:
    from runner.bundle import main as bundle_main

    return bundle_main(argv)
