"""The article's 2017 configurations for real: Python 3.6 virtualenvs with Keras 2.0.8 / 1.2.2 and their backends.

The environments are built in the venv cache on first use (one to two minutes each) and reused after. They need a
Python 3.6 interpreter (PATH or pyenv): without one these tests skip with the reason, except under CI=true, where
they fail (CI machines have pyenv's 3.6.15). Data comes from the format-exact fixtures in a temporary KERAS_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner import matrix_schema as matrix_module
from runner.debian import BASE_SYSTEM, Apt, DebianError, resolve, system_has_lists, unpack
from runner.executors import EnvironmentBuildError
from runner.executors.base import CellJob
from runner.executors.venv import MARKER, VenvExecutor
from runner.interpreters import InterpreterNotFound, find_python
from runner.matrix import Environment, MatrixError, expand_env_dir, load_matrix
from runner.paths import REPO_ROOT
from tests.ci import FIX, missing
from tests.fixtures import run_results, run_runner

pytestmark = [pytest.mark.venv, pytest.mark.py36]

EXPECTED = {"mlp": 669706, "cnn": 1199882, "cifar10_cnn": 1250858, "hrnn": 199434, "babi_rnn": 45836}
ENVS_2017 = ["keras2017-tf-cntk", "keras2017-mxnet", "keras2017-theano"]
FASTEST = "keras2017-mxnet"  # installs in about a minute; the Keras 1.2.2 spellings are the furthest from Keras 3


def need_python36() -> None:
    try:
        find_python("3.6")
    except InterpreterNotFound as exc:
        missing(f"the 2017 environments need Python 3.6: {exc}", FIX["python3.6"])


def need_debian() -> None:
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        missing("not a Debian host: no apt-get/dpkg to unpack CNTK's OpenMPI", FIX["debian"])


@pytest.fixture(scope="module")
def built(matrix):
    """Build (or reuse) a 2017 environment once per module."""
    cache: dict[str, object] = {}

    def get(name: str):
        need_python36()
        if matrix.environments[name].debian_packages:
            need_debian()
        if name not in cache:
            cache[name] = VenvExecutor().prepare(name, matrix.environments[name], print)
        return cache[name]

    return get


# -- the matrix: the 2017 entries and the fields they use ----------------------------------------------------------
def test_2017_environments_mirror_the_article(matrix):
    envs = matrix.environments
    assert envs["keras2017-tf-cntk"].backends == ["tensorflow1", "cntk"]  # one environment, as in the article
    assert envs["keras2017-mxnet"].keras == "1.2.2" and envs["keras2017-theano"].keras == "2.0.8"
    for name in [*ENVS_2017, "keras224-cntk-variant"]:
        assert envs[name].python == "3.6" and envs[name].pip_isolated
    assert {matrix.backends[b].data_format for b in ("cntk", "theano", "mxnet")} == {"channels_first"}
    assert matrix.backends["tensorflow1"].data_format == "channels_last"
    assert "{env_dir}" in envs["keras2017-tf-cntk"].env["LD_LIBRARY_PATH"]
    # the 2017 TensorFlow is its own backend entry (its own summary rows), of the tensorflow family (`--only`)
    assert matrix.environments_for("tensorflow") == ["keras3-tensorflow"]
    keras_side = [b for b in matrix.selected_by("tensorflow") if matrix.backends[b].driver == "keras"]
    assert keras_side == ["tensorflow", "tensorflow1"]  # and, beside them, TensorFlow's native twin


def test_new_fields_leave_existing_environment_hashes_alone():
    """Cached Keras 3 environments keep their folders: the hash is the one from before debian_packages existed."""
    import hashlib

    plain = Environment(python="3.11", keras="3", backends=["tensorflow"], requirements=["six==1.16.0"])
    before = json.dumps({"python": "3.11", "requirements": ["six==1.16.0"], "pip_isolated": False}, sort_keys=True)
    assert plain.fingerprint() == hashlib.sha256(before.encode()).hexdigest()[:12]
    with_debs = Environment(**{**plain.model_dump(), "debian_packages": ["libevent-pthreads-2.1-7"]})
    assert with_debs.fingerprint() != plain.fingerprint()


def test_environments_built_by_another_debian_method_are_rebuilt_not_reused(monkeypatch):
    """The hand-list method (no resolution in the hash) unpacked less than the closure does: its cached folders
    must not be taken for the new method's, nor those of any later change of method."""
    import hashlib

    env = Environment(python="3.6", keras="2.0.8", backends=["cntk"], requirements=["cntk==2.7.post2"],
                      debian_packages=["libopenmpi3"])
    hand_list = json.dumps({"python": "3.6", "requirements": ["cntk==2.7.post2"], "pip_isolated": False,
                            "debian_packages": ["libopenmpi3"], "library_links": {}}, sort_keys=True)
    now = env.fingerprint()
    assert now != hashlib.sha256(hand_list.encode()).hexdigest()[:12]
    monkeypatch.setattr(matrix_module, "DEBIAN_RESOLUTION", "a-later-method")
    assert env.fingerprint() != now


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("      - models: [hrnn, babi_rnn]\n", "      - models: [hrnn, babi_rnm]\n"),
        ('      OPAL_PREFIX: "{env_dir}/debian/usr"\n', '      OPAL_PREFIX: "{envdir}/debian/usr"\n'),
    ],
)
def test_bad_2017_fields_are_reported_with_their_line(tmp_path, patch, message):
    text = (REPO_ROOT / "matrix.yaml").read_text()
    assert patch in text
    bad = tmp_path / "matrix.yaml"
    bad.write_text(text.replace(patch, message, 1))
    line = text.splitlines().index(patch.rstrip("\n")) + 1
    with pytest.raises(MatrixError) as err:
        load_matrix(bad)
    assert f"{bad}:{line}" in str(err.value)
    assert "babi_rnn" in str(err.value) or "{env_dir}" in str(err.value)


def test_known_issue_matches_model_keras_version_and_profile():
    sys.path.insert(0, str(REPO_ROOT))
    from models.keras_driver import known_issue
    from models.worker import explain

    issue = {"models": ["hrnn"], "action": "explain", "reason": "slow  and\n wrapped", "keras": "2.0.",
             "profiles": None}
    spec = {"cell": {"model": "hrnn", "profile": "smoke"}, "backend": {"known_issues": [issue]}}
    assert known_issue(spec, "2.0.8") is issue
    assert known_issue(spec, "2.2.4") is None
    assert known_issue({**spec, "cell": {"model": "mlp", "profile": "smoke"}}, "2.0.8") is None
    assert known_issue({**spec, "backend": {"known_issues": [{**issue, "profiles": ["quick"]}]}}, "2.0.8") is None
    text = explain(issue, {"keras": "2.0.8", "cntk": "2.7", "numpy": "1.16.6", "keras_backend": "cntk"})
    assert text == "known issue (cntk 2.7, keras 2.0.8): slow and wrapped"


# -- the venv executor: Debian libraries unpacked into the environment, {env_dir} expanded at launch ---------------
def test_the_closure_brings_what_openmpi_needs_and_leaves_out_only_the_base_system(tmp_path):
    """Real apt, against an empty package database: the answer is the same whatever this machine has installed
    (a machine with Slurm has libhwloc15; it is fetched all the same), and only the minbase system is left out."""
    need_debian()
    with open(tmp_path / "apt.log", "w") as log:
        apt = Apt(tmp_path / "apt", log)
        if not system_has_lists():
            apt.use_private_lists()
        packages, left_out = resolve(["libopenmpi3"], apt)
        base = {p.name for p in apt.simulate(list(BASE_SYSTEM))}
    names = {p.name for p in packages}
    # CNTK's import needs libhwloc.so.15; OpenMPI links PMIx, libfabric, UCX, verbs and libevent besides
    assert {"libopenmpi3", "libhwloc15", "libevent-core-2.1-7", "libevent-pthreads-2.1-7", "libpmix2", "libfabric1",
            "libucx0", "libibverbs1"} <= names
    assert {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"} <= set(left_out) <= base
    assert not names & base and len(names) == len(packages)  # one version of each, none of the base system
    assert all(p.version and p.arch in ("amd64", "all", "arm64") for p in packages)


def test_a_package_apt_does_not_know_fails_naming_it_and_the_fix(tmp_path):
    need_debian()
    with open(tmp_path / "apt.log", "w") as log, pytest.raises(DebianError) as err:
        unpack(["kbm-no-such-package"], {}, tmp_path, log)
    assert "kbm-no-such-package" in str(err.value) and "debian_packages in matrix.yaml" in str(err.value)
    assert not (tmp_path / "debian").exists()


def test_debian_packages_are_unpacked_into_the_environment_and_linked(tmp_path, monkeypatch):
    need_debian()
    monkeypatch.setenv("KBM_CACHE", str(tmp_path / "cache"))
    env = Environment(
        python="3.11", keras="none", backends=["tensorflow"], requirements=["six==1.16.0"],
        debian_packages=["libevent-pthreads-2.1-7"],
        library_links={"usr/lib/x86_64-linux-gnu/libevent_pthreads.so.0": "libevent_pthreads-2.1.so.7"},
        env={"KBM_TEST_LIBDIR": "{env_dir}/debian/usr/lib/x86_64-linux-gnu"},
    )
    executor = VenvExecutor()
    prepared = executor.prepare("debs", env, print)
    libdir = Path(prepared.location) / "debian" / "usr" / "lib" / "x86_64-linux-gnu"
    link = libdir / "libevent_pthreads.so.0"
    assert link.is_symlink() and link.resolve().is_file()
    assert any(name.startswith("libevent-pthreads-2.1-7_") for name in prepared.info["debian_packages"])
    assert not (Path("/usr/lib/x86_64-linux-gnu") / "libevent_pthreads.so.0").exists()  # nothing system-wide
    # its dependency came too (libevent-core-2.1-7, not in the list), libc6 did not; the marker says what and how
    where = Path(prepared.location)
    debian = json.loads((where / MARKER).read_text())["debian"]
    fetched = {p["name"]: p for p in debian["packages"]}
    assert set(fetched) == {"libevent-pthreads-2.1-7", "libevent-core-2.1-7"}
    assert "libc6" in debian["left_to_base_system"]
    assert all(p["version"] and len(p["sha256"]) == 64 and p["bytes"] > 0 for p in fetched.values())
    assert debian["roots"] == ["libevent-pthreads-2.1-7"] and debian["resolution"] == matrix_module.DEBIAN_RESOLUTION
    assert (libdir / "libevent_core-2.1.so.7").exists()
    assert not (where / "debian-downloads").exists() and not (where / "debian-apt").exists()
    assert "Debian packages: 2 fetched" in (where.parent / f"{where.name}.install.log").read_text()

    # the executor's own launch, with `python -m timeit` as a stand-in worker that runs one line of setup code
    out = tmp_path / "out.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['KBM_TEST_LIBDIR'])"
    job = CellJob(tmp_path, Path("-n1"), tmp_path / "log.txt", dict(env.env), module="timeit",
                  extra_args=("-r1", "-s", script, "pass"))
    assert executor.launch(prepared, job).wait(60) == 0, (tmp_path / "log.txt").read_text()
    assert out.read_text() == str(libdir)


def test_a_library_link_to_nothing_fails_the_build_with_the_fix(tmp_path, monkeypatch):
    need_debian()
    monkeypatch.setenv("KBM_CACHE", str(tmp_path / "cache"))
    env = Environment(python="3.11", keras="none", backends=["tensorflow"], requirements=["six==1.16.0"],
                      debian_packages=["libevent-pthreads-2.1-7"], library_links={"usr/lib/libx.so.1": "libnothing.so"})
    with pytest.raises(EnvironmentBuildError, match="fix the link in matrix.yaml"):
        VenvExecutor().prepare("badlink", env, print)


# -- the 2017 environments for real ---------------------------------------------------------------------------------
# CNTK's optional plugins, which Keras never loads, need libraries no Debian 12 has under these names (Ubuntu
# 16.04's libjpeg8, libpng12, libtiff5 and libjasper1 for the image reader; Halide at its build machine's path)
PLUGIN_ONLY = {"libjpeg.so.8", "libpng12.so.0", "libtiff.so.5", "libjasper.so.1", "/usr/local/halide/bin/libHalide.so"}
PLUGINS = {"Cntk.Deserializers.Image-2.7.so", "Cntk.DelayLoadedExtensions-2.7.so", "libopencv_imgcodecs.so.3.1",
           "Cntk.BinaryConvolution-2.7.so"}


def cntk_libraries(location: Path) -> list[Path]:
    """CNTK's own shared objects and the OpenMPI libraries they link, as unpacked into the environment."""
    site = next(location.glob("lib/python3.*/site-packages"))
    unpacked = location / "debian" / "usr" / "lib" / "x86_64-linux-gnu"
    return sorted([*site.glob("_cntk_py*.so"), *(site / "cntk" / "libs").glob("*.so*"),
                   *(unpacked / n for n in ("libmpi.so.40", "libmpi_cxx.so.40", "libopen-pal.so.40",
                                            "libopen-rte.so.40", "libhwloc.so.15"))])


def ldd(path: Path, library_path: str) -> dict[str, str | None]:
    """soname -> where the dynamic loader finds it with this LD_LIBRARY_PATH (None: not found)."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env={**os.environ,
                         "LD_LIBRARY_PATH": library_path}, check=True).stdout  # fmt: skip
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        name, arrow, where = line.strip().partition(" => ")
        if arrow:
            found[name] = None if where.startswith("not found") else where.split(" (")[0]
    return found


def dpkg_owner(path: str) -> str | None:
    """The package that installed `path` (dpkg's database has /lib or /usr/lib, whichever the package shipped)."""
    for candidate in dict.fromkeys([path, os.path.realpath(path), path.replace("/usr/lib/", "/lib/", 1),
                                    path.replace("/lib/", "/usr/lib/", 1)]):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    return None


def test_every_library_cntk_needs_is_in_the_environment_or_the_base_system(built, tmp_path):
    """ldd of CNTK's libraries with the environment's own LD_LIBRARY_PATH: each one resolves inside the environment,
    the interpreter's prefix or a file of the base system (minbase), never a package this machine merely happens
    to have (Slurm's libhwloc15: the hand-listed packages passed here and failed on a fresh machine)."""
    need_debian()
    env = built("keras2017-tf-cntk")
    location = Path(env.location)
    # libnl-3-200 ships in /lib: moved into usr/lib (merged /usr), so the one LD_LIBRARY_PATH folder has it
    assert (location / "debian" / "lib").is_symlink()
    assert (location / "debian" / "usr" / "lib" / "x86_64-linux-gnu" / "libnl-3.so.200").exists()
    python = Path(env.info["python_path"]).resolve()
    prefix = python.parents[1]
    site_libs = next(location.glob("lib/python3.*/site-packages")) / "cntk" / "libs"
    library_path = ":".join([expand_env_dir(env.spec.env, str(location))["LD_LIBRARY_PATH"], str(site_libs),
                             str(prefix / "lib")])
    with open(tmp_path / "apt.log", "w") as log:
        apt = Apt(tmp_path / "apt", log)
        if not system_has_lists():
            apt.use_private_lists()
        base = {p.name for p in apt.simulate(list(BASE_SYSTEM))}
    outside, unresolved = {}, set()
    for lib in cntk_libraries(location):
        for soname, where in ldd(lib, library_path).items():
            if where is None:
                unresolved.add((lib.name, soname))
            # the environment may lie behind a link (a test's private cache links the user's environments in)
            elif not (Path(where).resolve().is_relative_to(location.resolve()) or Path(where).is_relative_to(prefix)):
                owner = dpkg_owner(where)
                if owner not in base:
                    outside[soname] = f"{where} ({owner or 'no package'})"
    assert outside == {}
    assert {soname for _, soname in unresolved} <= PLUGIN_ONLY, unresolved
    assert {lib for lib, _ in unresolved} <= PLUGINS, unresolved


@pytest.mark.parametrize("env_name", ENVS_2017)
def test_parameter_counts_match_the_examples_in_every_2017_environment(matrix, built, env_name, tmp_path):
    env = built(env_name)
    for backend_name in env.spec.backends:
        backend = matrix.backends[backend_name]
        out = tmp_path / f"{backend_name}.json"
        variables = {**backend.env, **{k: v.replace("{env_dir}", env.location) for k, v in env.spec.env.items()}}
        pairs = [f"{name}:{m.dataset}" for name, m in matrix.models.items() if m.suite is None]  # the five
        subprocess.run([str(Path(env.location) / "bin" / "python"), "-m", "models.describe", str(out),
                        backend.data_format, *pairs], cwd=REPO_ROOT, check=True, timeout=600,
                       env={**os.environ, **variables, "KERAS_BACKEND": backend.keras_backend,
                            "PYTHONPATH": str(REPO_ROOT)})
        report = json.loads(out.read_text())
        assert report["backend"] == backend.keras_backend and report["keras"] == env.spec.keras
        assert report["params"] == EXPECTED


def test_fastest_2017_environment_trains_smoke_cells_for_real(built, keras_home, tmp_path):
    """Keras 1.2.2 + MXNet 0.11: the MLP through model.fit, the CIFAR CNN through ImageDataGenerator + fit_generator."""
    built(FASTEST)
    proc = run_runner(["--env", FASTEST, "--model", "mlp", "--model", "cifar10_cnn", "--profile", "smoke",
                       "--executor", "venv", "--no-report"], keras_home, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {r["cell"]["model"]: r for r in run_results(tmp_path)}
    assert set(results) == {"mlp", "cifar10_cnn"}
    for model, r in results.items():
        assert r["status"] == "ok", r.get("error")
        assert r["params"] == EXPECTED[model]
        assert r["versions"]["keras"] == "1.2.2" and r["versions"]["mxnet"] == "0.11.0"
        assert r["versions"]["python"].startswith("3.6.")
        # the 2017 environments default to faithful-2017: channels_last ('tf'), which the fork trains too
        assert r["settings"]["data_format"] == "channels_last" and r["settings"]["variant"] == "faithful-2017"
        assert len(r["epochs"]) == 3 and all(e["wall_s"] > 0 for e in r["epochs"])
        # Keras 1's `acc` is recorded under Keras 3's name; its fit has no test hooks, so val_s is timed from the
        # epoch's last batch to the epoch's end: inside the epoch, never zero
        assert all("accuracy" in e and "val_accuracy" in e for e in r["epochs"])
        assert all(e["val_s"] is not None and 0 < e["val_s"] < e["wall_s"] for e in r["epochs"])
        assert 0.0 <= r["test"]["accuracy"] <= 1.0
        # one timing method: the whole fit / epochs, which holds the function build no epoch callback sees
        n = len(r["epochs"])
        assert r["article_epoch_s"] == pytest.approx(r["timeline"]["fit_s"] / n)
        assert r["build_fn_s"] >= 0
        assert r["article_epoch_s"] * n >= sum(e["wall_s"] for e in r["epochs"]) + r["build_fn_s"] - 1e-3
        # a CPU machine: the probe says no GPU, the fork got no GPU context, and nothing claims a GPU was used
        assert r["host"]["gpu"]["available"] is False and r["host"]["gpu"]["used"] is False
        assert r["host"]["gpu"]["weight_device"].startswith("mxnet cpu")
        assert r["settings"]["compile_context"] is None  # no GPU context asked for
    assert results["mlp"]["data"]["source"] == "keras-cache"
    # the fixture's 200 CIFAR images: 6 whole batches of 32 per epoch, as the example's steps_per_epoch = n // 32
    cifar = results["cifar10_cnn"]
    assert {e["samples"] for e in cifar["epochs"]} == {192} and cifar["fit_params"]["samples"] == 192


GPU_CONTEXT_PROBE = """
import json, keras
from models import compat, mlp, provenance
from models.data import Dataset
api = compat.KerasAPI(keras, data_format="channels_first", gpus=1)
model = mlp.build(api, Dataset(None, None, None, None, (784,), 10, {}))
api.compile(model, api.optimizer({"name": "rmsprop", "learning_rate": 1e-3}), mlp.LOSS, None)
print(json.dumps({"context": api.compile_context, "model": [str(c) for c in model._context],
                  "device": provenance.weight_device(model, "mxnet", False)}))
"""


def test_the_mxnet_fork_compiles_for_gpu_0_when_the_cell_has_a_gpu(built):
    """What the 2017 notebooks passed: compile(..., context=['gpu(0)']); without it the fork trains on the CPU. The
    fork records the context at compile (it binds at fit), so this runs on a CPU machine too; no GPU is claimed
    as used where the framework saw none."""
    env = built(FASTEST)
    proc = subprocess.run([str(Path(env.location) / "bin" / "python"), "-c", GPU_CONTEXT_PROBE], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **expand_env_dir(env.spec.env, env.location), "KERAS_BACKEND": "mxnet",
                               "PYTHONPATH": str(REPO_ROOT)})  # the environment's own variables: libgomp's folder
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"context": ["gpu(0)"], "model": ["gpu(0)"], "device": "mxnet gpu(0)"}


def test_a_known_slow_cell_is_skipped_with_its_reason(built, keras_home, tmp_path):
    built(FASTEST)
    proc = run_runner(["--env", FASTEST, "--model", "hrnn", "--profile", "quick", "--executor", "venv",
                       "--no-report"], keras_home, tmp_path)
    # its only cell skipped: nothing was measured, which a run says with exit status 1
    assert proc.returncode == 1 and "no cell ran" in proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = run_results(tmp_path)
    assert result["status"] == "skipped" and result["stage"] == "import"
    assert "known issue (keras 1.2.2, mxnet 0.11.0" in result["error"] and "unrolls" in result["error"]


def test_cntk_lstm_under_keras_208_fails_saying_why(built, keras_home, tmp_path):
    built("keras2017-tf-cntk")
    proc = run_runner(["--env", "keras2017-tf-cntk", "--only", "cntk", "--model", "hrnn", "--profile", "smoke",
                       "--executor", "venv", "--no-report"], keras_home, tmp_path)
    assert proc.returncode == 1  # a failed cell, recorded; the run itself completed
    (result,) = run_results(tmp_path)
    assert result["status"] == "failed" and result["stage"] == "train"
    assert result["error"].startswith("known issue (cntk 2.7, keras 2.0.8, python 3.6")
    assert "keras224-cntk-variant" in result["error"] and "error: RuntimeError" in result["error"]
    assert result["params"] == EXPECTED["hrnn"] and result["versions"]["cntk"] == "2.7"
    # failed in training, yet the framework's probe still says what it saw: no GPU here, so none was used
    assert result["host"]["gpu"]["available"] is False and result["host"]["gpu"]["used"] is False



# -- container recipes (built by the Docker executor; no Python 3.6 base image can be pulled here) -----------------
def test_2017_recipes_follow_the_executor_contract(matrix):
    """Every 2017 recipe exists, takes BASE_IMAGE before FROM, builds with the classic builder, applies the Python
    3.6 pip workarounds, and gives CNTK the OpenMPI names the matrix links for the venv executor."""
    seen = 0
    for name in [*ENVS_2017, "keras224-cntk-variant"]:
        recipe = matrix.environments[name].docker
        assert recipe is not None, f"{name} has no docker recipe"
        for flavour, path in (("cpu", recipe.cpu), ("gpu", recipe.gpu)):
            if path is None:
                continue
            seen += 1
            text = (REPO_ROOT / path).read_text()
            lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
            assert lines[0] == "ARG BASE_IMAGE=" + recipe.base_images[flavour], path
            assert lines[1] == "FROM ${BASE_IMAGE}", path
            assert "--mount" not in text and "<<" not in text, f"{path}: BuildKit-only syntax"
            for needed in ("ARG PYTHON_VERSION=3.6", "ARG CA_BUNDLE=", "'pip<22'", "PIP_CONFIG_FILE=/dev/null",
                           "/tmp/kbm-build/requirements.txt", "/opt/kbm-env"):
                assert needed in text, f"{path} lacks {needed}"
            if flavour == "cpu":  # the recipe's apt-get install brings the same roots, and their closure
                for root in matrix.environments[name].debian_packages:
                    assert root in text, f"{path} does not install {root}, a debian_packages root of {name}"
            if "cntk" in matrix.environments[name].backends and flavour == "cpu":
                roots = " ".join(matrix.environments[name].debian_packages)
                assert f'ARG OPENMPI_PACKAGES="{roots}"' in text, f"{path}: OPENMPI_PACKAGES is not {roots}"
                links = matrix.environments[name].library_links
                for link, target in links.items():
                    assert f"{Path(link).name}={target}" in text, f"{path}: no {link} -> {target}"
                assert "ln -s /usr /opt/kbm-env/debian/usr" in text  # so {env_dir}/debian/usr holds in the image
            if flavour == "gpu":
                assert "8.0-cudnn" in recipe.base_images["gpu"] and "K80" in text and "R470" in text
    assert seen == 7
