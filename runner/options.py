"""The run's command line: every option once, as data (flags and argparse settings), with the help a user reads.

`build_parser` turns OPTIONS into the parser of `kbm` and of `kbm sweep`; PATHS are the options that name files,
made absolute as they are parsed (common/userpaths.py); `check_numbers` refuses nonsense numbers before anything is
planned; `selection_of` is what run.json records (defaults resolved, so a later default change cannot alter what a
run meant).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common.userpaths import make_absolute
from runner.cells import SelectionError
from runner.executors import EXECUTOR_CHOICES

DESCRIPTION = """\
Train the five classic Keras examples (or your own Keras 3 model, --model-file) on every backend of the matrix,
each model x backend cell in its own process inside the environment that hosts its backend, and write one JSON
result per cell: per-epoch training times, accuracy, inference latency and throughput, peak memory, provenance.
"""

EPILOG = """\
examples:
  kbm                                           the default profile (quick) on every backend
  kbm --only tensorflow                         TensorFlow's cells, every generation (tensorflow@keras3: Keras 3's)
  kbm --profile smoke --model mlp --model cnn
  kbm --data synthetic --dry-run
  kbm --python /opt/conda/bin/python --only jax the cells in an interpreter you already have
  kbm --only jax --variant stock --variant jax-onednn --repeats 3
  kbm --model-file my_model.py --profile quick  your own Keras 3 model on every Keras 3 backend
  kbm sweep --only torch --dry-run

exit status: 0 every cell ok or skipped (at least one measured), 1 a cell failed or timed out (or none ran),
2 bad input (nothing ran), 130 interrupted.
"""

SWEEP_DATASET = "mnist"  # the sweep measures the matrix's MNIST tests unless --model says otherwise
SWEEP_REPEATS = 3

# (flags, argparse keywords): the order is the order of --help
OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--matrix",), dict(type=Path, help="the matrix file (default: ./matrix.yaml of this checkout)")),
    (("--only",), dict(action="append", default=[], metavar="BACKEND",
                       help="run only this backend's cells (repeatable): a backend (jax, tensorflow1), a framework "
                       "family (tensorflow: every generation, and its native twin) or NAME@GENERATION "
                       "(tensorflow@keras3)")),
    (("--model",), dict(action="append", default=[], help="run only this model (repeatable)")),
    (("--model-file",), dict(action="append", default=[], type=Path, metavar="PATH",
                             help="your own Keras 3 model: a Python file with build() (docs/how-to/own-model.md); "
                             "repeatable; runs on every Keras 3 backend unless --only says otherwise")),
    (("--data-file",), dict(type=Path, metavar="FILE.npz",
                            help="data for --model-file models: an .npz with x_train, y_train, x_test, y_test")),
    (("--env",), dict(action="append", default=[], metavar="ENVIRONMENT",
                      help="run only the cells of this environment (repeatable)")),
    (("--profile",), dict(help="smoke, quick, bench or article (default: the matrix's defaults.profile)")),
    (("--variant",), dict(action="append", default=[], metavar="NAME",
                          help="run each cell under this variant of matrix.yaml's `variants` (repeatable; `all`: "
                          "every variant that applies; default: each environment's default variant)")),
    (("--repeats",), dict(type=int, help="run each cell N times, each in a fresh process, interleaved (repeat 1 of "
                          "every cell, then repeat 2, ...), each repeat with its own seed derived from --seed")),
    (("--seed",), dict(type=int, help="base random seed (default: the matrix's defaults.seed); repeat 1 uses it as "
                       "is, later repeats a seed derived from it")),
    (("--results",), dict(type=Path, default=Path("results"),
                          help="folder that receives one new run folder per run (default: ./results)")),
    (("--data",), dict(choices=["real", "synthetic"],
                       help="real files (default) or synthetic arrays of the real shapes, for speed-only runs")),
    (("--timeout",), dict(type=float, metavar="SECONDS", help="per-cell time limit (default: the profile's)")),
    (("--executor",), dict(choices=EXECUTOR_CHOICES,  # the executor registry's names
                           help="where cells run: venv (cached virtualenvs), docker (a container per cell), slurm "
                           "(one sbatch job per cell), kubernetes (one Job per cell), or auto (docker where an "
                           "engine answers, else venv); `existing` is what --python uses")),
    (("--python",), dict(metavar="PATH", help="run the selected cells in this existing interpreter (with its own "
                         "Keras and frameworks, e.g. the machine's CUDA builds); builds nothing, records the "
                         "versions it imported")),
    (("--parallel",), dict(type=int, metavar="N", help="keep up to N cells in flight (default 1: one after "
                           "another, as timing wants; a scheduler's slots)")),
    (("--gpus",), dict(type=int, metavar="N", help="give each cell N GPUs (docker: a device request and the GPU "
                       "image; an error where the engine has none)")),
    (("--resume",), dict(type=Path, metavar="RUN", help="continue results/<run-id> with its own options (from its "
                         "run.json): keep cells whose ok result matches the spec, run the rest")),
    (("--no-inference",), dict(action="store_true", help="time no inference after training (the profile's "
                               "`inference` settings otherwise; training figures are the same either way)")),
    (("--budget-s",), dict(type=float, metavar="SECONDS", help="plan only the variants whose cells fit in this "
                           "many seconds by matrix.yaml's recorded per-step figures (step_seconds), each backend's "
                           "default first: a sweep inside the time a GPU machine is lent for")),
    (("--dry-run",), dict(action="store_true", help="list the cells, what would be installed and the planned time, "
                          "run nothing")),
    (("--no-report",), dict(action="store_true", help="do not write results/<run-id>/report/ at the end")),
    (("--history",), dict(metavar="PATH|URL", help="the history the finished run is added to: a SQLite file or a "
                          "postgresql:// URL (default: $KBM_HISTORY, else RESULTS/history.sqlite)")),
    (("--no-history",), dict(action="store_true", help="do not add this run to the history database")),
]


# the options that name a file or folder (dest -> how it is made absolute): relative to the folder the command runs
# in, turned absolute once by `parse_paths`, so the probe, the workers and the schedulers all see the same file
PATHS = {"matrix": "path", "model_file": "path", "data_file": "path", "results": "path", "resume": "path",
         "history": "target", "python": "interpreter"}


def parse_paths(args: argparse.Namespace) -> dict[str, Any]:
    """Every path option made absolute in place; returns what was typed, which run.json keeps beside them."""
    return make_absolute(args, PATHS)


SWEEP_DESCRIPTION = """\
The run with other defaults: every variant that applies to each selected backend (--variant all), on the MNIST
tests (every model of matrix.yaml whose dataset is mnist, unless --model or --model-file), profile quick, 3
interleaved repeats. It ends with the sweep table: per test and backend the fastest variant, the default's steady
s/epoch and its ratio to the best, and a verdict.
"""


def build_parser(prog: str = "kbm", sweep: bool = False) -> argparse.ArgumentParser:
    """The run's parser: `kbm` (with the list of subcommands), `kbm run` and `kbm sweep`, one help layout."""
    from runner.commands import make_parser, overview

    description = SWEEP_DESCRIPTION if sweep else DESCRIPTION + ("\n" + overview() if prog == "kbm" else "")
    p = make_parser(prog.removeprefix("kbm").strip(), description, EPILOG)
    for flags, kwargs in OPTIONS:
        p.add_argument(*flags, **kwargs)
    return p


def check_numbers(args: argparse.Namespace) -> None:
    if args.repeats is not None and args.repeats < 1:
        raise SelectionError("--repeats must be at least 1")
    if args.parallel is not None and args.parallel < 1:
        raise SelectionError("--parallel must be at least 1 (1 runs the cells one after another)")
    if args.timeout is not None and not args.timeout > 0:
        raise SelectionError(f"--timeout {args.timeout:g}: a time limit must be more than 0 seconds")
    if getattr(args, "budget_s", None) is not None and not args.budget_s > 0:
        raise SelectionError(f"--budget-s {args.budget_s:g}: a time budget must be more than 0 seconds")
    if args.seed is not None and args.seed < 0:
        raise SelectionError(f"--seed {args.seed}: seeds are 0 or more (numpy and the frameworks take unsigned seeds)")


def selection_of(args: argparse.Namespace, matrix: Any) -> dict[str, Any]:
    """The run's options as run.json records them, defaults resolved (a later default change cannot alter them)."""
    return {
        "only": list(args.only),
        "model": list(args.model),
        "model_file": [str(Path(p).resolve()) for p in args.model_file],
        "data_file": str(Path(args.data_file).resolve()) if args.data_file else None,
        "env": list(args.env),
        "variant": list(args.variant),
        "profile": args.profile or matrix.defaults.profile,
        "repeats": args.repeats or matrix.defaults.repeats,
        "seed": matrix.defaults.seed if args.seed is None else args.seed,
        "data": args.data or matrix.defaults.data,
        "inference": not args.no_inference,
        "matrix": str(Path(args.matrix).resolve()),
        "executor": args.executor,
        "gpus": args.gpus,
        "parallel": args.parallel,
        "timeout": args.timeout,
        "python": getattr(args, "python", None),
    }
