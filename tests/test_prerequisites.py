"""The tests' own rule for what a machine lacks (tests/ci.py): a skip naming the command that provides it, a
failure under CI=true, decided in one place, and no test installing anything on the machine it runs on."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from runner.paths import REPO_ROOT

PROBE = """from tests.ci import missing


def test_needs_x():
    missing("x is not installed", "apt-get install -y x")
"""


def test_a_missing_prerequisite_skips_naming_the_fix_and_fails_under_ci(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(probe)]
    outcomes = {}
    for ci in ("", "true"):
        env = {**os.environ, "CI": ci, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        outcomes[ci] = proc.stdout
    assert "1 skipped" in outcomes[""]
    # reported at the test's own line, so -rs tells the skipped tests apart
    assert "test_probe.py:4: x is not installed; to run this test: apt-get install -y x" in outcomes[""]
    assert "1 failed" in outcomes["true"] and "CI must provide this: x is not installed" in outcomes["true"]


def test_no_test_file_reads_ci_or_installs_system_packages_itself():
    """CI is read by tests/ci.py alone; .ci/run installs the prerequisites, the tests never do (slurm-wlm installed
    by a test once brought libhwloc15 onto the machine and hid that CNTK's environment lacked it)."""
    offenders = []
    for path in sorted((REPO_ROOT / "tests").glob("*.py")):
        if path.name == "ci.py":
            continue
        text = path.read_text()
        reads_ci = re.search(r"""environ(\.get)?[(\[]\s*["']CI["']""", text)
        if reads_ci or re.search(r"""["']apt-get["'],\s*["']install""", text):
            offenders.append(path.name)
    assert offenders == []
