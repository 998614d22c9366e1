"""`make gpu-bundle` and `make gpu-check BUNDLE=DIR`, for real: a bundle made here with pip for another Python than
the host's, installed with the network unreachable into a fresh interpreter standing in for a GPU image (its own
Python with JAX, NumPy, PyYAML and rich, as the images have them, and none of Keras, pydantic or SQLAlchemy), and
the smoke gpu-check run end to end there with --allow-cpu. Bad bundles and wrong interpreters exit 2 naming the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from runner import interpreters
from runner.bundle_run import _fallback_satisfies, plan_install, unpack_wheel
from runner.paths import REPO_ROOT
from tests.ci import missing

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"
TARGET = "3.13" if HOST == "3.12" else "3.12"  # another Python than the host's, as a GPU image often has
# what the stand-in image has besides its Python: the framework and what such images ship with it
IMAGE = ["jax==0.10.2", "jaxlib==0.10.2", "numpy==2.4.6", "pyyaml==6.0.3", "rich==14.2.0"]
# what the first GPU run had to install by hand (issue 29), which the bundle must carry
NEEDED = {"keras", "namex", "optree", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
          "sqlalchemy", "docker", "optax"}  # fmt: skip


def offline(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command with no network: a network namespace of its own where `unshare -n` is allowed, else every
    index and proxy pointing at a closed port (pip and urllib then fail as offline)."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *argv], {}
    dead = "http://127.0.0.1:9"
    return argv, {"PIP_NO_INDEX": "1", "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead,
                  "HTTPS_PROXY": dead, "no_proxy": "", "NO_PROXY": ""}  # fmt: skip


@pytest.fixture(scope="module")
def target_python() -> str:
    found = interpreters.pyenv_interpreter(TARGET)
    if found is None:
        missing(f"no Python {TARGET} here", f"pyenv install {TARGET} (https://github.com/pyenv/pyenv#installation)")
    return found.path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """`make gpu-bundle` for the target Python, with the package index (made once for this file's tests)."""
    out = tmp_path_factory.mktemp("bundle") / "gpu-bundle"
    proc = subprocess.run(["make", "-s", "gpu-bundle", f"BUNDLE={out}", f"GPU_PY_VERSION={TARGET}", "ARGS=--tar"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory, target_python) -> str:
    """A fresh interpreter of the target Python standing in for a GPU image's own python3."""
    root = tmp_path_factory.mktemp("image") / "python"
    subprocess.run([target_python, "-m", "venv", str(root)], check=True)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--only-binary=:all:", *IMAGE],
                   check=True, timeout=1200)  # fmt: skip
    return str(root / "bin" / "python")


def test_the_bundle_carries_the_closure_of_the_pins_for_the_target_and_no_framework(bundle, matrix):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"]["python_version"] == TARGET
    names = {p["name"]: p for p in manifest["packages"]}
    assert NEEDED <= set(names), NEEDED - set(names)
    assert not {"jax", "jaxlib", "torch", "tensorflow", "kubernetes", "psycopg"} & set(names)
    # KerasHub for the keras.io suite, alone as the environments install it: none of its own dependencies
    # (kagglehub, tensorflow-text) come with it, and what `import keras_hub` needs (regex, tokenizers) does
    hub = matrix.environments["keras3-jax"].pins["keras-hub"]
    assert names["keras-hub"]["version"] == hub and names["keras-hub"]["roles"] == ["keras.io suite (--no-deps)"]
    assert {"regex", "tokenizers"} <= set(names) and not {"kagglehub", "tensorflow-text"} & set(names)
    assert {"jax", "jaxlib", "kubernetes", "psycopg"} <= set(manifest["not_carried"])
    assert names["keras"]["version"] == matrix.environments["keras3-jax"].keras and names["keras"]["pinned"]
    # one wheel per package, each built for the target (or for any Python)
    wheels = sorted(p.name for p in (bundle / "wheels").glob("*.whl"))
    assert len(wheels) == len(names) + 1  # and the project's own
    cp = f"cp{TARGET.replace('.', '')}"
    assert all(f"-{cp}-" in w or "-py3-none-" in w or "-py2.py3-none-" in w or "-abi3-" in w for w in wheels), wheels
    assert any(w.startswith("keras_backend_matrix-") for w in wheels)
    # every file summed, MNIST with the matrix's own pin; SHA256SUMS as sha256sum -c reads it
    mnist = matrix.data.mnist_offline_wheel
    assert manifest["sha256"][manifest["mnist"]["file"]] == mnist.sha256
    check = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=bundle, capture_output=True,
                           text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert (bundle / "gpu-check.py").read_bytes() == (REPO_ROOT / "runner" / "bundle_run.py").read_bytes()


def test_postgres_carries_psycopg_for_a_fleets_shared_history(matrix, tmp_path):
    """A nightly recording into a shared PostgreSQL history needs psycopg on the GPU machine: `--postgres` carries
    it (and its binary wheel for the target); without it psycopg stays out, as the Kubernetes client always does."""
    from runner.bundle import DEFAULT_PLATFORM, Resolver, not_carried, platform_tags, project_pins

    plain, _ = project_pins(REPO_ROOT / "matrix.yaml")
    roots, pins = project_pins(REPO_ROOT / "matrix.yaml", not_carried(postgres=True))
    assert not [r for r, _ in plain if r.startswith("psycopg")]
    wanted = [(r, role) for r, role in roots if r.startswith("psycopg")]
    assert wanted and "psycopg" not in not_carried(postgres=True) and "kubernetes" in not_carried(postgres=True)
    resolver = Resolver(pins, TARGET, platform_tags([DEFAULT_PLATFORM]), tmp_path, not_carried(postgres=True))
    packages = resolver.resolve(wanted)
    assert {"psycopg", "psycopg-binary"} <= set(packages), sorted(packages)
    assert packages["psycopg"].version == pins["psycopg"]
    assert f"cp{TARGET.replace('.', '')}" in packages["psycopg-binary"].file


def test_gpu_check_runs_offline_from_the_bundle_alone_in_a_fresh_interpreter(bundle, image, keras_home, tmp_path):
    """The one command on a machine without an index: verify, install what the image lacks, run the smoke check."""
    argv, env = offline(["make", "-s", "gpu-check", f"BUNDLE={bundle}", "PROFILE=smoke", "ALLOW_CPU=1",
                         f"GPU_PYTHON={image}", f"ARGS=--results {tmp_path / 'results'}", f"VENV={tmp_path / 'no'}"])
    env = {**os.environ, **env, "KBM_CACHE": str(tmp_path / "cache"), "KERAS_HOME": str(tmp_path / "keras")}
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert not (tmp_path / "no").exists()  # no .venv built: the machine's python3 alone
    err = proc.stderr
    assert "sha256 verified" in err and "(no index)" in err
    assert "numpy 2.4.6: the interpreter's own" in err  # the image's NumPy serves, never shadowed
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "results" / "latest").glob("*/result.json"))]
    assert {(r["cell"]["model"], r["cell"]["backend"], r["status"]) for r in results} == {
        (m, b, "ok") for m in ("mlp", "cnn", "hrnn") for b in ("jax", "jax-native")}
    assert all(r["versions"]["python"].startswith(TARGET + ".") for r in results)
    assert all(r["data"]["source"] == "offline-wheel" for r in results)  # MNIST from the bundle, no network
    keras_cells = [r for r in results if r["cell"]["backend"] == "jax"]
    assert all(r["versions"]["keras"] == "3.15.1" for r in keras_cells)
    assert "optax" in next(r for r in results if r["cell"]["backend"] == "jax-native")["versions"]
    assert "--allow-cpu" in (tmp_path / "results" / "latest" / "gpu-check.md").read_text()
    # the keras.io suite from the same bundle (its KerasHub carried without dependencies): Gemma trains and generates
    argv, _ = offline(["make", "-s", "gpu-check", f"BUNDLE={bundle}", "PROFILE=smoke", "ALLOW_CPU=1",
                       f"GPU_PYTHON={image}", f"ARGS=--results {tmp_path / 'suite'} --model gemma",
                       f"VENV={tmp_path / 'no'}"])
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (suite,) = [json.loads(p.read_text()) for p in (tmp_path / "suite" / "latest").glob("*/result.json")]
    assert (suite["cell"]["model"], suite["cell"]["backend"], suite["status"]) == ("gemma", "jax", "ok")
    assert suite["suite"]["keras_hub"] == "0.32.0" and suite["suite"]["generate"]["runs"]


def test_the_bundles_own_copy_installs_the_project_from_a_tarball_without_a_checkout(bundle, image, tmp_path):
    """`python3 BUNDLE/gpu-check.py` outside any checkout: the project's wheel is the code that runs."""
    tar = bundle.with_name(bundle.name + ".tar")
    assert tarfile.is_tarfile(tar)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with tarfile.open(tar) as archive:
        archive.extractall(elsewhere)
    runner = elsewhere / bundle.name / "gpu-check.py"
    argv, env = offline([image, str(runner), str(tar), "--install-only"])
    env = {**os.environ, **env, "KBM_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = proc.stdout.strip().splitlines()[-1]
    probe = ("import runner.gpu_check, keras, pydantic, sqlalchemy, history; "
             "print(runner.gpu_check.__file__, keras.__version__)")  # fmt: skip
    env.update(PYTHONPATH=site, KERAS_BACKEND="jax")
    out = subprocess.run([image, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0].startswith(site.split(os.pathsep)[0]) and out.stdout.split()[1] == "3.15.1"


def test_a_damaged_bundle_or_another_python_exits_2_naming_the_fix(bundle, tmp_path):
    """Checked before anything is installed; the Makefile builds no .venv for it either."""

    def check(where: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", "gpu-check", f"BUNDLE={where}", f"GPU_PYTHON={python}",
                               f"VENV={tmp_path / 'no'}"], cwd=REPO_ROOT, capture_output=True, text=True,
                              env={**os.environ, "KBM_CACHE": str(tmp_path / "cache")}, timeout=600)  # fmt: skip

    nothing = check(tmp_path / "nowhere")
    assert nothing.returncode == 2 and "no such folder or tarball" in nothing.stderr
    assert "make gpu-bundle" in nothing.stderr
    if HOST != TARGET:
        other = check(bundle)
        assert other.returncode == 2 and f"made for Python {TARGET}" in other.stderr
        assert f"GPU_PY_VERSION={HOST}" in other.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged, copy_function=os.link)  # hard links: no 150 MB copy
    victim = next((damaged / "wheels").glob("keras-*.whl"))
    data = victim.read_bytes()
    victim.unlink()  # a new file, not the shared inode
    victim.write_bytes(data[:-10])
    mnist = json.loads((damaged / "manifest.json").read_text())["mnist"]["file"]
    (damaged / mnist).unlink()
    bad = check(damaged)
    assert bad.returncode == 2, bad.stderr
    assert f"wheels/{victim.name}: sha256 differs" in bad.stderr and f"{mnist}: missing" in bad.stderr
    assert "Copy the bundle again" in bad.stderr
    assert not (tmp_path / "no").exists() and not (tmp_path / "cache" / "gpu-check").exists()


def test_a_lean_bundle_is_small_and_refuses_an_interpreter_that_lacks_what_it_left_out(image, tmp_path):
    """--lean leaves out what GPU images have (the image here has NumPy, PyYAML and rich, not pandas or matplotlib):
    gpu-check names what is missing before installing anything, and exits 2."""
    out = tmp_path / "lean"
    made = subprocess.run(["make", "-s", "gpu-bundle", f"BUNDLE={out}", f"GPU_PY_VERSION={TARGET}", "ARGS=--lean"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    left = {p["name"]: p for p in manifest["left_out"]}
    assert {"numpy", "pandas", "matplotlib", "pyarrow", "pillow"} <= set(left) and left["pyarrow"]["optional"]
    assert NEEDED <= {p["name"] for p in manifest["packages"]}
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 64 * 2**20  # what a device run carries
    argv, env = offline(["make", "-s", "gpu-check", f"BUNDLE={out}", f"GPU_PYTHON={image}", f"VENV={tmp_path / 'no'}"])
    proc = subprocess.run(argv, cwd=REPO_ROOT, env={**os.environ, **env, "KBM_CACHE": str(tmp_path / "cache")},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = " ".join(proc.stderr.split())
    assert "made with --lean" in said and "lacks matplotlib 3.11.2, pandas 3.1.1 (and what they need: " in said
    assert "pillow" in said and "numpy" not in said.split("lacks")[1] and "without --lean" in said
    assert not (tmp_path / "cache" / "gpu-check").exists()


def test_an_interpreter_without_pip_gets_the_wheels_unpacked_as_pip_would(bundle, tmp_path):
    """The fallback for a python3 without pip: files and the .data folder's purelib/platlib, metadata included."""
    for wheel in (bundle / "wheels").glob("*.whl"):
        if wheel.name.startswith(("keras-", "namex-", "sqlalchemy-")):
            unpack_wheel(wheel, tmp_path)
    assert (tmp_path / "keras" / "__init__.py").is_file() and (tmp_path / "namex").is_dir()
    assert (tmp_path / "sqlalchemy" / "__init__.py").is_file()
    from importlib.metadata import distributions

    found = {d.metadata["Name"].lower(): d.version for d in distributions(path=[str(tmp_path)])}
    assert found["keras"] == "3.15.1" and "namex" in found and "sqlalchemy" in found


def test_the_interpreters_own_packages_serve_where_compatible_and_numpy_is_never_shadowed():
    """plan_install on a manifest as make_bundle writes it: the machine's versions against every requirer."""
    manifest = {"packages": [
        {"name": "numpy", "version": "2.4.6", "never_shadow": True,
         "required_by": {"the project": "==2.4.6", "pandas 3.1.1": ">=2.0.2"}},
        {"name": "pydantic", "version": "2.13.4", "required_by": {"the project": "==2.13.4"}},
        {"name": "rich", "version": "14.2.0", "required_by": {"the project": "==14.2.0", "keras 3.15.1": ""}},
        {"name": "typing-extensions", "version": "4.16.0", "required_by": {"pydantic 2.13.4": ">=4.14.1"}},
        {"name": "namex", "version": "0.1.0", "required_by": {"keras 3.15.1": ""}},
    ]}  # fmt: skip
    have = {"numpy": "1.26.4", "pydantic": "1.10.13", "rich": "14.0.0", "typing-extensions": "4.12.2", "namex": None}
    install, notes = plan_install(manifest, have)
    assert [p["name"] for p in install] == ["pydantic", "typing-extensions", "namex"]
    said = "\n".join(notes)
    assert "numpy 1.26.4: the interpreter's own, though" in said  # asked for 2.x, kept: the frameworks need it
    assert "rich 14.0.0: the interpreter's own" in said  # the pin's major version: compatible
    assert "pydantic 1.10.13 does not satisfy ==2.*" in said


@pytest.mark.parametrize(("version", "spec", "ok"), [
    ("2.4.6", ">=2.0.2", True), ("1.26.4", ">=2.0", False), ("4.3.0", "~=4.1", True), ("5.0", "~=4.1", False),
    ("2.13.4", "==2.*", True), ("1.10.13", "==2.*", False), ("2.46.4", "==2.46.4", True), ("3.0", "<3,>=1.26", False),
    ("2.0.0rc1", ">=1.21.2", True), ("0.4.5", "!=0.4.5", False),
])  # fmt: skip
def test_the_fallback_comparison_agrees_with_packaging(version, spec, ok):
    """For an interpreter without packaging or pip: release numbers compared as PEP 440 does for these operators."""
    from packaging.specifiers import SpecifierSet

    assert _fallback_satisfies(version, spec) is ok
    assert SpecifierSet(spec).contains(version, prereleases=True) is ok
