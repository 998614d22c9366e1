"""Faults produced for real in real worker processes (models/faults.py), and the matrix surviving each one.

Every test asserts three things: the matrix went on, the failure was recorded with its cause, and no earlier
result was lost or changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.results import Status, load_result
from runner.paths import REPO_ROOT
from tests.ci import default_signals
from tests.fixtures import results_by_model, the_run

pytestmark = pytest.mark.venv


def start_runner(args: list[str], keras_home: Path, results: Path, fault: str = "", matrix: Path | None = None,
                 preexec=default_signals):
    """The runner as a user starts it; with SIGINT/SIGHUP at their defaults unless `preexec` says otherwise."""
    env = {**os.environ, "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": fault}
    cmd = [sys.executable, "-m", "runner", "--results", str(results), "--profile", "smoke",
           "--only", "tensorflow@keras3@keras"]
    if matrix is not None:
        cmd += ["--matrix", str(matrix)]
    return subprocess.Popen(cmd + args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    """Wait for the runner; past `timeout` it is stopped (SIGTERM: its cells with it), so a failed test leaves
    nothing running."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return proc.returncode, out + err


def alive(pattern: str) -> bool:
    """Whether a process whose command line holds `pattern` runs (read from /proc: a bare Debian has no pgrep)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        if pattern in text and cmdline.parent.name != str(os.getpid()):
            return True
    return False


def test_crashes_exits_hangs_and_exceptions_are_recorded_and_the_matrix_goes_on(keras_home, tmp_path):
    fault = "abort@mlp,exit@cnn,hang@hrnn,raise@cifar10_cnn@train"
    proc = start_runner(["--timeout", "45"], keras_home, tmp_path / "results", fault)
    code, output = finish(proc)
    assert code == 1, output[-3000:]
    run = the_run(tmp_path / "results")
    r = results_by_model(run)
    assert set(r) == {"mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"}  # every cell has a result

    assert r["mlp"]["status"] == "failed" and r["mlp"]["returncode"] == -signal.SIGABRT
    assert "killed by signal SIGABRT in stage start" in r["mlp"]["error"]
    assert r["cnn"]["status"] == "failed" and "exited with status 3 in stage start" in r["cnn"]["error"]
    assert r["hrnn"]["status"] == "timeout" and "timed out after 45 s in stage start" in r["hrnn"]["error"]
    assert not alive(str(run / r["hrnn"]["cell_id"] / "spec.json"))  # the hung worker was killed
    assert r["cifar10_cnn"]["status"] == "failed" and r["cifar10_cnn"]["stage"] == "train"
    assert "RuntimeError: injected fault in stage train" in r["cifar10_cnn"]["error"]
    assert any("RuntimeError" in line for line in r["cifar10_cnn"]["log_tail"])
    assert r["babi_rnn"]["status"] == "ok"  # the cell after all those faults still ran
    # the run ends with a summary that names the failures
    assert "4 cell(s) failed" in output and "hrnn.tensorflow" in output


def test_a_worker_past_its_memory_limit_fails_alone(keras_home, tmp_path):
    matrix = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    matrix.write_text(text.replace("    timeout_s: 600\n", "    timeout_s: 600\n    memory_limit_gb: 1.5\n", 1))
    proc = start_runner(["--model", "mlp", "--model", "babi_rnn"], keras_home, tmp_path / "results", "oom@mlp",
                        matrix)
    code, output = finish(proc)
    assert code == 1, output[-3000:]
    r = results_by_model(the_run(tmp_path / "results"))
    assert r["mlp"]["status"] == "failed" and "MemoryError" in r["mlp"]["error"]
    assert r["babi_rnn"]["status"] == "ok"


def wait_for_cell(proc: subprocess.Popen, results: Path, cell_id: str, timeout: float = 300) -> Path:
    """The cell's folder once its worker reports (events.jsonl exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()] if results.exists() else []
        if runs and (runs[0] / cell_id / "events.jsonl").exists():
            return runs[0] / cell_id
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{cell_id} never started: {proc.communicate()[1][-2000:]}")


def worker_pids(spec: Path) -> list[int]:
    """Live (not zombie) processes whose command line names this cell's spec.json."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if str(spec) in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") and \
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                pids.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def test_sigint_stops_the_cell_keeps_earlier_results_and_resume_finishes(keras_home, tmp_path):
    results = tmp_path / "results"
    proc = start_runner(["--model", "mlp", "--model", "cnn"], keras_home, results, "hang@cnn")
    cnn_dir = wait_for_cell(proc, results, "cnn.tensorflow.keras3-tensorflow.smoke.stock.r0")
    run = cnn_dir.parent
    mlp_result = run / "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0" / "result.json"
    assert mlp_result.exists()
    before = mlp_result.read_bytes()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # impatient: a second Ctrl-C while the first one's cleanup runs
    code, output = finish(proc, timeout=60)
    assert code == 130, output[-3000:]
    interrupted = load_result(cnn_dir / "result.json")  # recorded as interrupted, with nothing of its measurement
    assert interrupted.status is Status.interrupted and interrupted.stage == "start" and not interrupted.epochs
    assert not (cnn_dir / "worker-result.json").exists()
    assert not alive(str(cnn_dir / "spec.json"))
    assert "interrupted" in output
    manifest = json.loads((run / "run.json").read_text())  # complete, and says where the run stopped
    assert manifest["interrupted"] == cnn_dir.name and manifest["finished_at"]
    resume = f"-m runner --resume {run}"
    assert resume in output  # the message says how to finish the run

    # the command it gives, as is: the run's own options (smoke, tensorflow, mlp and cnn) come from its run.json
    resumed = subprocess.Popen([sys.executable, *resume.split()], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "KERAS_HOME": str(keras_home)})
    code, output = finish(resumed)
    assert code == 0, output[-3000:]
    assert mlp_result.read_bytes() == before  # kept, not rerun
    r = results_by_model(run)
    assert r["cnn"]["status"] == "ok" and r["mlp"]["status"] == "ok"
    assert list((run / ".attempts").iterdir())  # the interrupted attempt is set aside, not deleted
    assert "1 cells already have a result" in output
    assert "running the other 1" in output  # nothing beyond the run's own two cells


def test_sighup_stops_a_run_as_sigterm_does(keras_home, tmp_path):
    """A closed terminal (SIGHUP) ends the run cleanly: the cell stopped, run.json finished, exit 130."""
    results = tmp_path / "results"
    proc = start_runner(["--model", "mlp"], keras_home, results, "hang@mlp")
    cell = wait_for_cell(proc, results, "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0")
    proc.send_signal(signal.SIGHUP)
    code, output = finish(proc, timeout=60)
    assert code == 130, output[-3000:]
    assert not worker_pids(cell / "spec.json")
    assert json.loads((cell.parent / "run.json").read_text())["interrupted"] == cell.name


def test_a_runner_killed_with_sigkill_leaves_no_worker_and_honours_nohup(keras_home, tmp_path):
    """Started as `nohup` starts it (SIGINT and SIGHUP ignored), the runner keeps ignoring them; killed with
    SIGKILL, which no handler sees, its worker still dies with it (the kernel's parent-death signal)."""

    def as_nohup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    results = tmp_path / "results"
    proc = start_runner(["--model", "mlp"], keras_home, results, "hang@mlp", preexec=as_nohup)
    cell = wait_for_cell(proc, results, "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0")
    (worker,) = worker_pids(cell / "spec.json")
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGINT)
    time.sleep(3)
    assert proc.poll() is None and worker_pids(cell / "spec.json") == [worker]  # both ignored, as asked
    proc.kill()  # SIGKILL
    proc.communicate(timeout=30)
    time.sleep(5)
    assert not worker_pids(cell / "spec.json"), f"worker {worker} outlived the runner"


def test_ctrl_c_tests_pass_when_the_suite_is_started_in_the_background(tmp_path):
    """`make test &` (or a CI runner) starts pytest with SIGINT ignored; the Ctrl-C test still passes because the
    tests start the runner with SIGINT's default disposition."""
    script = (f"{sys.executable} -m pytest -q -p no:cacheprovider {REPO_ROOT / 'tests' / 'test_faults.py'} "
              "-k test_sigint_stops_the_cell > out.txt 2>&1 & wait $!")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    out = (tmp_path / "out.txt").read_text()
    assert proc.returncode == 0 and "1 passed" in out, out[-3000:]


def test_an_environment_that_cannot_install_fails_its_cells_and_the_run(keras_home, tmp_path):
    matrix = tmp_path / "matrix.yaml"
    text = (REPO_ROOT / "matrix.yaml").read_text()
    broken = ("  keras3-broken:\n    python: \"3.11\"\n    keras: \"3.15.1\"\n    backends: [tensorflow]\n"
              "    requirements:\n      - kbm-this-package-does-not-exist==0.0.1\n")
    matrix.write_text(text.replace("  keras3-jax:\n", broken + "  keras3-jax:\n", 1))
    env = {**os.environ, "KERAS_HOME": str(keras_home), "KBM_CACHE": str(tmp_path / "cache")}
    # the broken environment builds in a private cache; the good one is found in the shared cache by a second run
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(matrix), "--results",
                           str(tmp_path / "results"), "--profile", "smoke", "--model", "mlp", "--env", "keras3-broken"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # rerunning may fix a failed build: not a skip
    (result,) = results_by_model(the_run(tmp_path / "results")).values()
    assert result["status"] == "failed" and result["stage"] == "environment"
    assert "could not be built" in result["error"] and ".install.log" in result["error"]
    assert not any((tmp_path / "cache" / "venvs").glob("keras3-broken-*/bin"))  # nothing half-built kept


def test_missing_data_skips_its_cells_and_resume_runs_them_once_it_is_there(tmp_path, keras_home):
    empty = tmp_path / "empty-keras-home"
    empty.mkdir()
    proc = start_runner(["--model", "cifar10_cnn", "--model", "babi_rnn"], empty, tmp_path / "results")
    code, output = finish(proc)
    assert code == 1 and "no cell ran" in output, output[-3000:]  # nothing was measured
    assert "[1] cifar10: not in the Keras cache" in output and "[2] babi_qa2" in output  # each fix once, at the end
    run = the_run(tmp_path / "results")
    for result in results_by_model(run).values():
        assert result["status"] == "skipped" and result["stage"] == "data"
        assert "--data synthetic" in result["error"] and str(empty / "datasets") in result["error"]
        assert not (run / result["cell_id"] / "worker.log").exists()  # no process was started for it
    assert "data missing" in output

    # the user places the files (here: a Keras cache that has them) and resumes with the run's own options
    resumed = subprocess.run([sys.executable, "-m", "runner", "--resume", str(run), "--no-report"], cwd=REPO_ROOT,
                             env={**os.environ, "KERAS_HOME": str(keras_home)}, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {m: r["status"] for m, r in results_by_model(run).items()} == {"cifar10_cnn": "ok", "babi_rnn": "ok"}


def test_a_truncated_result_is_reported_and_rerun_on_resume(keras_home, tmp_path):
    results = tmp_path / "results"
    code, output = finish(start_runner(["--model", "mlp", "--model", "babi_rnn"], keras_home, results))
    assert code == 0, output[-3000:]
    run = the_run(results)
    babi = run / "babi_rnn.tensorflow.keras3-tensorflow.smoke.stock.r0" / "result.json"
    mlp = run / "mlp.tensorflow.keras3-tensorflow.smoke.stock.r0" / "result.json"
    mlp_before = mlp.read_bytes()
    babi.write_bytes(babi.read_bytes()[:200])  # a disk that filled up, a copy cut short
    check = subprocess.run([sys.executable, "-m", "runner", "check", str(run)], cwd=REPO_ROOT, capture_output=True,
                           text=True)
    assert check.returncode == 1 and "unreadable" in check.stdout and "1 problems" in check.stdout
    code, output = finish(start_runner(["--model", "mlp", "--model", "babi_rnn", "--resume", str(run)], keras_home,
                                       results))
    assert code == 0, output[-3000:]
    assert mlp.read_bytes() == mlp_before
    assert json.loads(babi.read_text())["status"] == "ok"


@pytest.mark.parametrize("ends", ["normally", "killed"])
def test_the_watchdog_acts_only_when_its_runner_dies(tmp_path, ends):
    """runner/watchdog.py runs what it was told (here `touch`) only when its runner vanished without `done`."""
    mark = tmp_path / "stopped"
    last = "os.kill(os.getpid(), signal.SIGKILL)" if ends == "killed" else "dog.close()"
    code = ("import os, signal\nfrom runner.watchdog import Watchdog\ndog = Watchdog()\n"
            f"dog.watch({{'argv': ['touch', {str(mark)!r}]}})\n{last}\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60)
    deadline = time.monotonic() + 10
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mark.exists() == (ends == "killed")
