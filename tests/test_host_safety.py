"""The private engine and the local Slurm cluster touch only what they made, and leave none of it running.

For real: a Docker engine started with its own run folder and cache beside a `docker0` interface that belongs
to someone else (a bridge this test makes, as a system Docker's is), which must survive
`engine stop`; a Slurm cluster stopped while a job that ignores SIGTERM runs, normally and after its slurmd was
killed, which must leave no job process, while a bystander process carrying the same SLURM_CONF keeps running.
Root, dockerd, `ip` and slurm-wlm are needed; without them the tests skip saying how to install them (fail under
CI=true, tests/ci.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.paths import REPO_ROOT
from tests.ci import APT, FIX, missing, need_root
from tooling.slurm_cluster import ClusterError, LocalSlurmCluster


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


# -- the private Docker engine -----------------------------------------------------------------------------------


def _engine(env: dict[str, str], *code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "; ".join(("from tooling import engine", *code))], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_engine_stop_leaves_another_docker0_alone(tmp_path_factory):
    need_root("a private Docker engine")
    if shutil.which("dockerd") is None or shutil.which("ip") is None:
        missing("needs dockerd and ip", f"{APT} docker.io iproute2")
    if Path("/sys/class/net/docker0").exists():
        pytest.skip("this host already has a docker0; the test makes its own and will not touch that one")
    root = tmp_path_factory.mktemp("engine")
    run_dir = Path("/run") / f"kbm-test-{os.getpid()}"  # short: the socket path must fit in 108 bytes
    env = {**os.environ, "KBM_ENGINE_RUN": str(run_dir), "KBM_CACHE": str(root / "cache")}
    started = _engine(env, "engine.start_daemon()", "print(engine._pid())")
    made_link = False
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        pid = int(started.stdout.split()[-1])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for flag in (b"--iptables=false", b"--ip-masq=false"):
            assert flag in cmdline
        assert cmdline[cmdline.index(b"--bridge") + 1] == b"none"
        assert not Path("/sys/class/net/docker0").exists(), "the private engine made a docker0"
        # someone else's docker0: a Linux bridge, as a system Docker's is (a dummy link where bridges are unavailable)
        made = subprocess.run(["ip", "link", "add", "docker0", "type", "bridge"], capture_output=True)
        if made.returncode != 0:
            subprocess.run(["ip", "link", "add", "docker0", "type", "dummy"], check=True)
        made_link = True
        stopped = _engine(env, "engine.stop()")
        assert stopped.returncode == 0, stopped.stderr
        assert _gone_within(pid, 10), "dockerd still running after stop"
        assert Path("/sys/class/net/docker0").exists(), "engine stop deleted a docker0 it did not create"
        assert not run_dir.exists()
    finally:
        _engine(env, "engine.stop()")
        if made_link:
            subprocess.run(["ip", "link", "delete", "docker0"], check=False)


# -- the local Slurm cluster ---------------------------------------------------------------------------------------

HUNG_JOB = """#!/bin/bash
exec {python} -c 'import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open("{pidfile}", "w").write(str(os.getpid()))
time.sleep(3600)'
"""


def _hung_job(cluster: LocalSlurmCluster, folder: Path) -> int:
    """Submit a job whose worker ignores SIGTERM and never ends; its pid once it runs."""
    pidfile = folder / "worker.pid"
    script = folder / "hung.sh"
    script.write_text(HUNG_JOB.format(python=sys.executable, pidfile=pidfile))
    out = subprocess.run(["sbatch", "--parsable", "-o", str(folder / "job.out"), str(script)], env=cluster.env(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    return int(pidfile.read_text())


@pytest.fixture
def slurm(tmp_path):
    why = LocalSlurmCluster.missing()
    if why:
        missing(f"a local Slurm cluster cannot start: {why}", FIX["slurm"])
    cluster = LocalSlurmCluster(tmp_path / "cluster", cpus=2, gpus=0)
    try:
        cluster.start()
    except ClusterError as exc:
        missing(f"a local Slurm cluster did not start: {exc}", FIX["slurm"])
    bystander = subprocess.Popen(["sleep", "600"], env=cluster.env())  # shares SLURM_CONF, as the runner does
    try:
        yield cluster, bystander
    finally:
        cluster.stop()
        bystander.kill()
        bystander.wait()


def test_stopping_the_cluster_ends_a_hung_job_and_nothing_else(slurm, tmp_path):
    cluster, bystander = slurm
    worker = _hung_job(cluster, tmp_path)
    cluster.stop()
    assert _gone_within(worker, 5), "a job's worker outlived the cluster"
    assert bystander.poll() is None, "stop killed a process that is not one of the cluster's jobs"


def test_a_job_whose_slurmd_died_is_still_ended(slurm, tmp_path):
    cluster, bystander = slurm
    worker = _hung_job(cluster, tmp_path)
    slurmd = int((cluster.root / "slurmd.kbm-pid").read_text())
    os.kill(slurmd, signal.SIGKILL)  # what a crashed daemon or a killed test leaves: job steps without a slurmd
    assert _gone_within(slurmd, 10)
    assert _alive(worker)
    cluster.stop()
    assert _gone_within(worker, 5), "a job's worker outlived its dead slurmd and the cluster"
    assert bystander.poll() is None
