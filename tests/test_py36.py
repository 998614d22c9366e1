"""models/ runs inside the 2017 environments too: it must compile, import and build every model on Python 3.6.

Compiling catches syntax (f-strings, walrus); importing catches what only fails at run time on 3.6 (a module
such as `dataclasses`, a stdlib call added later); building the five models under the real Keras 2.0.8 (the
cached `keras2017-theano` environment, Python 3.6) catches the rest, and checks each against the example's
parameter count.

models/native/ (the native twins) is left out on purpose: only the Keras 3 environments host it (Python >= 3.11,
whose syntax it uses), and the worker imports it only for a `driver: native` backend, inside a function
(tests/test_native.py checks that no module of models/ imports it at load time).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runner.executors.venv import VenvExecutor
from runner.interpreters import InterpreterNotFound, find_python
from runner.paths import REPO_ROOT
from tests.ci import FIX, missing

pytestmark = pytest.mark.py36  # needs a Python 3.6 (python3.6 on PATH or pyenv's 3.6.15)

EXPECTED = {"mlp": 669706, "cnn": 1199882, "cifar10_cnn": 1250858, "hrnn": 199434, "babi_rnn": 45836}
DATASETS = {"mlp": "mnist", "cnn": "mnist", "cifar10_cnn": "cifar10", "hrnn": "mnist", "babi_rnn": "babi_qa2"}


def python36() -> tuple[str, str]:
    try:
        return find_python("3.6")
    except InterpreterNotFound as exc:
        missing(f"the 2017 environments need Python 3.6: {exc}", FIX["python3.6"])


def test_models_compile_on_python_36():
    python, version = python36()
    files = sorted(str(p) for p in (REPO_ROOT / "models").glob("*.py"))  # not models/native/ (see above)
    code = "import sys\nfor f in sys.argv[1:]:\n    compile(open(f).read(), f, 'exec', dont_inherit=True)\n"
    out = subprocess.run([python, "-c", code, *files], capture_output=True, text=True)
    assert out.returncode == 0, f"Python {version} cannot compile models/: {out.stderr}"
    assert len(files) >= 9


@pytest.mark.venv
def test_models_import_and_build_under_keras_208_on_python_36(matrix, tmp_path):
    python36()
    env = VenvExecutor().prepare("keras2017-theano", matrix.environments["keras2017-theano"], print)
    python = os.path.join(env.location, "bin", "python")
    modules = sorted(p.stem for p in (REPO_ROOT / "models").glob("*.py") if p.stem != "__init__")
    variables = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KERAS_BACKEND": "theano",
                 "THEANO_FLAGS": "floatX=float32", "KERAS_HOME": str(tmp_path / "keras")}
    variables.pop("VIRTUAL_ENV", None)
    imports = subprocess.run([python, "-c", "import importlib, sys\nfor m in sys.argv[1:]:\n"
                              "    importlib.import_module('models.' + m)\nprint(sys.version_info[:2])", *modules],
                             cwd=REPO_ROOT, env=variables, capture_output=True, text=True, timeout=600)
    assert imports.returncode == 0, imports.stderr[-3000:]
    assert imports.stdout.strip().endswith("(3, 6)")
    out = tmp_path / "params.json"
    build = subprocess.run([python, "-m", "models.describe", str(out), "channels_first",
                            *(f"{m}:{d}" for m, d in DATASETS.items())],
                           cwd=REPO_ROOT, env=variables, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    described = json.loads(out.read_text())
    assert described["keras"] == "2.0.8" and described["backend"] == "theano"
    assert described["params"] == EXPECTED
