"""One rule for every test file: when a missing prerequisite is a failure (CI) rather than a skip, and how tests
start a runner they mean to interrupt."""

from __future__ import annotations

import os
import signal

TRUTHY = ("1", "true", "yes", "on")


def in_ci() -> bool:
    """CI=true (as .ci/run exports it), or any of the usual truthy spellings CI services use."""
    return os.environ.get("CI", "").strip().lower() in TRUTHY


def default_signals() -> None:
    """A preexec_fn for a runner a test will signal: SIGINT and SIGHUP back to their defaults. A suite started in
    the background (`make test &`) inherits them ignored, and Python keeps an inherited ignore, as it should."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
