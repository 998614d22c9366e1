"""A private Docker engine for machines without one: `python -m tooling.engine start|stop|env|status`.

Used by `make engine` / `make engine-stop` and by .ci/run, so contributors and CI start it the same way. It runs
Debian's `dockerd` as root on its own socket with its own data root (kept under the cache, so built images survive
between runs), exec root and pid file; no default bridge (`--bridge none`: no docker0) and no iptables or NAT
rules (builds use the host's network, cells run with none). Stopping it touches only what it recorded: the
dockerd pid it started (checked against the command line it started), its containerd by the pid file under its
own exec root, the shims serving that exec root, and mounts below its own folders; never a network interface or
another engine's process, so a system Docker beside it keeps running. The base image is made without a registry:
debootstrap (minbase + Python 3) from the host's apt mirror, tarball cached under the cache, `docker import`ed.
Prints the `export DOCKER_HOST=... KBM_BASE_IMAGE=...` lines the executor and the tests read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner import paths

RUN_DIR = Path(os.environ.get("KBM_ENGINE_RUN", "/run/kbm-docker"))  # exec root, socket, pid file: short paths
SUITE = "bookworm"
INCLUDE = "python3,python3-pip,python3-venv,ca-certificates"
BASE_REPO = "kbm/base"
READY_S = 30.0


class EngineError(RuntimeError):
    """The engine cannot start or stop here; the message says why and what to do."""


def state_dir() -> Path:
    return paths.cache_dir() / "docker"


def socket_path() -> Path:
    return RUN_DIR / "docker.sock"


def docker_host() -> str:
    return f"unix://{socket_path()}"


def pid_file() -> Path:
    return RUN_DIR / "dockerd.pid"


def base_key() -> str:
    return hashlib.sha256(f"{SUITE}:minbase:{INCLUDE}".encode()).hexdigest()[:10]


def base_image() -> str:
    return f"{BASE_REPO}:{SUITE}-{base_key()}"


def base_tarball() -> Path:
    return state_dir() / f"base-{SUITE}-minbase-{base_key()}.tar"


def apt_mirror() -> str:
    """The host's Debian mirror (deb822 or one-line sources), so debootstrap goes where apt-get goes."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for src in sources:
        if not src.is_file() or not (src.suffix in (".list", ".sources") or src.name == "sources.list"):
            continue
        text = src.read_text(errors="replace")
        if src.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
                )
                suites = fields.get("Suites", "").split()
                if SUITE in suites and "deb" in fields.get("Types", "").split():
                    return fields["URIs"].split()[0].strip()
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and SUITE in parts:
                    return next(p for p in parts[1:] if "://" in p)
    return "http://deb.debian.org/debian"


def _client(timeout: float = 5.0):
    import docker

    return docker.DockerClient(base_url=docker_host(), timeout=timeout)


def answers(timeout: float = 2.0) -> bool:
    if not socket_path().exists():
        return False
    try:
        return bool(_client(timeout).ping())
    except Exception:  # noqa: BLE001 - any failure to answer means "not running"
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pid() -> int | None:
    """Our dockerd's pid: from our pid file, and only while that process is the dockerd we started (its command
    line names our pid file), so a recycled pid is never signalled."""
    try:
        pid = int(pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if str(pid_file()) in _cmdline(pid) else None


DAEMON_FLAGS = ("--bridge", "none", "--iptables=false", "--ip-masq=false")  # nothing on the host's network


def start(log=print) -> None:
    """Start the engine (if not already answering) and make sure the base image is there."""
    start_daemon(log)
    ensure_base_image(log)


def start_daemon(log=print) -> None:
    """Start dockerd on our socket unless it already answers; no base image (see `start`)."""
    if answers():
        log(f"engine already running at {docker_host()}")
    else:
        if os.geteuid() != 0:
            raise EngineError("starting a private dockerd needs root: run `sudo make engine` (or use your own engine)")
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise EngineError("no dockerd on PATH: `apt-get install -y docker.io debootstrap` (Debian/Ubuntu)")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        state_dir().mkdir(parents=True, exist_ok=True)
        log_path = state_dir() / "dockerd.log"
        args = [
            dockerd,
            "--data-root",
            str(state_dir() / "data-root"),
            "--exec-root",
            str(RUN_DIR / "exec"),
            "--pidfile",
            str(pid_file()),
            "--host",
            docker_host(),
            "--storage-driver",
            "overlay2",
            *DAEMON_FLAGS,
            "--log-level",
            "warn",
        ]
        with open(log_path, "ab") as handle:
            subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_S
        while not answers():
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise EngineError(f"dockerd did not answer within {READY_S:.0f} s; its log ({log_path}):\n{tail}")
            time.sleep(0.2)
        log(f"engine started at {docker_host()} (pid {_pid()}, log {log_path})")


def build_base_tarball(log=print) -> Path:
    """debootstrap minbase + Python 3 from the host's mirror into a tarball, cached (about 90 s the first time)."""
    tarball = base_tarball()
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise EngineError("no debootstrap on PATH: `apt-get install -y debootstrap`")
    mirror = apt_mirror()
    rootfs = state_dir() / f"rootfs-{base_key()}"
    shutil.rmtree(rootfs, ignore_errors=True)
    log_path = state_dir() / "debootstrap.log"
    log(f"building the base image tarball with debootstrap from {mirror} (log {log_path})")
    started = time.perf_counter()
    with open(log_path, "w") as handle:
        code = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(rootfs), mirror],
            stdout=handle,
            stderr=subprocess.STDOUT,
        ).returncode
    if code != 0:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise EngineError(f"debootstrap failed (exit {code}); see {log_path}")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / junk).glob("*"):
            if item.is_file():
                item.unlink()
    tmp = tarball.with_suffix(".tmp")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tmp), "."], check=True)
    tmp.replace(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)
    log(f"base tarball {tarball} ({tarball.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    return tarball


def ensure_base_image(log=print) -> str:
    """Import the cached tarball as kbm/base:<suite>-<key> unless the engine already has it."""
    import docker

    client = _client(timeout=600)
    tag = base_image()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    tarball = build_base_tarball(log)
    repo, _, version = tag.partition(":")
    client.api.import_image_from_file(str(tarball), repository=repo, tag=version)
    log(f"imported {tarball.name} as {tag}")
    return tag


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.2)
    return False


def _stop_pid(pid: int, what: str, log) -> None:
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, grace):
            log(f"stopped {what} (pid {pid})")
            return
    log(f"warning: {what} (pid {pid}) did not exit")


def stop(log=print) -> None:
    """Stop dockerd by its pid, then its containerd and shims (by pid file / exec root), and clean up."""
    exec_root = RUN_DIR / "exec"
    containerd_pid_file = exec_root / "containerd" / "containerd.pid"
    try:
        containerd_pid: int | None = int(containerd_pid_file.read_text().strip())
    except (OSError, ValueError):
        containerd_pid = None
    if containerd_pid is not None and str(exec_root) not in _cmdline(containerd_pid):
        containerd_pid = None  # not the containerd our dockerd started (gone, its pid reused)
    pid = _pid()
    if pid is None:
        log("no engine running (no live pid in %s)" % pid_file())
    else:
        _stop_pid(pid, "dockerd", log)
    if containerd_pid is not None:
        _stop_pid(containerd_pid, "containerd", log)
    for proc in Path("/proc").iterdir():  # shims of this engine only: their command line names our exec root
        if not proc.name.isdigit():
            continue
        cmdline = _cmdline(int(proc.name))
        if "containerd-shim" in cmdline and str(RUN_DIR) in cmdline:
            _stop_pid(int(proc.name), "containerd-shim", log)
    _unmount_under(RUN_DIR)
    _unmount_under(state_dir() / "data-root")
    shutil.rmtree(RUN_DIR, ignore_errors=True)  # our exec root, socket and pid file; no interface was ever made


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever the engine left mounted below root (netns files, overlay layers), deepest first."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    prefix = str(root).rstrip("/") + "/"
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def env_lines() -> str:
    return f"export DOCKER_HOST={shlex.quote(docker_host())}\nexport KBM_BASE_IMAGE={shlex.quote(base_image())}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tooling.engine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=["start", "stop", "env", "status", "base-image"])
    args = p.parse_args(argv)
    say = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - stdout carries only the export lines
    try:
        if args.action == "start":
            start(say)
            print(env_lines())
        elif args.action == "stop":
            stop(say)
        elif args.action == "env":
            print(env_lines())
        elif args.action == "base-image":
            print(build_base_tarball(say))
        else:
            up = answers()
            say(f"engine at {docker_host()}: {'answering' if up else 'not running'} (pid {_pid()})")
            return 0 if up else 1
    except EngineError as exc:
        say(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
