"""A real single-node Slurm cluster on loopback, for tests and for trying `--executor slurm` on one machine.

Debian's slurm-wlm runs as root with no munge (auth/none, cred/none), the controller and the node on 127.0.0.1 on
free ports, and `gpus` fake GPUs: character devices made with mknod in the cluster folder, which Slurm hands out
as GRES and announces to each job in CUDA_VISIBLE_DEVICES (nothing ever opens them). The node offers more CPUs
than GPUs (config_overrides lets it claim more than the host has), so GPU slots are what limits concurrency.
Everything the cluster writes (configuration, state, logs, pid files) stays in one folder. Stopping it ends
what it started and nothing else: every job of this cluster is cancelled while its controller still answers,
the job processes (`scontrol listpids` on our node, recorded with their start times in `jobs.kbm-pids`) are
killed by pid if any survive, then both daemons by the pids recorded when they were started. A job process
whose slurmd is already gone is still found: it carries this cluster's SLURM_CONF path and a SLURM_JOB_ID.

    python -m tooling.slurm_cluster up DIR     start one (prints `export SLURM_CONF=...`); `make slurm-up`
    python -m tooling.slurm_cluster down DIR   stop it; `make slurm-down`
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd")
NODE = "kbmnode"
GPU_MAJOR = 195  # the NVIDIA character-device major; the devices are never opened


class ClusterError(RuntimeError):
    """The local cluster cannot start; the message says what is missing and how to get it."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024 - 1024  # leave the host some room
    return 1024


def slurm_conf(root: Path, *, cpus: int, gpus: int, ctld_port: int, slurmd_port: int) -> str:
    host = platform.node().split(".")[0] or "localhost"
    return f"""\
# A single-node Slurm cluster for Keras Backend Matrix (tooling/slurm_cluster.py). Loopback only, root only.
ClusterName=kbm
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=900
KillWait=5
InactiveLimit=0
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_memory_mb()} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=main Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurmCluster:
    """Start, query and stop a loopback cluster living in `root`. `env()` is what clients need (SLURM_CONF)."""

    def __init__(self, root: Path, *, cpus: int = 4, gpus: int = 2):
        self.root = Path(root).resolve()
        self.cpus, self.gpus = cpus, gpus
        self.conf = self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @staticmethod
    def missing() -> str | None:
        """Why a cluster cannot start here, or None."""
        if os.geteuid() != 0:
            return "a local Slurm cluster needs root (its daemons run as root with auth/none)"
        absent = [tool for tool in (*DAEMONS, "sbatch", "scontrol", "squeue") if shutil.which(tool) is None]
        if absent:
            return f"{', '.join(absent)} not found: install Debian's slurm-wlm (apt-get install slurm-wlm)"
        return None

    def write_config(self) -> None:
        for sub in ("state", "spool", "dev"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for index in range(self.gpus):  # Slurm drops a GPU whose File= is missing and refuses a regular file
            device = self.root / "dev" / f"nvidia{index}"
            if not device.exists():
                os.mknod(device, 0o600 | 0o020000, os.makedev(GPU_MAJOR, index))
        gres = "".join(f"NodeName={NODE} Name=gpu File={self.root}/dev/nvidia{i}\n" for i in range(self.gpus))
        (self.root / "gres.conf").write_text(gres)
        self.conf.write_text(
            slurm_conf(self.root, cpus=self.cpus, gpus=self.gpus, ctld_port=_free_port(), slurmd_port=_free_port())
        )

    def start(self, timeout: float = 60.0) -> float:
        """Start both daemons (detached, in their own sessions) and wait until the node takes jobs; seconds."""
        why = self.missing()
        if why:
            raise ClusterError(why)
        started = time.monotonic()
        self.write_config()
        commands = {
            "slurmctld": ["slurmctld", "-D", "-c", "-i", "-f", str(self.conf)],
            "slurmd": ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)],
        }
        for daemon, argv in commands.items():
            with open(self.root / f"{daemon}.out", "ab") as out:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    env=self.env(),
                )
            (self.root / f"{daemon}.kbm-pid").write_text(str(proc.pid))
            if daemon == "slurmctld":
                self._wait_for(lambda: self._run("scontrol", "ping").returncode == 0, started, timeout, daemon)
        self._wait_for(lambda: self.node_state() in ("idle", "mixed", "allocated"), started, timeout, "slurmd")
        return time.monotonic() - started

    def _wait_for(self, ready, started: float, timeout: float, daemon: str) -> None:
        while not ready():
            if time.monotonic() - started > timeout or not self._alive(daemon):
                log = self.root / f"{daemon}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
                self.stop()
                raise ClusterError(f"{daemon} did not come up within {timeout:.0f} s; its log ends:\n{tail}")
            time.sleep(0.2)

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True, timeout=30)

    def node_state(self) -> str:
        out = self._run("sinfo", "-h", "-N", "-o", "%T")
        return out.stdout.strip().rstrip("*~#") if out.returncode == 0 else ""

    def _pid(self, daemon: str) -> int | None:
        path = self.root / f"{daemon}.kbm-pid"
        return int(path.read_text()) if path.exists() else None

    def _alive(self, daemon: str) -> bool:
        pid = self._pid(daemon)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # reap it if it is our child and has exited
            done, _ = os.waitpid(pid, os.WNOHANG)
            return done == 0
        except ChildProcessError:
            return True

    def stop(self) -> None:
        """End this cluster's jobs (scancel, then their recorded pids), then each daemon by its recorded pid:
        SIGTERM, SIGKILL what is left after 10 s."""
        jobs = self._job_processes()
        if self._alive("slurmctld"):
            ids = self._run("squeue", "-h", "-o", "%A").stdout.split() if self.conf.exists() else []
            if ids:
                self._run("scancel", *ids)
                deadline = time.monotonic() + 15  # KillWait (5 s) plus the controller's round trip
                while time.monotonic() < deadline and self._run("squeue", "-h", "-o", "%A").stdout.strip():
                    time.sleep(0.2)
        self._stop_daemons()
        for pid, started in jobs.items():
            _kill_if_same(pid, started)
        for pid, started in self._job_processes().items():  # anything the records or a dead slurmd missed
            _kill_if_same(pid, started)
        (self.root / "jobs.kbm-pids").unlink(missing_ok=True)

    def _job_processes(self) -> dict[int, str]:
        """pid -> start time of every process of this cluster's jobs: what slurmd reports for its job steps, plus
        any process whose environment names this cluster's SLURM_CONF and a job id (a job whose slurmd died)."""
        found: dict[int, str] = {}
        if self._alive("slurmd"):
            out = self._run("scontrol", "listpids")
            for line in out.stdout.splitlines()[1:] if out.returncode == 0 else []:
                fields = line.split()
                if fields and fields[0].isdigit() and fields[0] != "-1":
                    found[int(fields[0])] = _start_time(int(fields[0]))
        marker = f"SLURM_CONF={self.conf}".encode()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    environ = (proc / "environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if marker in environ and any(v.startswith(b"SLURM_JOB_ID=") for v in environ):
                    found[int(proc.name)] = _start_time(int(proc.name))
        found = {pid: started for pid, started in found.items() if started}
        if found:
            (self.root / "jobs.kbm-pids").write_text("".join(f"{p} {t}\n" for p, t in sorted(found.items())))
        return found

    def _stop_daemons(self) -> None:
        for daemon in reversed(DAEMONS):
            pid = self._pid(daemon)
            if pid is None:
                continue
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + 10
                while self._alive(daemon) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not self._alive(daemon):
                    break
            (self.root / f"{daemon}.kbm-pid").unlink(missing_ok=True)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _kill_if_same(pid: int, started: str) -> None:
    """SIGKILL pid only while it is the process that was recorded (same start time): never a recycled pid."""
    if started and _start_time(pid) == started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.slurm_cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("root", type=Path, help="folder for the cluster's configuration, state and logs")
    p.add_argument("--gpus", type=int, default=2, help="fake GPUs on the node (default 2)")
    p.add_argument("--cpus", type=int, default=4, help="CPUs the node offers (default 4: more than --gpus, so the "
                   "GPU slots are what limits how many jobs run at once)")
    args = p.parse_args(argv)
    cluster = LocalSlurmCluster(args.root, cpus=args.cpus, gpus=args.gpus)
    if args.action == "down":
        cluster.stop()
        print(f"stopped the cluster in {cluster.root}", file=sys.stderr)
        return 0
    try:
        seconds = cluster.start()
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# a {args.gpus}-GPU single-node Slurm cluster is up in {seconds:.1f} s; stop it with "
          f"`python -m tooling.slurm_cluster down {cluster.root}`", file=sys.stderr)
    print(f"export SLURM_CONF={shlex.quote(str(cluster.conf))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
