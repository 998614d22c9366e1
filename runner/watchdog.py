"""Stop what a run left running when the runner itself died without cleaning up (SIGKILL, the OOM killer).

A local worker dies with the runner by itself (the kernel's parent-death signal, runner/executors/venv.py); a
Slurm job, a container or a Kubernetes Job does not: it belongs to a scheduler or an engine. For those, the run
starts this small process in a session of its own, and tells it over a pipe how to stop each cell it launches.
The runner closes the pipe with `done` when it ends normally; if the pipe closes without it, the runner is gone
and the watchdog stops every cell it was told about, then exits. It never touches anything it was not told about.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, TextIO

from runner import paths


class Watchdog:
    """The runner's side: started on first use, fed one line per launched cell, told `done` at the end."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def watch(self, cleanup: dict[str, Any] | None) -> None:
        if cleanup is None:
            return
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "runner.watchdog"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C or a closed terminal must not take it down with the runner
                text=True,
                cwd=paths.REPO_ROOT,
            )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(cleanup) + "\n")
        self._proc.stdin.flush()

    def close(self) -> None:
        """The run ended normally (its cells are finished or stopped): the watchdog exits without acting."""
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write("done\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def stop(cleanup: dict[str, Any]) -> None:
    """Stop one cell as its executor said: a command (scancel), a container, or a Kubernetes Job."""
    if "argv" in cleanup:
        subprocess.run(cleanup["argv"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    elif "container" in cleanup:
        from runner.executors.docker import connect

        connect().containers.get(cleanup["container"]).remove(force=True)
    elif "k8s_job" in cleanup:
        from kubernetes import client, config

        config.load_kube_config()
        client.BatchV1Api().delete_namespaced_job(
            cleanup["k8s_job"], cleanup["namespace"], body=client.V1DeleteOptions(propagation_policy="Background")
        )


def main(stream: TextIO = sys.stdin) -> int:
    cleanups = []
    for line in stream:
        if line.strip() == "done":
            return 0
        try:
            cleanups.append(json.loads(line))
        except ValueError:
            continue
    for cleanup in cleanups:  # the pipe closed without `done`: the runner died
        try:
            stop(cleanup)
        except Exception:  # noqa: BLE001 - already gone, an engine that went away: try the next one
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
