"""Usable from a user's own project: `pip install` of the repository gives a `kbm` that runs from any folder.

For real: a fresh virtualenv, `pip install <checkout>` (the wheel is built as pip builds it for a user), then a
smoke cell of an example model run from an empty temporary folder, its results and report written there. The
environments come from the same cache as every other test (KBM_CACHE), so only the host side is installed anew.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import venv

import pytest

from common.results import Status, iter_results
from runner.paths import REPO_ROOT, cache_dir


def test_the_packages_runtime_pins_are_the_development_pins():
    """pyproject.toml's dependencies (what `pip install` brings) and requirements-host.txt (the .venv) agree."""
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {line.split("==")[0]: line for line in (REPO_ROOT / "requirements-host.txt").read_text().splitlines()
            if re.match(r"^[A-Za-z0-9]", line)}
    assert declared and all(pins.get(d.split("==")[0]) == d for d in declared), (declared, pins)


@pytest.mark.venv
def test_pip_install_gives_a_kbm_that_runs_a_model_file_from_any_folder(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    install = subprocess.run([*pip, str(REPO_ROOT)], capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    kbm = env_dir / "bin" / "kbm"
    project = tmp_path / "my-project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "examples" / "image_classifier.py", project / "my_model.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    helped = subprocess.run([str(kbm), "--help"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--model-file" in helped.stdout
    proc = subprocess.run([str(kbm), "--model-file", "my_model.py", "--profile", "smoke", "--only", "jax"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "not added to the history" not in proc.stdout + proc.stderr
    # the run joined the history beside the results, and the installed command reads it back
    assert (project / "results" / "history.sqlite").is_file()
    trend = subprocess.run([str(kbm), "history"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert trend.returncode == 0 and "my_model" in trend.stdout, trend.stdout[-2000:] + trend.stderr[-2000:]
    run = (project / "results" / "latest").resolve()
    ((_, result),) = list(iter_results(run))
    assert result.status is Status.ok and result.cell.model == "my_model"
    assert (run / "report" / "index.html").is_file() and (run / "model-files").is_dir()
    # the workers ran the installed package's models/, copied into the cache, never site-packages or this checkout
    copies = [p for p in (cache_dir() / "code").glob("*/models/worker.py")]
    assert any(c.read_text() == (REPO_ROOT / "models" / "worker.py").read_text() for c in copies)
