"""`python -m tooling.record_fixture DEST`: record the run the report tests read, with today's code.

A smoke run of real cells (TensorFlow's MLP and CNN, two repeats, each a separate process) on the tests'
format-exact MNIST stand-in; DEST receives run.json and each cell's result.json and spec.json (not the logs).
tests/data/schema2-run was recorded this way; record it again when the result contract changes (the tests
validate it against the contract, so a stale recording fails loudly rather than passing on an old shape).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runner.paths import REPO_ROOT

ARGS = ["--only", "tensorflow@keras3", "--profile", "smoke", "--repeats", "2", "--model", "mlp", "--model", "cnn",
        "--no-report", "--no-history"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.record_fixture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest", type=Path, help="the folder to (re)write, e.g. tests/data/schema2-run")
    args = p.parse_args(argv)
    from tests.fixtures import populate_keras_home

    with tempfile.TemporaryDirectory() as tmp:
        home = populate_keras_home(Path(tmp) / "keras")
        env = {**os.environ, "KERAS_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "runner", "--results", f"{tmp}/results", *ARGS], cwd=REPO_ROOT,
                       env=env, check=True)
        run = (Path(tmp) / "results" / "latest").resolve()
        shutil.rmtree(args.dest, ignore_errors=True)
        args.dest.mkdir(parents=True)
        shutil.copy(run / "run.json", args.dest / "run.json")
        for cell in sorted(p for p in run.iterdir() if (p / "result.json").exists()):
            (args.dest / cell.name).mkdir()
            for name in ("result.json", "spec.json"):
                shutil.copy(cell / name, args.dest / cell.name / name)
    print(f"recorded {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
