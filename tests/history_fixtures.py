"""What the history tests share (registered in conftest.py, session-scoped):

- `real_runs`: two real smoke runs of the JAX and PyTorch MLP (two repeats, then one; every repeat its own
  process); the first adds itself to its results folder's history at its end, the second runs with --no-history;
- `make_nights`: copies of a real run made into consecutive nights (new run ids, times and commits; every time
  scaled by a seeded night factor and, from a given night on, a slowdown), real result files that pass the
  contract, as a series of nightly runs would leave them;
- `postgres`: a real PostgreSQL server (Debian's binaries: initdb + pg_ctl as a non-root user, in a temporary
  folder, on a free loopback port), stopped by its pid at the end of the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from runner.paths import REPO_ROOT
from tests.ci import in_ci
from tests.fixtures import the_run

TIMES = ("first_epoch_s", "steady_epoch_s", "compile_s", "article_epoch_s", "build_fn_s")
NIGHT_CV, OWN_CV = 0.04, 0.03  # between nights, and between a night's repeats


def kbm(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m runner ARGS` in its own process, to its end."""
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def history(*args: str) -> subprocess.CompletedProcess:
    """`python -m runner history ARGS` in this process (the same main; a process start saved per call), with what
    it printed and its exit status, as `kbm` gives them."""
    from runner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["history", *args])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["history", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory, keras_home) -> dict:
    root = tmp_path_factory.mktemp("history")
    args = ["--profile", "smoke", "--only", "jax@keras", "--only", "torch@keras", "--model", "mlp", "--no-report",
            "--results", str(root / "results")]
    env = {"KERAS_HOME": str(keras_home), "KBM_HISTORY": ""}  # a user's KBM_HISTORY must not catch these runs
    first = kbm(*args, "--repeats", "2", timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    run1 = the_run(root / "results")
    second = kbm(*args, "--repeats", "1", "--no-history", timeout=900, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    (run2,) = [p for p in (root / "results").iterdir() if p.is_dir() and not p.is_symlink() and p != run1]
    return {"root": root, "results": root / "results", "runs": [run1, run2], "procs": [first, second]}


def scale_result(result: dict, factor: float) -> dict:
    for e in result["epochs"]:
        e["wall_s"] *= factor
    for key in TIMES:
        if result.get(key) is not None:
            result[key] *= factor
    if (result.get("timeline") or {}).get("fit_s") is not None:
        result["timeline"]["fit_s"] *= factor
    return result


def night_copy(base: Path, dest_root: Path, night: int, factors: list[float], host: dict | None = None) -> Path:
    """Night `night` of a series: the base run under a new run id, time and commit; the i-th result's times scaled
    by factors[i] (results in file order); `host` fields replaced where given (other hardware)."""
    when = datetime(2027, 1, 1, 2, 17, tzinfo=UTC) + timedelta(days=night)
    run_id = when.strftime("%Y%m%d-%H%M%S-") + f"{night:04x}"
    commit = hashlib.sha1(f"night {night}".encode()).hexdigest()
    dest = dest_root / run_id
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("logs", "report"))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = json.loads((dest / "run.json").read_text())
    (dest / "run.json").write_text(json.dumps({**manifest, "started_at": stamp, "git_commit": commit}))
    for i, path in enumerate(sorted(dest.glob("*/result.json"))):
        result = scale_result(json.loads(path.read_text()), factors[i])
        result.update(started_at=stamp, finished_at=stamp, git_commit=commit)
        result["host"]["load"]["busy"] = False  # the nights' noise is what is injected, not the base run's load
        result["host"].update(host or {})
        path.write_text(json.dumps(result))
    return dest


@pytest.fixture(scope="session")
def make_nights(real_runs):
    """make_nights(dest, count, slowdown_from=None, slowdown=1.15, seed=7, host_from=None, host=None) -> folders.
    The random factors do not depend on the slowdown: the same seed gives the same nights with and without it."""
    base = real_runs["runs"][0]
    results = len(list(base.glob("*/result.json")))

    def make(dest: Path, count: int, slowdown_from: int | None = None, slowdown: float = 1.15, seed: int = 7,
             host_from: int | None = None, host: dict | None = None) -> list[Path]:
        rng = np.random.default_rng(seed)
        dest.mkdir(parents=True, exist_ok=True)
        out = []
        for night in range(count):
            factor = (1 + NIGHT_CV * rng.standard_normal()) * (1 + OWN_CV * rng.standard_normal(results))
            if slowdown_from is not None and night >= slowdown_from:
                factor = factor * slowdown
            other = host if host_from is not None and night >= host_from else None
            out.append(night_copy(base, dest, night, list(factor), other))
        return out

    return make


# -- a real PostgreSQL server ------------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                  if p.parent.name.isdigit() else 0)
    return next((d for d in reversed(dirs) if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def _as_user() -> tuple[list[str], int, int]:
    """PostgreSQL refuses to run as root: under root, the commands run as `postgres` (or `nobody`)."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return (["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"],
                user.pw_uid, user.pw_gid)
    pytest.fail("running as root and there is no postgres or nobody user to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    port: int
    user: str = "kbm"

    def url(self, database: str) -> str:
        """A new, empty database on the server, as a URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


def _stop(pid: int) -> None:
    """Fast shutdown by the postmaster's pid (SIGINT), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = pg_bindir()
    if bindir is None:
        message = ("PostgreSQL's server (initdb, pg_ctl) is not installed: "
                   "apt-get install -y postgresql (.ci/run installs it)")
        pytest.fail(message) if in_ci() else pytest.skip(message)
    prefix, uid, gid = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="kbm-postgres-"))
    os.chown(folder, uid, gid)
    data, port = folder / "data", free_port()
    run = [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "kbm", "-A", "trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(run, check=True, capture_output=True, timeout=120)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=30"
    start = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
             "-o", options, "start"]
    proc = subprocess.run(start, capture_output=True, text=True, timeout=120)
    pid = int((data / "postmaster.pid").read_text().split()[0]) if (data / "postmaster.pid").exists() else None
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr + (folder / "server.log").read_text()[-2000:]
        yield Postgres(port)
    finally:
        if pid:
            _stop(pid)
        shutil.rmtree(folder, ignore_errors=True)
