"""Cached virtualenvs: the embedded default executor, for machines without a container engine.

Each environment is created once under the cache, in a folder named by its matrix name and the hash of what it
installs, and reused while that hash holds: a second run of the matrix installs nothing. A folder without the
completion marker is a half-built environment and is removed, never reused. Check-and-build happens under a file
lock per environment (`<folder>.lock` beside it), so two runs sharing the cache never build into one folder: the
second waits for the first's build and reuses it. Each cell runs as its own process group, so a timeout or Ctrl-C
stops the worker and everything it spawned; the worker also gets the kernel's parent-death signal, so it dies
with the runner even when the runner is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import paths
from runner.debian import DebianError, unpack
from runner.executors.base import (
    CellHandle,
    CellJob,
    EnvironmentBuildError,
    EnvironmentUnavailable,
    Executor,
    PreparedEnv,
)
from runner.indexes import pip_index_args
from runner.interpreters import InterpreterNotFound, resolve
from runner.matrix import Environment, expand_env_dir

MARKER = ".kbm-env.json"
# Machine-local pip settings that make an old interpreter pick wheels built for newer Pythons.
PIP_LOCAL_VARS = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_CONFIG_FILE")


def venv_root() -> Path:
    return paths.cache_dir() / "venvs"


def venv_dir(name: str, env: Environment) -> Path:
    return venv_root() / f"{name}-{env.fingerprint()}"


PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the process that started it dies (Linux prctl; a no-op elsewhere).
    Set in the child before exec, so it holds even though the worker runs in a session of its own."""
    parent = os.getpid()

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return preexec


def pip_env(env: Environment) -> dict[str, str]:
    out = dict(os.environ)
    out.pop("PYTHONPATH", None)
    if env.pip_isolated:
        for var in PIP_LOCAL_VARS:
            out.pop(var, None)
        out["PIP_CONFIG_FILE"] = os.devnull
    return out


def unpack_debian(name: str, env: Environment, where: Path, log: Any, log_path: Path,
                  on_status: Callable[[str], None]) -> dict[str, Any]:
    """The environment's Debian packages and their dependencies, unpacked into `where/debian`; their provenance
    for the marker ({} when it has none)."""
    if not env.debian_packages:
        return {}
    on_status(f"{name}: fetching Debian packages {', '.join(env.debian_packages)} with their dependencies (less "
              f"the base system) into {where}")
    try:
        return unpack(env.debian_packages, env.library_links, where, log)
    except DebianError as exc:
        raise EnvironmentBuildError(f"{name}: {exc}; see {log_path}", log_path) from None


def write_marker(marker: Path, info: dict[str, Any], debian: dict[str, Any], started: float) -> None:
    """Written last, atomically: its presence means the environment is complete. `debian`: what was fetched, at
    which versions, and what was left to the base system (runner/debian.py)."""
    info["debian_packages"] = [p["deb"] for p in debian.get("packages", [])]
    if debian:
        info["debian"] = debian
    info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    info["build_s"] = round(time.perf_counter() - started, 1)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(marker)


class ProcessHandle(CellHandle):
    def __init__(self, proc: subprocess.Popen, log_handle: Any):
        self.proc = proc
        self.log_handle = log_handle
        self.extra: dict[str, Any] = {}  # what the launching executor adds to the result's `executor`

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.log_handle.close()
        return code

    def kill(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 5 s if anything is left."""
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the group can outlive its leader; make sure no child keeps running
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log_handle.close()

    def info(self) -> dict[str, Any]:
        return {"pid": self.proc.pid, **self.extra}


class VenvExecutor(Executor):
    name = "venv"

    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        where = venv_dir(name, env)
        try:
            found = resolve(env.python)
            python = env.python if found.version == env.python else f"{found.version} ({env.python})"
        except InterpreterNotFound:
            python = f"{env.python}: none on this host"
        plan: dict[str, Any] = {
            "environment": name,
            "location": str(where),
            "cached": (where / MARKER).exists(),
            "python": python,
            "installs": list(env.requirements) + [f"{r} (--no-deps)" for r in env.requirements_no_deps]
            + [f"(index {u})" for u in filter(None, [env.index_url])]
            + [f"(extra index {u})" for u in env.extra_index_urls],
            "debian_packages": list(env.debian_packages),
        }
        if env.debian_packages:  # resolved at build time: the closure depends on the mirror's state
            plan["installs"].append(f"(Debian packages {', '.join(env.debian_packages)} and their dependencies, "
                                    "less the base system, unpacked into the environment)")
        return plan

    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        try:
            interpreter = resolve(env.python)
        except InterpreterNotFound as exc:
            raise EnvironmentUnavailable(f"{name}: {exc}") from exc
        where = venv_dir(name, env)
        where.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(where.parent / f"{where.name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_status(f"{name}: another run is building {where}; waiting for it to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
            return self._check_and_build(name, env, where, interpreter.path, interpreter.version, started, on_status)

    def _check_and_build(
        self,
        name: str,
        env: Environment,
        where: Path,
        python: str,
        version: str,
        started: float,
        on_status: Callable[[str], None],
    ) -> PreparedEnv:
        """Reuse the environment if complete, else build it (the caller holds its lock)."""
        marker = where / MARKER
        if marker.exists():
            info = json.loads(marker.read_text())
            return PreparedEnv(name, env, str(where), True, time.perf_counter() - started, info)
        if where.exists():
            on_status(f"{name}: removing a half-built environment at {where}")
            shutil.rmtree(where)
        log_path = where.parent / f"{where.name}.install.log"
        on_status(f"{name}: creating a Python {version} virtualenv (log: {log_path})")
        with open(log_path, "w") as log:

            def step(args: list[str]) -> None:
                log.write(f"$ {' '.join(args)}\n")
                log.flush()
                code = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=pip_env(env)).returncode
                if code != 0:
                    raise EnvironmentBuildError(
                        f"{name}: `{' '.join(args[:4])} ...` failed with exit status {code}; see {log_path}", log_path
                    )

            def index_note(msg: str) -> None:
                log.write(msg + "\n")
                on_status(f"{name}: {msg}")

            try:
                step([python, "-m", "venv", str(where)])
                vpy = str(where / "bin" / "python")
                if env.pip_isolated:
                    step([vpy, "-m", "pip", "install", "--quiet", "pip<22"])
                on_status(f"{name}: installing {len(env.requirements)} requirements (log: {log_path})")
                indexes = pip_index_args(env.index_url, env.extra_index_urls, index_note)
                step([vpy, "-m", "pip", "install", "--disable-pip-version-check", *indexes, *env.requirements])
                if env.requirements_no_deps:  # their declared dependencies would bring what must stay out
                    step([vpy, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", *indexes,
                          *env.requirements_no_deps])
                debian = unpack_debian(name, env, where, log, log_path, on_status)
                freeze = subprocess.run([vpy, "-m", "pip", "freeze"], capture_output=True, text=True, env=pip_env(env))
            except BaseException:
                shutil.rmtree(where, ignore_errors=True)  # never leave a half-built environment to be reused
                raise
        info = {"environment": name, "fingerprint": env.fingerprint(), "python": version, "python_path": python,
                "python_wanted": env.python, "requirements": list(env.requirements),
                "requirements_no_deps": list(env.requirements_no_deps), "freeze": freeze.stdout.split()}
        write_marker(marker, info, debian, started)
        return PreparedEnv(name, env, str(where), False, time.perf_counter() - started, info)

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        python = Path(prepared.location) / "bin" / "python"
        if not python.exists():  # a dangling link: the interpreter the environment was made from is gone
            raise EnvironmentBuildError(
                f"{prepared.name}: the environment's interpreter {python} -> {os.path.realpath(python)} no longer "
                f"exists (its base Python was removed); delete {prepared.location} and rerun to rebuild it"
            )
        return launch_worker(str(python), prepared.location, job)


def launch_worker(python: str, env_dir: str, job: CellJob, pythonpath: tuple[str, ...] = ()) -> ProcessHandle:
    """Start `python -m <job.module> spec.json` as its own process group, output into the cell's log (shared by
    every executor whose cells are local processes: venv, existing interpreters); it dies with the runner."""
    env = dict(os.environ)
    env.update(expand_env_dir(job.env, env_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(paths.code_root()), *pythonpath])
    env.pop("VIRTUAL_ENV", None)
    log = open(job.log_path, "ab", buffering=0)
    env["KBM_LAUNCHED_AT"] = repr(time.time())
    proc = subprocess.Popen(
        [python, "-m", job.module, str(job.spec_path), *job.extra_args],
        cwd=paths.code_root(),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent(),
    )
    return ProcessHandle(proc, log)
