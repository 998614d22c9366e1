"""`make gpu-check`: the run on a GPU machine, one command, no internet needed.

It runs the `gpu` profile (about 6 minutes on one H100/H200; `--profile article` for the 2017 epochs) of the MNIST
MLP, the MNIST CNN and the hierarchical RNN on every Keras 3 backend the machine's own interpreter has, each beside
its native twin (`--python`: its CUDA builds of JAX, PyTorch or TensorFlow serve; what the interpreter lacks comes
from a bundle, `make gpu-check BUNDLE=DIR`, runner/bundle_run.py, or a carried Keras wheel), then checks that every
cell really trained on the GPU (`host.gpu.used`): a cell that ran on the CPU is a failure, not a result. It writes
`gpu-check.md` into the run folder: each cell's steady s/epoch, achieved TFLOP/s and share of the GPU's peak for
the arithmetic it ran, beside the article's 2017 K80 figures for the same model. `--allow-cpu` (with `--profile
smoke`) lets it run end to end on a CPU machine, so the first GPU run needs no fixes.

Exit status: 0 every cell ok on a GPU, 1 a cell failed or ran on the CPU, 2 bad input (no interpreter, no Keras,
no Keras 3 backend present), 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from common.errors import BadInput
from common.results import CellResult, Status, iter_results
from common.userpaths import make_absolute
from runner import paths
from runner.matrix import MatrixError, load_matrix

DATASET = "mnist"  # the MNIST tests of matrix.yaml (models with this dataset), unless --model names fewer
WHEEL_FOLDER = paths.REPO_ROOT / ".whl"  # where a carried Keras wheel is looked for when KERAS_WHEEL is not set
FIND = r"""
import importlib.util, json, sys
print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None]))
"""


class CheckError(BadInput):
    """Bad input: the message says what is missing and how to fix it (exit status 2)."""


def importable(python: str, modules: list[str], pythonpath: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    try:
        out = subprocess.run([python, "-c", FIND, *modules], capture_output=True, text=True, env=env, timeout=120)
    except OSError as exc:
        raise CheckError(f"--python {python}: cannot run it ({exc.strerror})") from None
    if out.returncode != 0:
        raise CheckError(f"--python {python}: not a working Python: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def wheels_from(where: str | None) -> list[Path]:
    """The Keras wheel(s) to install: KERAS_WHEEL (a .whl or a folder of them), else ./.whl/ when present."""
    path = Path(where) if where else WHEEL_FOLDER
    if path.is_file() and path.suffix == ".whl":
        return [path]
    if path.is_dir():
        return sorted(path.glob("*.whl"))
    if where:
        raise CheckError(f"KERAS_WHEEL={where}: no such .whl file or folder of wheels")
    return []


def install_keras(python: str, wheels: list[Path], say: Any) -> str:
    """pip install --no-index --no-deps --target a cached folder (keyed by the wheels and the interpreter)."""
    key = hashlib.sha256(json.dumps([python, *(f"{w.name}:{w.stat().st_size}" for w in wheels)]).encode())
    target = paths.cache_dir() / "gpu-check" / f"site-{key.hexdigest()[:12]}"
    if (target / ".complete").exists():
        return str(target)
    say(f"installing {', '.join(w.name for w in wheels)} into {target} (no index, no dependencies)")
    args = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", "--target", str(target),
            *map(str, wheels)]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise CheckError(f"installing the Keras wheel failed: {(out.stderr or out.stdout).strip()[-500:]}")
    (target / ".complete").write_text("")
    return str(target)


def tflops(row: dict[str, Any]) -> float | None:
    flop, steady = row.get("flop_per_epoch"), row.get("steady_epoch_s")
    return flop / steady / 1e12 if flop and steady else None


def report(run_dir: Path, results: list[CellResult], allow_cpu: bool) -> tuple[str, list[str]]:
    """(gpu-check.md text, failures) for a finished run."""
    from reports.article import load_article
    from reports.load import cell_row

    article = load_article()
    k80 = article.hardware.peak_fp32_tflops
    failures = []
    lines = [f"# GPU check: {run_dir.name}", "",
             "| model | backend | device | arithmetic | status | steady s/epoch | TFLOP/s | share of peak |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        spec = json.loads((run_dir / result.cell_id / "spec.json").read_text())
        row = cell_row(run_dir.name, result, spec)
        used = bool(result.host.gpu.used)
        if result.status not in (Status.ok, Status.skipped):
            failures.append(f"{result.cell_id}: {result.status.value}: {result.error}")
        elif result.status is Status.ok and not used and not allow_cpu:
            failures.append(f"{result.cell_id}: ran on the CPU ({row['device']}), not a GPU result")
        rate = tflops(row)
        share = f"{rate / row['peak_tflops']:.1%}" if rate and row["peak_tflops"] else "-"
        lines.append(f"| {row['model']} | {row['backend_title']} ({row['environment']}) | {row['device']} | "
                     f"{row['precision']} | {result.status.value}{'' if used else ' (CPU)'} | "
                     f"{row['steady_epoch_s'] or 0:.3f} | {rate or 0:.3f} | {share} |")  # fmt: skip
    lines += ["", f"## The 2017 figures ({article.hardware.device}, {k80} TFLOP/s FP32; article profile, first "
              "epoch included)", "", "| model | backend | s/epoch | TFLOP/s | share of peak |", "|---|---|---|---|---|"]
    for model in dict.fromkeys(r.cell.model for r in results):
        test = article.tests.get(model)
        for backend, figure in (test.figures.items() if test else []):
            if figure.s_per_epoch:
                rate = test.flop_per_epoch / figure.s_per_epoch / 1e12  # type: ignore[union-attr]
                lines.append(f"| {model} | {backend} | {figure.s_per_epoch} | {rate:.3f} | {rate / k80:.1%} |")
    if allow_cpu:
        lines += ["", "**--allow-cpu**: cells that ran on the CPU were accepted; this is not a GPU result."]
    lines += ["", "Failures:" if failures else "Every cell trained on a GPU." if not allow_cpu else "No failures.",
              *(f"- {f}" for f in failures)]  # fmt: skip
    return "\n".join(lines) + "\n", failures


def sweep_lines(sweep_dir: Path, backends: list[str]) -> list[str]:
    """gpu-check.md's section on a sweep run (`--sweep DIR`: a `kbm sweep --python ...` run on this machine): per
    test and backend the sweep's best variant beside the default, and whether the sweep ran on a GPU at all (a CPU
    sweep's winners are CPU decisions, and the GPU default is not chosen from them)."""
    from reports.article import load_article
    from reports.load import load_runs
    from reports.sweep import sweep_rows
    from reports.tables import summary_table

    loaded = load_runs([sweep_dir])
    rows = [r for r in sweep_rows(summary_table(loaded, load_article())) if r["backend"] in backends]
    cells = loaded.cells
    devices = sorted(set(cells["device"].dropna())) if not cells.empty else []
    on_gpu = not cells.empty and bool((cells["device_kind"] == "gpu").all())
    out = ["", f"## The sweep's best variant beside the default ({sweep_dir.name})", "",
           f"Ran on {', '.join(devices) or 'no device recorded'}"
           + ("." if on_gpu else ": not a GPU sweep, so its winners are not GPU decisions."), ""]
    if not rows:
        return out + ["No test x backend of these backends ran more than one variant with a steady time."]
    out += ["| model | backend | default (s/epoch) | best (s/epoch) | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        default = f"{r['default_variant']} ({r['default_s']:.3f})" if r["default_variant"] else "-"
        out.append(f"| {r['model']} | {r['backend_title']} | {default} | {r['best_variant']} ({r['best_s']:.3f}) | "
                   f"{r['verdict']} |")
    return out


def present_backends(args: argparse.Namespace, say: Any) -> tuple[Any, list[str], str]:
    """(the matrix, the Keras 3 backends whose framework the interpreter has, the PYTHONPATH its cells need), Keras
    installed from a carried wheel where the interpreter lacks it; CheckError says what is missing."""
    matrix = load_matrix(args.matrix)
    # Keras' own backends, each run with its native twin (models/native/) unless --keras-only
    keras3 = {b: matrix.backends[b].framework for name, env in matrix.environments.items()
              if env.keras.startswith("3") for b in env.backends if matrix.backends[b].driver == "keras"}
    pythonpath = os.environ.get("PYTHONPATH", "")
    have = importable(args.python, ["keras", *keras3.values()], pythonpath)
    if "keras" not in have:
        wheels = wheels_from(args.keras_wheel)
        if not wheels:
            raise CheckError(f"{args.python} has no Keras and no wheel was given: carry one (`pip download "
                             "keras==3.15.1 --no-deps -d .whl` where there is internet) and pass "
                             "KERAS_WHEEL=path/to/keras-*.whl, or put it in ./.whl/, or use a bundle: make "
                             "gpu-bundle BUNDLE=DIR there, make gpu-check BUNDLE=DIR here")  # fmt: skip
        pythonpath = os.pathsep.join(p for p in (install_keras(args.python, wheels, say), pythonpath) if p)
    backends = [b for b, fw in keras3.items() if fw in have]
    if not backends:
        raise CheckError(f"{args.python} has none of the Keras 3 backends' frameworks "
                         f"({', '.join(sorted(set(keras3.values())))}); install the machine's CUDA build of one")
    return matrix, backends, pythonpath


def parser() -> argparse.ArgumentParser:
    """`kbm gpu-check` and `python -m runner.gpu_check`: the module's docstring is its help."""
    from runner.commands import make_parser

    doc = __doc__.split("\n\n", 1)[1]
    what, status = doc.rsplit("\n\n", 1)
    p = make_parser("gpu-check", what, status[0].lower() + status[1:])
    p.add_argument("--python", default=os.environ.get("GPU_PYTHON") or "python3",
                   help="the machine's own interpreter with its CUDA builds (default: python3 on PATH)")
    p.add_argument("--profile", default="gpu",
                   help="gpu (default: about 6 minutes on one H100/H200), article (the 2017 epochs) or smoke")
    p.add_argument("--keras-only", action="store_true", help="Keras' backends only, without the native twins")
    p.add_argument("--allow-cpu", action="store_true", help="accept cells that ran on the CPU (for CPU machines)")
    p.add_argument("--keras-wheel", default=os.environ.get("KERAS_WHEEL"),
                   help="a Keras .whl (or folder) installed when the interpreter lacks Keras (default: ./.whl/)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--matrix", type=Path, default=paths.DEFAULT_MATRIX)
    p.add_argument("--data", choices=["real", "synthetic"], help="synthetic: no dataset needed (speed only)")
    p.add_argument("--model", action="append", help="fewer models (default: every model of the matrix whose dataset "
                   "is mnist)")
    p.add_argument("--sweep", type=Path, default=Path(os.environ["SWEEP"]) if os.environ.get("SWEEP") else None,
                   help="a run folder of `kbm sweep --python ...` on this machine: gpu-check.md adds its best variant "
                   "per test and backend beside the default (default: $SWEEP)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # the run below starts in the checkout's root: the paths typed here mean the folder gpu-check was started in
    make_absolute(args, {"python": "interpreter", "keras_wheel": "path", "results": "path", "matrix": "path",
                         "sweep": "path"})
    say = lambda msg: print(f"gpu-check: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if args.sweep is not None and not (args.sweep / "run.json").is_file():  # before anything is installed
        say(f"error: --sweep {args.sweep} is not a run folder (no run.json); give the folder `kbm sweep` printed")
        return 2
    try:
        matrix, backends, pythonpath = present_backends(args, say)
    except (CheckError, MatrixError) as exc:
        say(f"error: {exc}")
        return 2
    say(f"{args.python}: Keras 3 backends present: {', '.join(backends)}; profile {args.profile}")
    for backend in backends:  # the variant each backend runs: its environment's default for the device class
        env_name = next(e for e in matrix.environments_for(backend) if matrix.environments[e].keras.startswith("3"))
        say(f"default variant of {backend} ({env_name}): on a GPU {matrix.default_variant(env_name, True)}, on a "
            f"CPU {matrix.default_variant(env_name, False)} (matrix.yaml default_variant; the run takes the GPU one "
            "where the interpreter's framework sees a GPU)")
    results_root = args.results.resolve()
    cmd = [sys.executable, "-m", "runner", "--python", args.python, "--profile", args.profile,
           "--results", str(results_root), "--matrix", str(args.matrix.resolve()),
           *(a for b in backends for a in ("--only", f"{b}@keras3{'@keras' if args.keras_only else ''}")),
           *(a for m in args.model or matrix.models_of(DATASET) for a in ("--model", m)),
           *(["--data", args.data] if args.data else [])]  # fmt: skip
    code = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": pythonpath}, cwd=paths.REPO_ROOT).returncode
    if code in (2, 130):
        return code
    run_dir = (results_root / "latest").resolve()
    results = [r for _, r in iter_results(run_dir) if isinstance(r, CellResult)]
    if not results:
        say(f"error: the run left no results in {run_dir}")
        return 1
    text, failures = report(run_dir, results, args.allow_cpu)
    if args.sweep is not None:
        text += "\n".join(sweep_lines(args.sweep.resolve(), backends)) + "\n"
    (run_dir / "gpu-check.md").write_text(text)
    print(text)
    say(f"written: {run_dir / 'gpu-check.md'}")
    return 1 if failures or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
