"""What a user sees: text that is not ours printed as written, tables readable at 80 and 100 columns.

Rendering goes through a real rich Console of a fixed width; a run goes through the real runner. A table is
readable when each cell's figures and verdict appear whole on one line, and a reason shared by many cells is
stated once below the table.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
import yaml
from rich.console import Console

from common.results import CellResult
from reports.cli import compare_table
from runner.cells import Selection, expand
from runner.dryrun import dry_run
from runner.executors.venv import VenvExecutor
from runner.paths import REPO_ROOT
from runner.summary import print_summary
from tests.fixtures import populate_keras_home
from tests.results_factory import make_result

CIFAR_MISSING = ("cifar10: not in the Keras cache and not downloadable (www.cs.toronto.edu unreachable: [Errno -3] "
                 "Temporary failure in name resolution). Place cifar-10-python.tar.gz (from "
                 "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) at /home/u/.keras/datasets/"
                 "cifar-10-python.tar.gz, or run with --data synthetic.")


def render(width: int, draw) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    draw(console)
    return console.file.getvalue()


def result(model: str, backend: str, env: str, status: str = "ok", error: str | None = None,
           busy: bool = False) -> CellResult:
    made = make_result(model, backend, env, profile="quick", status=status, error=error, busy=busy,
                       steady=[12.345, 12.345], train_samples=60000, accuracy=0.9712)
    return CellResult.model_validate(made)


def matrix_run() -> list[CellResult]:
    """The quick profile with CIFAR-10 and bAbI missing: six skipped cells, two reasons, one busy cell."""
    out = []
    for model in ("mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"):
        for backend in ("tensorflow", "jax", "torch"):
            env = f"keras3-{backend}"
            if model == "cifar10_cnn":
                out.append(result(model, backend, env, "skipped", CIFAR_MISSING))
            elif model == "babi_rnn":
                out.append(result(model, backend, env, "skipped", CIFAR_MISSING.replace("cifar10", "babi_qa2")))
            else:
                out.append(result(model, backend, env, busy=(model, backend) == ("hrnn", "torch")))
    return out


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_closing_table_is_one_line_per_cell_with_each_reason_once(width):
    text = render(width, lambda c: print_summary(c, matrix_run(), "run x (15 of 15 cells)"))
    lines = text.splitlines()
    rows = [line for line in lines if line.split()[:1] and line.split()[0] in ("mlp", "cnn", "cifar10_cnn", "hrnn",
                                                                                  "babi_rnn")]
    assert len(rows) == 15 and all(len(line) <= width for line in rows)
    ok_rows = [r for r in rows if " ok " in r]
    assert len(ok_rows) == 9 and all("12.345" in r and "0.9712" in r for r in ok_rows)  # figures whole
    assert sum("skipped [1]" in r for r in rows) == 3 and sum("skipped [2]" in r for r in rows) == 3
    assert text.count("cifar10: not in the Keras cache") == 1 and "[1] (3 cells) cifar10:" in text
    assert text.count("babi_qa2: not in the Keras cache") == 1
    assert "..." not in text and "…" not in "".join(r.split()[0] for r in rows)


def test_text_that_is_not_ours_is_never_markup():
    cells = [result("mlp", "jax", "keras3-jax", "failed", "ValueError: bad shape [/x] for jax[cuda13]")]
    text = render(100, lambda c: print_summary(c, cells, "run"))
    assert "ValueError: bad shape [/x] for jax[cuda13]" in text


def test_the_dry_run_keeps_cells_whole_at_80_columns(matrix):
    cells = expand(matrix, Selection(environments=("keras2017-tf-cntk", "keras224-cntk-variant", "keras3-jax")))
    text = render(80, lambda c: dry_run(c, matrix, cells, VenvExecutor(), "real", None))
    table = text[text.index("23 cells"):]  # 20, and the JAX twin's 3
    assert all(len(line) <= 80 for line in table.splitlines())
    for cell in cells:
        line = next(line for line in table.splitlines() if line.split()[1:4] == [cell.model, cell.backend,
                                                                                  cell.environment])
        train = matrix.profiles["quick"].limits_for(cell.model, cell.backend).train_samples  # per backend, too
        assert line.split()[4:6] == ["6", str(train or "all")]
    assert "quick profile" in table and "timeout 1800 s" in table


def test_compare_keeps_its_verdicts_and_figures_whole_at_80_columns():
    rows = [
        ["mlp tensorflow keras3-tensorflow quick real", "2.345", "3.012", "1.28x", "±1.5 %", "0.9712", "0.9650",
         "-0.0062", "REGRESSION: slower, less accurate", "noisy in B"],
        ["cnn jax keras3-jax quick real", "15.100", "15.000", "0.99x", "±0.8 %", "0.9801", "0.9805", "+0.0004",
         "within noise", ""],
        ["hrnn torch keras3-torch quick real", "26.100", "669,706.000", "25,600.00x", "-", "-", "0.9000", "-",
         "REGRESSION: slower", ""],
    ]
    for width in (80, 100):
        text = render(width, lambda c, w=width: c.print(compare_table(rows, "B vs A", w)))
        assert all(len(line) <= width for line in text.splitlines())
        assert "REGRESSION: slower, less accurate" in text and "1.28x" in text and "-0.0062" in text
        assert "25,600.00x" in text and "REGRESSION: slower" in text  # wide figures stay whole, or are left out
        assert "mlp tensorflow" in text and "(quick, real)" in text  # shared parts said once, in the title
        assert "…" not in text and "..." not in text
    assert "669,706.000" in text and "2.345" in text  # at 100 columns both runs' s/epoch


@pytest.mark.venv
def test_a_path_with_markup_characters_survives_a_real_run(prepared, tmp_path):
    """KERAS_HOME under a folder named `x[/y]`: the data probe, the progress lines and the summary print it."""
    prepared("keras3-tensorflow")
    home = populate_keras_home(tmp_path / "odd[" / "y]" / "keras")
    (home / "datasets" / "cifar-10-python.tar.gz").unlink()
    proc = subprocess.run([sys.executable, "-m", "runner", "--results", str(tmp_path / "results"), "--profile",
                           "smoke", "--only", "tensorflow@keras3@keras", "--model", "mlp", "--model", "cifar10_cnn",
                           "--no-report", "--executor", "venv"], cwd=REPO_ROOT,
                          env={**os.environ, "KERAS_HOME": str(home), "COLUMNS": "100"},
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert "MarkupError" not in output and "Traceback" not in output, output[-3000:]
    assert proc.returncode == 0, output[-3000:]
    assert f"{home}/datasets/cifar-10-python.tar.gz" in output.replace("\n", "")


def test_requirements_with_extras_print_whole_in_the_dry_run(tmp_path):
    """`jax[cpu]` is a requirement, not rich markup: the dry-run's environment table shows it as written."""
    data = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    data["environments"]["keras3-jax"]["requirements"] = ["keras==3.15.1", "jax[cpu]==0.10.2", "jaxlib==0.10.2",
                                                          "numpy==2.4.6"]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(tmp_path / "m.yaml"), "--env", "keras3-jax",
                           "--dry-run", "--executor", "venv"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "jax[cpu]==0.10.2" in proc.stdout


@pytest.mark.venv
def test_the_busy_warning_names_only_the_backends_that_ran(prepared, keras_home, tmp_path):
    """Two busy loops take the machine while a TensorFlow cell trains: the cell is flagged, the warning names
    TensorFlow and no backend that did not run."""
    prepared("keras3-tensorflow")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        proc = subprocess.run([sys.executable, "-m", "runner", "--results", str(tmp_path / "results"), "--profile",
                               "smoke", "--only", "tensorflow@keras3@keras", "--model", "mlp", "--no-report",
                               "--executor", "venv"],
                              cwd=REPO_ROOT, env={**os.environ, "KERAS_HOME": str(keras_home)},
                              capture_output=True, text=True, timeout=600)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, output[-3000:]
    assert "machine was busy with other work during 1 cell(s) (TensorFlow)" in output
    assert "PyTorch" not in output and "JAX" not in output
