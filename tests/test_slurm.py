"""`--executor slurm` against a real Slurm cluster: slurmctld + slurmd started here (tooling/slurm_cluster.py),
two fake GPUs, real smoke cells of the Keras 3 TensorFlow environment as sbatch jobs.

One faulty run (5 cells on 2 GPU slots, one crashing, one past its time limit) is shared by the tests that read
it; the resume test reruns its failures. Without slurm-wlm (and root) the cluster tests skip, saying how to
install it, except under CI=true, where they fail (tests/ci.py); they never install it themselves. A dry run needs
no Slurm at all. `--parallel` on the local executor is tested here too.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.results import Status, load_result
from runner.executors.base import CellJob
from runner.executors.slurm import batch_script, exit_status, parse_scontrol, resource_args
from runner.paths import REPO_ROOT
from tests.ci import FIX, default_signals, missing
from tests.fixtures import matrix_with, results_by_model, the_run
from tooling.slurm_cluster import ClusterError, LocalSlurmCluster

TF = ["--profile", "smoke", "--only", "tensorflow@keras3@keras", "--no-report"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster. The tests never install slurm-wlm: that would change the machine (its
    packages bring libhwloc15 and more, which once hid that CNTK's environment lacked them); .ci/run installs it."""
    why = LocalSlurmCluster.missing()
    if why is None:
        local = LocalSlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=4, gpus=2)
        try:
            local.start()
        except ClusterError as exc:
            why = str(exc)
        else:
            try:
                yield local
            finally:
                local.stop()
            return
    missing(f"a local Slurm cluster cannot start: {why}", FIX["slurm"])


def gpu_matrix(folder: Path, gpus: int = 1, short: str | None = "hrnn") -> Path:
    """matrix.yaml with the smoke profile asking for GPUs, and one model limited to 30 s (Slurm: 1 minute)."""
    return matrix_with(folder, gpus=gpus, **({"models": {short: {"timeout_s": 30}}} if short else {}))


def runner(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=default_signals, **kwargs)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals holding at one instant (an end before a start at the same instant)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    most = now = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


@pytest.fixture(scope="module")
def faulty_run(cluster, keras_home, tmp_path_factory):
    """5 smoke cells, 1 GPU each, on a 2-GPU node, 4 submitted at once: cnn aborts, hrnn hangs past 30 s."""
    root = tmp_path_factory.mktemp("slurm-run")
    matrix = gpu_matrix(root)
    env = {**cluster.env(), "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": "abort@cnn,hang@hrnn"}
    args = ["--matrix", str(matrix), "--results", str(root / "results"), "--executor", "slurm", "--parallel", "4"]
    started = time.monotonic()
    proc = runner([*args, *TF], env)
    output, _ = proc.communicate(timeout=900)
    run = the_run(root / "results")
    return {"code": proc.returncode, "output": output, "run": run, "results": results_by_model(run), "args": args,
            "env": env, "wall_s": time.monotonic() - started}



# -- the faulty run ------------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_every_cell_gets_a_result_and_the_run_names_its_failures(faulty_run):
    assert faulty_run["code"] == 1, faulty_run["output"][-3000:]
    r = faulty_run["results"]
    assert set(r) == {"mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"}
    for result in r.values():
        ex = result["executor"]
        assert ex["name"] == "slurm" and ex["job_id"].isdigit() and ex["node"] == "kbmnode"
        assert "--gres=gpu:1" in ex["sbatch"] and any(a.startswith("--time=") for a in ex["sbatch"])
        assert ex["queue_wait_s"] >= 0
    assert len({res["executor"]["job_id"] for res in r.values()}) == 5
    assert "2 cell(s) failed" in faulty_run["output"]
    check = subprocess.run([sys.executable, "-m", "runner", "check", str(faulty_run["run"])], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


@pytest.mark.slurm
def test_no_more_than_two_jobs_ran_at_once_on_two_gpu_slots(faulty_run):
    jobs = [r["executor"] for r in faulty_run["results"].values()]
    intervals = [(j["started_at"], j["ended_at"]) for j in jobs]
    assert all(s is not None and e is not None and e >= s for s, e in intervals), intervals
    # 4 were submitted at once and the node has 4 CPUs: only the 2 GPUs held the other jobs back
    assert max_overlap(intervals) == 2, intervals
    assert "queued (job" in faulty_run["output"] and "running (job" in faulty_run["output"]


@pytest.mark.slurm
def test_each_job_saw_its_own_gpu(faulty_run):
    jobs = [r["executor"] for r in faulty_run["results"].values()]
    assert {j["cuda_visible_devices"] for j in jobs} == {"0", "1"}
    for a, b in itertools.combinations(jobs, 2):
        if a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]:  # they ran at the same time
            assert a["cuda_visible_devices"] != b["cuda_visible_devices"], (a, b)
    run = faulty_run["run"]
    for result in faulty_run["results"].values():  # what the job itself was given, as it wrote it down
        recorded = (run / result["cell_id"] / "slurm-job.env").read_text()
        assert f"cuda_visible_devices={result['executor']['cuda_visible_devices']}\n" in recorded


@pytest.mark.slurm
def test_a_crashing_cell_failed_alone(faulty_run):
    r = faulty_run["results"]
    cnn = r["cnn"]
    assert cnn["status"] == "failed" and cnn["returncode"] == -signal.SIGABRT
    assert cnn["executor"]["state"] == "FAILED" and cnn["executor"]["exit_code"] == f"0:{int(signal.SIGABRT)}"
    assert "killed by signal SIGABRT in stage start" in cnn["error"]
    for model in ("mlp", "cifar10_cnn", "babi_rnn"):
        ok = r[model]
        assert ok["status"] == "ok", ok.get("error")
        assert ok["executor"]["state"] == "COMPLETED" and ok["returncode"] == 0
        assert len(ok["epochs"]) == 3 and ok["params"] == {"mlp": 669706, "cifar10_cnn": 1250858,
                                                           "babi_rnn": 45836}[model]
        assert ok["timeline"]["worker_start_s"] >= 0


@pytest.mark.slurm
def test_a_cell_past_its_time_limit_is_recorded_as_timeout(faulty_run):
    hrnn = faulty_run["results"]["hrnn"]
    assert hrnn["status"] == "timeout", hrnn["error"]
    assert hrnn["executor"]["state"] == "TIMEOUT" and hrnn["executor"]["timed_out"] is True
    assert "Slurm ended the job at its time limit (TimeLimit=00:01:00)" in hrnn["error"]
    assert "--time=1" in hrnn["executor"]["sbatch"]
    ran = hrnn["executor"]["ended_at"] - hrnn["executor"]["started_at"]
    assert ran >= 59, ran  # Slurm, not the runner's 30 s clock, ended it
    assert any("DUE TO TIME LIMIT" in line for line in hrnn["log_tail"])


@pytest.mark.slurm
def test_resume_keeps_finished_cells_and_reruns_the_failed_one(faulty_run, tmp_path):
    # a copy: the module's other tests read the faulty run as it ended, in whatever order they run
    run = Path(shutil.copytree(faulty_run["run"], tmp_path / faulty_run["run"].name, symlinks=True))
    kept = {m: (run / r["cell_id"] / "result.json").read_bytes() for m, r in faulty_run["results"].items()
            if r["status"] == "ok"}
    env = {**faulty_run["env"], "KBM_FAULT": ""}
    # hrnn (1 minute under Slurm) is left out: on a loaded 2-core machine its smoke cell may need more than that
    models = [arg for m in ("mlp", "cnn", "cifar10_cnn", "babi_rnn") for arg in ("--model", m)]
    args = list(faulty_run["args"])
    args[args.index("--results") + 1] = str(tmp_path)
    proc = runner([*args, *TF, *models, "--resume", str(run)], env)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    assert "3 cells already have a result" in output
    r = results_by_model(run)
    for model, before in kept.items():
        assert (run / r[model]["cell_id"] / "result.json").read_bytes() == before
    assert r["cnn"]["status"] == "ok", r["cnn"]["error"]
    assert r["cnn"]["executor"]["job_id"] != faulty_run["results"]["cnn"]["executor"]["job_id"]  # a new job
    assert [p.name for p in (run / ".attempts").iterdir()] == [f"{r['cnn']['cell_id']}.1"]  # set aside, not lost


# -- a flaky controller --------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_a_job_survives_scontrol_failing_while_it_runs(cluster, keras_home, tmp_path):
    """`scontrol` on PATH fails twice in a row (as when slurmctld is busy) once the job runs, then works again:
    the cell is not declared lost on a transient miss, and ends ok."""
    real = shutil.which("scontrol", path=cluster.env().get("PATH"))
    shim = tmp_path / "bin"
    shim.mkdir()
    count = tmp_path / "scontrol-calls"
    (shim / "scontrol").write_text(f"""#!/bin/bash
# fail the 3rd and 4th `show job` (the runner's polls), as a busy controller does; pass everything else through
if [ "$1 $2" = "show job" ]; then
  n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
  if [ $n -eq 3 ] || [ $n -eq 4 ]; then
    echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1
  fi
fi
exec {real} "$@"
""")
    (shim / "scontrol").chmod(0o755)
    base = cluster.env()
    env = {**base, "PATH": f"{shim}:{base.get('PATH', os.environ['PATH'])}", "KERAS_HOME": str(keras_home),
           "KBM_SLURM_POLL_S": "0.5"}
    args = ["--matrix", str(gpu_matrix(tmp_path, short=None)), "--results", str(tmp_path / "results"),
            "--executor", "slurm", "--model", "mlp", *TF]
    proc = runner(args, env)
    output, _ = proc.communicate(timeout=600)
    assert int(count.read_text()) > 4  # the failures happened, and polling went on after them
    assert proc.returncode == 0, output[-3000:]
    (result,) = results_by_model(the_run(tmp_path / "results")).values()
    assert result["status"] == "ok" and result["executor"]["state"] == "COMPLETED"


# -- interrupting, refusals ----------------------------------------------------------------------------------------


def squeue(cluster) -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=cluster.env(), capture_output=True, text=True)
    return dict(line.split() for line in out.stdout.splitlines())


@pytest.mark.slurm
def test_ctrl_c_cancels_the_runs_jobs(cluster, keras_home, tmp_path):
    env = {**cluster.env(), "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": "hang@mlp,hang@cnn"}
    args = ["--matrix", str(gpu_matrix(tmp_path, short=None)), "--results", str(tmp_path / "results"),
            "--executor", "slurm", "--parallel", "2", "--model", "mlp", "--model", "cnn", *TF]
    proc = runner(args, env)
    deadline = time.monotonic() + 120
    while list(squeue(cluster).values()).count("RUNNING") < 2:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the two jobs never ran: {proc.communicate()[0][-2000:]}")
        time.sleep(0.5)
    jobs = list(squeue(cluster))
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-3000:]
    assert not set(jobs) & set(squeue(cluster))  # the run's jobs are gone from the queue
    for job in jobs:
        state = subprocess.run(["scontrol", "show", "job", "-o", job], env=cluster.env(), capture_output=True,
                               text=True).stdout
        assert parse_scontrol(state)["JobState"] == "CANCELLED"
    run = the_run(tmp_path / "results")
    recorded = [load_result(p) for p in run.glob("*/result.json")]  # each stopped cell says so, nothing half-done
    assert len(recorded) == 2 and all(r.status is Status.interrupted and not r.epochs for r in recorded)
    assert output.count("interrupted: ") == 2


@pytest.mark.slurm
def test_a_runner_killed_with_sigkill_leaves_no_job_running(cluster, keras_home, tmp_path):
    """No handler sees SIGKILL: the run's watchdog (runner/watchdog.py) sees the runner gone and cancels its job."""
    env = {**cluster.env(), "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": "hang@mlp"}
    args = ["--matrix", str(gpu_matrix(tmp_path, short=None)), "--results", str(tmp_path / "results"),
            "--executor", "slurm", "--model", "mlp", *TF]
    proc = runner(args, env)
    deadline = time.monotonic() + 120
    while "RUNNING" not in squeue(cluster).values():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the job never ran: {proc.communicate()[0][-2000:]}")
        time.sleep(0.5)
    (job,) = squeue(cluster)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while job in squeue(cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job not in squeue(cluster), "the job outlived the runner"
    state = subprocess.run(["scontrol", "show", "job", "-o", job], env=cluster.env(), capture_output=True, text=True)
    assert parse_scontrol(state.stdout)["JobState"] == "CANCELLED"


@pytest.mark.slurm
def test_a_job_slurm_refuses_is_a_failed_cell_with_slurms_reason(cluster, keras_home, tmp_path):
    env = {**cluster.env(), "KERAS_HOME": str(keras_home)}
    args = ["--matrix", str(gpu_matrix(tmp_path, gpus=3, short=None)), "--results", str(tmp_path / "results"),
            "--executor", "slurm", "--model", "mlp", *TF]
    proc = runner(args, env)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output[-3000:]
    (result,) = results_by_model(the_run(tmp_path / "results")).values()
    assert result["status"] == "failed" and result["executor"]["state"] == "REFUSED"
    assert "sbatch refused the job" in result["error"] and "node configuration is not available" in result["error"]


# -- the pieces, without a cluster ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "code", "expected"),
    [
        ("COMPLETED", "0:0", (0, False)),
        ("FAILED", "1:0", (1, False)),
        ("FAILED", "0:6", (-6, False)),
        ("FAILED", "134:0", (-6, False)),  # a worker's signal the batch script could not re-raise: 128 + 6
        ("TIMEOUT", "0:15", (-15, True)),
        ("TIMEOUT", "0:0", (-15, True)),
        ("OUT_OF_MEMORY", "0:125", (-125, False)),
        ("OUT_OF_MEMORY", "0:0", (-9, False)),
        ("NODE_FAIL", "0:0", (-9, False)),
        ("CANCELLED", "0:15", (-15, False)),
        ("CANCELLED", "0:0", (1, False)),
    ],
)
def test_slurm_states_become_exit_statuses_with_reasons(state, code, expected):
    status, timed_out, reason = exit_status(state, code)
    assert (status, timed_out) == expected
    assert status != 0 or state == "COMPLETED"
    assert (reason is None) == (state in ("COMPLETED", "FAILED"))


def test_profile_resources_become_sbatch_options():
    spec = {"resources": {"gpus": 2, "cpus": 1.5, "shm_gb": 1}, "memory_limit_gb": 1.5, "timeout_s": 61}
    assert resource_args(spec) == ["--gres=gpu:2", "--cpus-per-task=2", "--mem=1536M", "--time=2"]
    assert resource_args({"resources": {"gpus": 0, "cpus": None}, "memory_limit_gb": None, "timeout_s": None}) == []


def test_the_batch_script_passes_values_verbatim_and_keeps_the_workers_signal(tmp_path):
    fake = tmp_path / "python"  # stands in for the environment's interpreter
    fake.write_text('#!/bin/sh\nenv > "$(dirname "$0")/seen.env"\nkill -ABRT $$\n')
    fake.chmod(0o755)
    job = CellJob(tmp_path, tmp_path / "spec.json", tmp_path / "worker.log", {})
    nasty = "a b'; touch $HOME/owned; echo \"$(id)\""
    script = tmp_path / "job.sh"
    script.write_text(batch_script(str(fake), job, {"KBM_ODD": nasty, "KERAS_BACKEND": "tensorflow"}))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env={**os.environ,
                          "SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "1"})
    assert proc.returncode == -signal.SIGABRT  # what Slurm records as ExitCode 0:6, as for the worker itself
    seen = (tmp_path / "seen.env").read_text().splitlines()
    assert f"KBM_ODD={nasty}" in seen and "KERAS_BACKEND=tensorflow" in seen
    assert any(line.startswith("KBM_LAUNCHED_AT=") for line in seen)
    recorded = (tmp_path / "slurm-job.env").read_text()
    assert "job_id=7\n" in recorded and "cuda_visible_devices=1\n" in recorded and "worker_exit=134\n" in recorded


# -- no Slurm here: a dry run goes on, a run stops naming the fix ---------------------------------------------------
def test_a_dry_run_needs_no_slurm_and_a_run_without_it_names_the_fix(tmp_path):
    """PATH holds no sbatch, scontrol or scancel (README's slurm command on a machine without Slurm): the dry run
    writes each cell's batch script and sbatch line and says it did not check the cluster; a run exits 2 before
    anything is built, naming the commands and how to get them."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    argv = [sys.executable, "-m", "runner", "--executor", "slurm", "--parallel", "2", "--profile", "smoke", "--only",
            "tensorflow@keras3@keras", "--model", "mlp", "--model", "cnn", "--results", str(tmp_path / "results")]
    dry = subprocess.run([*argv, "--dry-run"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    said = " ".join((dry.stdout + dry.stderr).split())
    assert dry.returncode == 0, said[-3000:]
    assert "the Slurm cluster was not checked (sbatch, scontrol, scancel not on PATH here)" in said
    (folder,) = (tmp_path / "results").glob("*-dry-run/slurm")
    scripts = sorted(folder.glob("*/slurm-job.sh"))
    assert [s.parent.name.split(".")[0] for s in scripts] == ["cnn", "mlp"]
    for script in scripts:
        text = script.read_text()
        assert "-m models.worker" in text and "export KERAS_BACKEND=tensorflow" in text
        assert f"{script.parent}/spec.json" in text and os.access(script, os.X_OK)
    lines = [line for line in (folder / "sbatch.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 2 and all(line.startswith("sbatch --parsable --job-name=kbm-") for line in lines)
    assert sorted(line.split()[-1] for line in lines) == [str(s) for s in scripts]
    assert all("--time=" in line for line in lines)
    real = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    said = " ".join((real.stdout + real.stderr).split())
    assert real.returncode == 2, said[-3000:]
    assert "sbatch, scontrol, scancel not found on PATH" in said and "apt-get install slurm-client" in said
    assert [p.name for p in (tmp_path / "results").iterdir()] == [folder.parent.name]  # the run made nothing


# -- --parallel on the local executor ------------------------------------------------------------------------------


@pytest.mark.venv
def test_parallel_runs_local_cells_side_by_side(keras_home, tmp_path):
    env = {**os.environ, "KERAS_HOME": str(keras_home)}
    proc = runner(["--results", str(tmp_path / "results"), "--parallel", "2", "--model", "mlp", "--model", "babi_rnn",
                   *TF], env)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    r = results_by_model(the_run(tmp_path / "results"))
    assert all(res["status"] == "ok" and res["executor"]["name"] == "venv" for res in r.values())
    spans = []
    for res in r.values():
        events = [json.loads(line) for line in (the_run(tmp_path / "results") / res["cell_id"] / "events.jsonl")
                  .read_text().splitlines()]
        spans.append((events[0]["t"], events[-1]["t"]))
    assert max_overlap(spans) == 2, spans


def test_parallel_must_be_positive():
    proc = subprocess.run([sys.executable, "-m", "runner", "--parallel", "0", "--dry-run"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--parallel must be at least 1" in proc.stderr
