"""One rule for every test file: when a missing prerequisite is a failure (CI) rather than a skip, and how tests
start a runner they mean to interrupt.

A test that needs something the machine lacks (Docker, Slurm, Chromium, a Python version, root, debootstrap)
calls `missing(what, fix)`: on a developer's machine it skips, saying what is missing and the exact command that
provides it; under CI=true it fails, because CI (.ci/run) provides all of them and a skip there would hide a gap.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

import pytest

TRUTHY = ("1", "true", "yes", "on")
APT = "apt-get install -y --no-install-recommends"  # how each Debian prerequisite is installed, as root
# the exact command providing each prerequisite (.ci/run runs these on CI machines)
FIX = {
    "docker": f"{APT} docker.io debootstrap (as root; the tests start a private engine as `make engine` does)",
    "slurm": f"{APT} slurm-wlm (as root; the tests start a single-node cluster themselves)",
    "chromium": f"{APT} chromium (as root)",
    "python3.6": "pyenv install 3.6.15 (https://github.com/pyenv/pyenv#installation)",
    "debian": "run the tests on Debian or Ubuntu (apt-get and dpkg unpack the Debian packages)",
}


def in_ci() -> bool:
    """CI=true (as .ci/run exports it), or any of the usual truthy spellings CI services use."""
    return os.environ.get("CI", "").strip().lower() in TRUTHY


def missing(what: str, fix: str) -> NoReturn:
    """Skip (a developer's machine) or fail (CI) because `what` is not here; `fix` is the command providing it."""
    message = f"{what}; to run this test: {fix}"
    if in_ci():
        pytest.fail(f"CI must provide this: {message}")
    # reported at the test's own location (as a skip mark's is), not at this line, so `-rs` names each test
    raise pytest.skip.Exception(message, _use_item_location=True)


def need_root(what: str) -> None:
    """Tests that start daemons or make devices (a private dockerd, a Slurm cluster, mknod) run as root only."""
    if os.geteuid() != 0:
        missing(f"{what} needs root", "run the tests as root (`sudo make test`)")


def default_signals() -> None:
    """A preexec_fn for a runner a test will signal: SIGINT and SIGHUP back to their defaults. A suite started in
    the background (`make test &`) inherits them ignored, and Python keeps an inherited ignore, as it should."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
