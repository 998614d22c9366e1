"""`kbm gpu-check` (also `make gpu-check`): the code is runner/gpu_check.py."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    from runner.gpu_check import parser as gpu_parser

    return gpu_parser()


def main(argv: list[str]) -> int:
    from runner.gpu_check import main as gpu_main

    return gpu_main(argv)
