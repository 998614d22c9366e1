"""Fault injection for the runner's fault-tolerance tests: real crashes in a real worker process.

With KBM_TESTING=1 (the switch the tests set; a user's stray KBM_FAULT alone does nothing),
KBM_FAULT="<kind>@<model>[@<stage>]" (several separated by commas) makes the worker for that model fail when
it enters that stage (default: `start`, before any framework import; `inference-call`: before each inference
measurement, caught there as a backend that cannot predict would be). Kinds: raise (an exception), abort
(SIGABRT, as a segfault would end it), exit (status 3 without a result), hang (sleeps past any timeout), oom
(allocates until the memory limit stops it). Unset, this costs one dictionary lookup per stage. Python 3.6 compatible.
"""
import os
import time

KINDS = ("raise", "abort", "exit", "hang", "oom")
TEST_SWITCH = "KBM_TESTING"


def enabled(environ=None):
    """Faults act only when the runner was started for tests (KBM_TESTING=1) and KBM_FAULT names some."""
    env = os.environ if environ is None else environ
    return env.get(TEST_SWITCH) == "1" and bool(env.get("KBM_FAULT"))


def maybe_inject(stage, model):
    if not enabled():
        return
    spec = os.environ["KBM_FAULT"]
    for item in spec.split(","):
        parts = item.strip().split("@")
        kind = parts[0]
        target = parts[1] if len(parts) > 1 else None
        at = parts[2] if len(parts) > 2 else "start"
        if kind in KINDS and target == model and at == stage:
            _fail(kind, stage)


def _fail(kind, stage):
    if kind == "raise":
        raise RuntimeError("injected fault in stage %s" % stage)
    if kind == "abort":
        os.abort()
    if kind == "exit":
        os._exit(3)
    if kind == "hang":
        while True:
            time.sleep(3600)
    if kind == "oom":
        hoard = []
        while True:
            hoard.append(bytearray(256 << 20))  # 256 MiB at a time, touched by bytearray's zero fill
