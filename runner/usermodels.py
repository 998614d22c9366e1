"""User model files (--model-file): placeholder until the user-model contract lands in this module."""

from __future__ import annotations

import argparse

from runner.cells import SelectionError
from runner.matrix import Matrix


def add_model_files(matrix: Matrix, args: argparse.Namespace) -> Matrix:
    if getattr(args, "model_file", None):
        raise SelectionError("--model-file is not available yet")
    return matrix
