"""A report of nothing is an error: `./kbm report results` (the folder a user naturally passes) reports the latest
run inside it, or every run with --all; a folder without a readable result exits 2 and writes nothing (issue 33).
Real run folders (format-exact results, and a recorded run from tests/data) through the real command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from runner.paths import REPO_ROOT
from tests.results_factory import fresh_mlp_run, write_run


def kbm_report(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "report", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_a_results_folder_reports_its_latest_run_or_every_run(tmp_path):
    results = tmp_path / "results"
    old = fresh_mlp_run(results, "20261203-090000-old", cifar_skipped=False)
    new = fresh_mlp_run(results, "20261204-090000-new")
    proc = kbm_report(results)
    assert proc.returncode == 0, proc.stderr
    assert (new / "report" / "index.html").is_file() and not (old / "report").exists()
    assert not (results / "report").exists()  # never a report of the results folder itself
    assert "reporting its latest run, 20261204-090000-new" in proc.stderr and "--all" in proc.stderr
    proc = kbm_report(results, "--all")
    assert proc.returncode == 0, proc.stderr
    assert (old / "report" / "index.html").is_file()


def test_a_folder_without_results_exits_2_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    (results / "notes").mkdir(parents=True)
    proc = kbm_report(results)
    assert proc.returncode == 2 and "no run folder inside it; it holds notes" in proc.stderr, proc.stderr
    (results / "20261204-000000-empty").mkdir()
    empty = write_run(results, [], "20261204-000000-empty")  # a run folder whose cells wrote nothing
    proc = kbm_report(empty)
    assert proc.returncode == 2 and "no readable result" in proc.stderr, proc.stderr
    assert not (empty / "report").exists() and not (results / "report").exists()
    assert list(Path(results).rglob("index.html")) == []


def test_a_recorded_run_reports_from_its_results_folder(tmp_path):
    """tests/data holds recorded run folders; copied into a results folder, the latest is reported."""
    results = tmp_path / "results"
    shutil.copytree(REPO_ROOT / "tests" / "data" / "schema2-run", results / "20261130-000000-recorded")
    proc = kbm_report(results)
    assert proc.returncode == 0, proc.stderr
    md = (results / "20261130-000000-recorded" / "report" / "summary.md").read_text()
    assert md.splitlines()[2].startswith("- **MNIST MLP"), md[:400]

