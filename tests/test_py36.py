"""models/ runs inside the 2017 environments too, so it must compile on Python 3.6."""

from __future__ import annotations

import subprocess

import pytest

from runner.interpreters import InterpreterNotFound, find_python
from runner.paths import REPO_ROOT


def test_models_compile_on_python_36():
    try:
        python, version = find_python("3.6")
    except InterpreterNotFound as exc:
        pytest.skip(str(exc))
    files = sorted(str(p) for p in (REPO_ROOT / "models").glob("*.py"))
    code = "import sys, ast\nfor f in sys.argv[1:]:\n    compile(open(f).read(), f, 'exec', dont_inherit=True)\n"
    out = subprocess.run([python, "-c", code, *files], capture_output=True, text=True)
    assert out.returncode == 0, f"Python {version} cannot compile models/: {out.stderr}"
    assert len(files) >= 9
