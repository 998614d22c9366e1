"""Slurm: each cell is one `sbatch` job running the same worker in the same cached virtualenv.

The environment is built by the venv executor's `prepare` into the venv cache, which must sit on storage the
compute nodes share (set KBM_CACHE), as must the run folder (`--results`). The batch script, written into the
cell folder, records what the job was given (node, CUDA_VISIBLE_DEVICES, start and end times) in
`slurm-job.env` and runs `<env>/bin/python -m models.worker <cell>/spec.json`; its output goes to the cell's
worker.log. Resources come from the profile: gpus -> `--gres=gpu:N`, cpus -> `--cpus-per-task`,
memory_limit_gb -> `--mem`, timeout_s -> `--time` (whole minutes, Slurm's unit). Slurm owns the time limit, so
the time a job spends queued never counts against its cell.

Site options come from the environment: KBM_SLURM_PARTITION, KBM_SLURM_ACCOUNT, KBM_SLURM_OPTIONS (more sbatch
options, split like a shell would, never run through one), KBM_SLURM_POLL_S (how often a job's state is read).

A dry run needs no scheduler: it writes each cell's batch script and the sbatch command line it would submit
(`write_manifests`), whether or not the Slurm commands are on PATH, and says that it did not ask the cluster.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common.errors import BadInput
from common.timeutil import utc_compact
from runner import paths
from runner.cells import Cell, cell_variables, worker_spec
from runner.executors.base import CellHandle, CellJob, LaunchFailed, PolledHandle, PreparedEnv, signal_exit_status
from runner.executors.venv import VenvExecutor, venv_dir
from runner.matrix import ENV_NAME_RE, Matrix, expand_env_dir

JOB_FILE = "slurm-job.env"  # written by the job itself: what Slurm gave it
SCRIPT_FILE = "slurm-job.sh"
TOOLS = ("sbatch", "scontrol", "scancel")  # submit, watch, stop: a run needs all three
# A job still running this long past its time limit means Slurm did not enforce it: the runner cancels it.
BACKSTOP_GRACE_S = 300.0
# A busy controller may time out or fail a query: a job is declared lost only after this many misses in a row.
MAX_MISSES = 3
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
REASONS = {
    "TIMEOUT": "Slurm ended the job at its time limit",
    "OUT_OF_MEMORY": "Slurm killed the job for using more memory than --mem",
    "CANCELLED": "the job was cancelled (scancel, an administrator or a dependency)",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "BOOT_FAIL": "the node allocated to the job failed to boot",
    "DEADLINE": "the job missed its deadline",
}


class SlurmError(BadInput):
    """Slurm cannot be used from here; the message says what is missing and how to fix it."""


@dataclass
class SlurmOptions:
    """What differs between sites, from the environment (see the module docstring)."""

    partition: str | None = None
    account: str | None = None
    extra: list[str] = field(default_factory=list)
    poll_s: float = 1.0

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> SlurmOptions:
        env = os.environ if environ is None else environ
        try:
            extra = shlex.split(env.get("KBM_SLURM_OPTIONS", ""))
            poll = float(env.get("KBM_SLURM_POLL_S", "1.0"))
        except ValueError as exc:
            raise SlurmError(f"KBM_SLURM_OPTIONS / KBM_SLURM_POLL_S: {exc}; fix the variable") from None
        return cls(env.get("KBM_SLURM_PARTITION") or None, env.get("KBM_SLURM_ACCOUNT") or None, extra, poll)


def resource_args(spec: dict[str, Any]) -> list[str]:
    """sbatch options for what the cell's profile asks: GPUs, CPUs, memory, time (whole minutes, rounded up)."""
    res = spec.get("resources") or {}
    args = []
    if res.get("gpus"):
        args.append(f"--gres=gpu:{int(res['gpus'])}")
    if res.get("cpus"):
        args.append(f"--cpus-per-task={math.ceil(res['cpus'])}")
    if spec.get("memory_limit_gb"):
        args.append(f"--mem={math.ceil(spec['memory_limit_gb'] * 1024)}M")
    if spec.get("timeout_s"):
        args.append(f"--time={max(1, math.ceil(spec['timeout_s'] / 60))}")
    return args


def batch_script(python: str, job: CellJob, variables: dict[str, str]) -> str:
    """The job: record what Slurm gave it, run the worker, re-raise the worker's signal so Slurm records it."""
    bad = [key for key in variables if not re.match(ENV_NAME_RE, key)]
    if bad:  # matrix.yaml is validated on load; this guards every other caller
        raise ValueError(f"not variable names, refused in a batch script: {', '.join(map(repr, bad))}")
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(variables.items()))
    record = job.cell_dir / JOB_FILE
    argv = " ".join(shlex.quote(a) for a in (python, "-m", job.module, str(job.spec_path), *job.extra_args))
    return f"""#!/bin/bash
# Written by runner/executors/slurm.py for the cell in {shlex.quote(str(job.cell_dir))}.
unset VIRTUAL_ENV
{exports}export KBM_LAUNCHED_AT=$(date +%s.%N)
{{
  echo "job_id=${{SLURM_JOB_ID:-}}"
  echo "node=${{SLURMD_NODENAME:-$(hostname)}}"
  echo "cuda_visible_devices=${{CUDA_VISIBLE_DEVICES-unset}}"
  echo "job_gpus=${{SLURM_JOB_GPUS:-}}"
  echo "cpus_on_node=${{SLURM_CPUS_ON_NODE:-}}"
  echo "started_at=$KBM_LAUNCHED_AT"
}} > {shlex.quote(str(record))}
{argv}
code=$?
echo "ended_at=$(date +%s.%N)" >> {shlex.quote(str(record))}
echo "worker_exit=$code" >> {shlex.quote(str(record))}
if [ "$code" -gt 128 ] && [ "$code" -lt 160 ]; then
  trap - $((code - 128))
  kill -$((code - 128)) $$
fi
exit $code
"""


def parse_scontrol(text: str) -> dict[str, str]:
    """`scontrol show job -o` prints one line of Key=Value pairs."""
    return {m.group(1): m.group(2) for m in re.finditer(r"(\S+?)=(\S*)", text)}


def exit_status(state: str, exit_code: str) -> tuple[int, bool, str | None]:
    """(exit status as the orchestrator reads it, timed out, reason) for a finished job.

    Slurm's ExitCode is `status:signal`; a signal becomes a negative status, as for a local process.
    """
    status, _, sig = (exit_code or "0:0").partition(":")
    code = signal_exit_status(int(status or 0))  # a batch script that could not re-raise its worker's signal
    if sig and int(sig):
        code = -int(sig)
    reason = REASONS.get(state)
    if state == "COMPLETED":
        return code, False, None
    if state == "TIMEOUT":
        return code or -signal.SIGTERM, True, reason
    if code == 0:  # the job failed, whatever its script reported
        code = -signal.SIGKILL if state in ("OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL") else 1
    return code, False, reason if state != "FAILED" else None


def _epoch(stamp: str | None) -> float | None:
    """Slurm prints local times without a zone; None for Unknown/None."""
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


def read_job_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _slurm(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class SlurmJobHandle(PolledHandle):
    """One submitted job. Reads its state at most every `poll_s` seconds (scontrol, then sacct once purged)."""

    enforces_timeout = True  # Slurm applies --time from when the job starts, queue wait excluded

    def __init__(self, job_id: str, cell_dir: Path, submitted_at: float, limit_s: float | None, argv: list[str],
                 poll_s: float = 1.0):
        self.job_id, self.cell_dir, self.submitted_at = job_id, cell_dir, submitted_at
        self.limit_s, self.argv, self.poll_s = limit_s, argv, poll_s
        self.state = "PENDING"
        self.fields: dict[str, str] = {}
        self.misses = 0
        self.last_miss: str | None = None

    def _query(self) -> dict[str, str] | None:
        out = _slurm(["scontrol", "show", "job", "-o", self.job_id])
        if out.returncode == 0 and "JobState=" in out.stdout:
            return parse_scontrol(out.stdout)
        if shutil.which("sacct"):  # purged from the controller's memory: ask accounting, where a site has it
            acct = _slurm(["sacct", "-n", "-P", "-X", "-j", self.job_id, "-o", "State,ExitCode,NodeList,Start,End"])
            rows = [r.split("|") for r in acct.stdout.splitlines() if r.count("|") == 4]
            if acct.returncode == 0 and rows:
                state, code, node, start, end = rows[0]
                return {"JobState": state.split()[0], "ExitCode": code, "NodeList": node, "StartTime": start,
                        "EndTime": end}
        return None

    def _poll(self) -> None:
        try:
            fields = self._query()
            self.last_miss = None if fields is not None else "neither scontrol nor sacct knows it"
        except (OSError, subprocess.SubprocessError) as exc:  # scontrol timed out, or could not start
            fields, self.last_miss = None, f"{type(exc).__name__}: {exc}"
        if fields is None:
            self.misses += 1
            if self.misses >= MAX_MISSES:  # not a transient miss: the job is gone
                self.state = "UNKNOWN"
                self.code = 1
                self.reason = (
                    f"job {self.job_id} unknown to Slurm for {self.misses} queries in a row ({self.last_miss})"
                )
                try:  # should it still run somewhere, it must not run on unwatched
                    _slurm(["scancel", self.job_id], timeout=30)
                except (OSError, subprocess.SubprocessError):
                    pass
            return
        self.misses = 0
        self.fields = fields
        self.state = fields.get("JobState", "UNKNOWN").split()[0]
        if self.state in ENDED:
            self.code, self.timed_out, self.reason = exit_status(self.state, fields.get("ExitCode", "0:0"))
            if self.timed_out and fields.get("TimeLimit"):
                self.reason = f"{self.reason} (TimeLimit={fields['TimeLimit']})"
        elif self.state not in WAITING and self.limit_s:
            started = self._started_at()
            if started is not None and time.time() - started > self.limit_s + 60 + BACKSTOP_GRACE_S:
                self.kill()
                self.code, self.timed_out = -signal.SIGTERM, True
                self.reason = f"still running {BACKSTOP_GRACE_S:.0f} s past its time limit; cancelled by the runner"

    def _job(self) -> dict[str, str]:
        return read_job_file(self.cell_dir / JOB_FILE)

    def _started_at(self) -> float | None:
        stamp = self._job().get("started_at")
        return float(stamp) if stamp else _epoch(self.fields.get("StartTime"))

    def orphan_cleanup(self) -> dict[str, Any] | None:
        return {"argv": ["scancel", self.job_id]}

    def kill(self) -> None:
        """scancel, then wait (up to 30 s) until Slurm says the job has ended."""
        _slurm(["scancel", self.job_id])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                fields = self._query()
            except (OSError, subprocess.SubprocessError):
                time.sleep(0.5)
                continue
            if fields is None or fields.get("JobState", "").split()[0] in ENDED:
                if fields:
                    self.fields, self.state = fields, fields["JobState"].split()[0]
                return
            time.sleep(0.5)

    def _facts(self) -> dict[str, Any]:
        job = self._job()
        started = self._started_at()
        ended = float(job["ended_at"]) if job.get("ended_at") else _epoch(self.fields.get("EndTime"))
        return {
            "job_id": self.job_id,
            "state": self.state,
            "node": job.get("node") or self.fields.get("NodeList") or None,
            "cuda_visible_devices": job.get("cuda_visible_devices"),
            "submitted_at": self.submitted_at,
            "started_at": started,
            "ended_at": ended if self.state in ENDED else None,
            "queue_wait_s": round(started - self.submitted_at, 3) if started is not None else None,
            "exit_code": self.fields.get("ExitCode"),
            "sbatch": self.argv,
        }


class SlurmExecutor(VenvExecutor):
    """The venv executor's environments, with cells run as Slurm jobs instead of local processes."""

    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None, dry_run: bool = False):
        """A run needs Slurm's commands on PATH (SlurmError naming the fix, before anything is built); a dry run
        submits nothing and asks nothing, so it goes on without them."""
        self.missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        self.dry_run = dry_run
        if self.missing and not dry_run:
            raise SlurmError(
                f"--executor slurm: {', '.join(self.missing)} not found on PATH; run from a Slurm login node or put "
                "Slurm's commands on PATH (Debian: `apt-get install slurm-client`; `apt-get install slurm-wlm` and "
                "`make slurm-up` for a local single-node cluster), or see what would be submitted with --dry-run"
            )
        self.options = options or SlurmOptions.from_environ()

    def plan(self, name: str, env: Any) -> dict[str, Any]:
        plan = super().plan(name, env)
        plan["note"] = "a virtualenv the compute nodes must see: keep KBM_CACHE on shared storage"
        if self.dry_run:
            unseen = f" ({', '.join(self.missing)} not on PATH here)" if self.missing else ""
            plan["note"] += (f"; a dry run: the Slurm cluster was not checked{unseen}, nothing was submitted, "
                             "the batch scripts and sbatch lines are in the manifests folder")
        return plan

    @staticmethod
    def write_script(location: str, job: CellJob) -> Path:
        """The cell's batch script in its folder, as submitted: its variables with {env_dir} expanded."""
        variables = expand_env_dir(job.env, location)
        variables["PYTHONPATH"] = str(paths.code_root())
        script = job.cell_dir / SCRIPT_FILE
        script.write_text(batch_script(str(Path(location) / "bin" / "python"), job, variables))
        script.chmod(0o755)
        return script

    def write_manifests(self, matrix: Matrix, cells: list[Cell], data: str, timeout: float | None,
                        results_root: Path) -> Path:
        """--dry-run: each cell's batch script in a folder of its own and, in `sbatch.txt`, the command line that
        would submit it; no Slurm command runs."""
        folder = Path(results_root) / (utc_compact() + "-dry-run") / "slurm"
        lines = ["# what `--executor slurm` would submit, one sbatch per cell (a dry run: nothing was submitted and",
                 "# the cluster was not checked); a run writes each cell's spec.json beside its script first"]
        for cell in cells:
            spec = worker_spec(matrix, cell, data, timeout)
            cell_dir = folder / cell.id
            cell_dir.mkdir(parents=True)
            job = CellJob(cell_dir, cell_dir / "spec.json", cell_dir / "worker.log", cell_variables(matrix, cell))
            script = self.write_script(str(venv_dir(cell.environment, matrix.environments[cell.environment])), job)
            lines.append(shlex.join(self.sbatch_argv(job, spec, script)))
        (folder / "sbatch.txt").write_text("\n".join(lines) + "\n")
        return folder

    def sbatch_argv(self, job: CellJob, spec: dict[str, Any], script: Path) -> list[str]:
        site = []
        if self.options.partition:
            site.append(f"--partition={self.options.partition}")
        if self.options.account:
            site.append(f"--account={self.options.account}")
        return [
            "sbatch",
            "--parsable",
            f"--job-name=kbm-{spec.get('cell_id', job.cell_dir.name)}",
            f"--output={job.log_path}",
            f"--error={job.log_path}",
            "--open-mode=append",
            f"--chdir={paths.code_root()}",
            "--nodes=1",
            "--ntasks=1",
            "--export=ALL",
            *resource_args(spec),
            *site,
            *self.options.extra,
            str(script),
        ]

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        spec = json.loads(job.spec_path.read_text())
        script = self.write_script(prepared.location, job)
        argv = self.sbatch_argv(job, spec, script)
        submitted_at = time.time()
        try:
            out = _slurm(argv)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self._refused(job, argv, str(exc))
        if out.returncode != 0:
            return self._refused(job, argv, out.stderr.strip() or f"exit status {out.returncode}")
        job_id = out.stdout.strip().split(";")[0]
        limit = spec.get("timeout_s")
        return SlurmJobHandle(job_id, job.cell_dir, submitted_at, limit, argv, self.options.poll_s)

    @staticmethod
    def _refused(job: CellJob, argv: list[str], message: str) -> LaunchFailed:
        """sbatch refused the job (a bad partition, more GPUs than any node has): the cell fails alone, with why."""
        info = {"state": "REFUSED", "reason": f"sbatch refused the job: {message}", "sbatch": argv}
        return LaunchFailed(1, info, job.log_path, f"$ {shlex.join(argv)}\n{message}")
