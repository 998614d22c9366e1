"""Where packages come from, and what the images are called.

PyTorch's CPU build comes from an extra index on any machine, and from the machine's own configuration where that
is how the machine works (here: a local wheel folder, PyTorch's index unreachable). The image tag the Kubernetes
dry-run names is the one the Docker executor builds, however the base image was obtained.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.executors.docker.images import resolve_recipe
from runner.executors.kubernetes import image_for
from runner.indexes import pip_index_args

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal, installable wheel (METADATA, WHEEL, RECORD and one module)."""
    dist = f"{name}-{version}.dist-info"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in files.items():
            zf.writestr(member, text)
    return path


@pytest.fixture
def cpu_index(tmp_path):
    """A PEP 503 simple index on 127.0.0.1 holding one `torch-2.13.0+cpu` wheel, as PyTorch's CPU index does."""
    root = tmp_path / "index"
    (root / "simple" / "torch").mkdir(parents=True)
    wheel = fake_wheel(root / "simple" / "torch", "torch", "2.13.0+cpu")
    href = wheel.name.replace("+", "%2B")
    (root / "simple" / "index.html").write_text('<a href="torch/">torch</a>\n')
    (root / "simple" / "torch" / "index.html").write_text(f'<a href="{href}">{wheel.name}</a>\n')

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def bare_machine_env(tmp_path: Path) -> dict[str, str]:
    """A machine whose pip has no local wheels or extra indexes: only PyPI, where torch is the CUDA build."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=str(tmp_path / "pipc"))
    return env


def test_the_extra_index_brings_the_cpu_build_to_a_machine_without_local_wheels(cpu_index, tmp_path):
    args = pip_index_args(None, [cpu_index])
    assert args == ["--extra-index-url", cpu_index]
    dest = tmp_path / "got"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest), *args,
                           "torch==2.13.0+cpu"], env=bare_machine_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [p.name for p in dest.iterdir()] == ["torch-2.13.0+cpu-py3-none-any.whl"]


def test_without_a_reachable_cpu_index_the_pin_fails_loudly_instead_of_pulling_cuda(tmp_path):
    notes: list[str] = []
    args = pip_index_args(None, ["http://cpu-index.example.invalid/whl/cpu"], notes.append)
    assert args == [] and "left out" in notes[0] and "cpu-index.example.invalid" in notes[0]
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path / "got"),
                           "torch==2.13.0+cpu"], env=bare_machine_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "torch==2.13.0+cpu" in proc.stderr
    assert not (tmp_path / "got").exists() or not list((tmp_path / "got").iterdir())


def test_a_users_pip_index_url_wins_over_the_matrix(monkeypatch):
    notes: list[str] = []
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example.com/simple")
    assert pip_index_args("https://pypi.example.com/simple", [], notes.append) == []
    assert "PIP_INDEX_URL" in notes[0]


def test_the_docker_flavours_take_their_own_indexes(matrix):
    torch = matrix.environments["keras3-torch"]
    cpu, gpu = resolve_recipe("keras3-torch", torch, "cpu"), resolve_recipe("keras3-torch", torch, "gpu")
    assert cpu.extra_index_urls == (CPU_INDEX,) and cpu.wheels == ("torch==2.13.0+cpu",)
    assert gpu.extra_index_urls == () and "torch==2.13.0" in gpu.requirements  # PyPI's CUDA build


@pytest.mark.venv
def test_the_torch_environment_here_builds_from_the_machines_own_wheels_and_is_cpu_only(prepared):
    """This machine: PyTorch's index is unreachable, /opt/wheels (pip's find-links) holds torch 2.13.0+cpu."""
    env = prepared("keras3-torch")
    freeze = env.info["freeze"]
    assert "torch==2.13.0+cpu" in freeze
    assert not [p for p in freeze if p.lower().startswith(("nvidia-", "triton"))], freeze


# -- image names -----------------------------------------------------------------------------------------------


def test_the_dry_run_names_the_image_the_docker_executor_builds_under_make_engine(matrix, monkeypatch):
    """`make engine` sets KBM_BASE_IMAGE to its debootstrap base; the tag is the same as without it."""
    from tooling import engine

    jax = matrix.environments["keras3-jax"]
    monkeypatch.delenv("KBM_BASE_IMAGE", raising=False)
    in_dry_run = image_for("keras3-jax", jax, 0, None)
    monkeypatch.setenv("KBM_BASE_IMAGE", engine.base_image())
    built = resolve_recipe("keras3-jax", jax, "cpu")
    assert built.base_image == engine.base_image()  # it does build on the local base...
    assert built.tag == in_dry_run  # ...under the name the manifests use
    other = resolve_recipe("keras3-jax", jax.model_copy(update={"requirements": ["keras==3.15.0"]}), "cpu")
    assert other.tag != built.tag  # what the recipe declares still names the image
