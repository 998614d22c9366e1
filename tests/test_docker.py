"""The Docker executor against a real engine: an image built from the Keras 3 JAX recipe on the local base, a
smoke cell through `python -m runner --executor docker`, the container's confinement checked from inside it, the
auto choice, and a GPU request where there is none.

The engine is the one `make engine` starts (tooling/engine.py; .ci/run starts it the same way before the tests):
reused when it answers, else started here and stopped at the end. DOCKER_HOST is set per test only, so the other
suites' default (`auto`) runs stay on venv. Without root or dockerd the tests skip with the reason, except under
CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from common.results import iter_results
from runner.executors import ExecutorOptions, choose
from runner.executors.base import CellJob
from runner.executors.container import CELL_DIR, MODEL_FILES_DIR
from runner.executors.docker import DockerExecutor, DockerUnavailable, connect
from runner.executors.docker.client import LABEL
from runner.executors.docker.containers import Mounts
from runner.executors.venv import VenvExecutor
from runner.paths import REPO_ROOT
from tests.ci import FIX, missing
from tooling import engine

pytestmark = pytest.mark.docker
ENV = "keras3-jax"  # the smallest Keras 3 image (~0.9 GB); the same recipe builds the other two


def _unavailable(reason: str):
    missing(f"no Docker engine: {reason}", FIX["docker"])


@pytest.fixture(scope="session")
def docker_engine():
    """{DOCKER_HOST, KBM_BASE_IMAGE} of a running engine with the local base image."""
    own = os.environ.get("DOCKER_HOST")
    started = False
    if own:
        try:
            connect()
        except DockerUnavailable as exc:
            _unavailable(str(exc))
        base = os.environ.get("KBM_BASE_IMAGE") or "python:3.11-slim-bookworm"
        yield {"DOCKER_HOST": own, "KBM_BASE_IMAGE": base}
        return
    if not engine.answers():
        if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("debootstrap") is None:
            _unavailable("starting one needs root, dockerd and debootstrap")
        try:
            engine.start(print)
        except engine.EngineError as exc:
            _unavailable(str(exc))
        started = True
    else:
        engine.ensure_base_image(print)
    yield {"DOCKER_HOST": engine.docker_host(), "KBM_BASE_IMAGE": engine.base_image()}
    if started:
        engine.stop(print)


@pytest.fixture
def docker_env(docker_engine, monkeypatch) -> dict[str, str]:
    for key, value in docker_engine.items():
        monkeypatch.setenv(key, value)
    return docker_engine


@pytest.fixture(scope="session")
def jax_image(docker_engine, matrix):
    """Build (or reuse) the JAX image once; returns (executor, prepared env, seconds, status lines)."""
    saved = {k: os.environ.get(k) for k in docker_engine}
    os.environ.update(docker_engine)
    try:
        notes: list[str] = []
        executor = DockerExecutor()
        started = time.perf_counter()
        prepared = executor.prepare(ENV, matrix.environments[ENV], notes.append)
        return executor, prepared, time.perf_counter() - started, notes
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_image_is_built_once_from_the_recipe_and_reused_by_hash(jax_image, matrix, docker_env):
    executor, first, _, notes = jax_image
    assert first.location.startswith(f"kbm/{ENV}:cpu-")
    assert first.info["base"] == docker_env["KBM_BASE_IMAGE"]
    assert first.info["requirements"] == matrix.environments[ENV].requirements
    if not first.reused:  # a cold build said what it did, step by step, and where its log is
        assert any("building image" in n and "log:" in n for n in notes) and any("Step " in n for n in notes)
    again = DockerExecutor().prepare(ENV, matrix.environments[ENV], lambda _: None)
    assert again.reused and again.location == first.location and again.seconds < 5
    assert executor.plan(ENV, matrix.environments[ENV])["cached"] is True
    # another base image: the same tag (it hashes the recipe's declared base), but not reusable (the base it was
    # built on is a label), so the image is rebuilt on the new base
    os.environ["KBM_BASE_IMAGE"] = "kbm/some-other-base:1"
    other = DockerExecutor().plan(ENV, matrix.environments[ENV])
    assert other["cached"] is False and other["location"].startswith(f"{first.location} (on kbm/some-other-base:1)")


def test_the_image_carries_keras_hub_without_tensorflow(jax_image, docker_env, matrix):
    """The keras.io suite runs in containers too: KerasHub installed without its declared dependencies
    (requirements_no_deps), so its tensorflow-text brings no TensorFlow into the JAX image."""
    _, prepared, _, _ = jax_image
    assert prepared.info["requirements_no_deps"] == matrix.environments[ENV].requirements_no_deps
    check = "import importlib.util, keras_hub; print(keras_hub.__version__, importlib.util.find_spec('tensorflow'))"
    out = connect().containers.run(prepared.location, ["/opt/kbm-env/bin/python", "-c", check], remove=True,
                                   environment={"KERAS_BACKEND": "jax"}).decode().split()
    assert out[-2:] == [matrix.environments[ENV].pins["keras-hub"], "None"]


def test_smoke_cell_runs_in_its_own_container_end_to_end(jax_image, docker_env, keras_home, tmp_path):
    env = {**os.environ, **docker_env, "KERAS_HOME": str(keras_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--executor", "docker", "--env", ENV, "--only", "jax@keras", "--model", "mlp",
         "--profile", "smoke",
         "--results", str(tmp_path / "results"), "--no-report"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "executor docker" in proc.stderr
    run = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    (path, outcome), *rest = list(iter_results(run))
    assert not rest and not isinstance(outcome, Exception), outcome
    r = json.loads(path.read_text())
    assert r["status"] == "ok", r.get("error")
    assert r["cell"]["backend"] == "jax" and len(r["epochs"]) == 3 and r["steady_epoch_s"] > 0
    assert r["data"]["source"] == "keras-cache"  # the Keras cache, mounted read-only, was read
    ex = r["executor"]
    assert ex["name"] == "docker" and ex["image"] == jax_image[1].location and len(ex["container_id"]) == 12
    assert ex["network_mode"] == "none" and ex["read_only_rootfs"] is True  # from the engine's inspect
    assert ex["cap_drop"] == ["ALL"] and "no-new-privileges" in ex["security_opt"]
    assert ex["writable_mounts"] == [CELL_DIR]
    assert ex["cpu_s"] > 0  # the container's own CPU time, from its cgroup
    assert r["host"]["gpu"]["used"] is False
    assert r["timeline"]["worker_start_s"] > 0 and r["timeline"]["fixed_overhead_s"] > 0
    cell_dir = path.parent
    inner = json.loads((cell_dir / "container-spec.json").read_text())
    assert inner["paths"]["result"] == f"{CELL_DIR}/worker-result.json"
    assert json.loads((cell_dir / "spec.json").read_text())["paths"]["result"].startswith(str(cell_dir))
    assert "Traceback" not in (cell_dir / "worker.log").read_text()
    client = connect()
    left = client.containers.list(all=True, filters={"label": f"{LABEL}.cell={r['cell_id']}"})
    assert left == []  # removed once it ended


def test_a_model_file_of_your_own_trains_in_a_container_mounted_read_only(jax_image, docker_env, keras_home,
                                                                         tmp_path):
    """--model-file with the Docker executor: the run's copy of the file is mounted read-only into the cell's
    container, which imports it from there; the cell's only writable folder is still its own."""
    example = REPO_ROOT / "examples" / "image_classifier.py"
    env = {**os.environ, **docker_env, "KERAS_HOME": str(keras_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--executor", "docker", "--env", ENV, "--model-file", str(example),
         "--profile", "smoke", "--results", str(tmp_path / "results"), "--no-report", "--no-history"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    ((path, outcome),) = list(iter_results(run))
    assert not isinstance(outcome, Exception), outcome
    r = json.loads(path.read_text())
    assert r["status"] == "ok", r.get("error")
    assert r["cell"]["model"] == "image_classifier" and r["cell"]["backend"] == "jax"
    assert r["executor"]["name"] == "docker" and r["executor"]["writable_mounts"] == [CELL_DIR]
    (copy,) = (run / "model-files").glob("image_classifier-*.py")
    assert copy.read_bytes() == example.read_bytes()
    inner = json.loads((path.parent / "container-spec.json").read_text())
    assert inner["model"]["module"] == f"{MODEL_FILES_DIR}/{copy.name}"  # imported from the mount, not the host


PROBE = r"""
import json, os, socket
out = {"interfaces": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:])}
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3).close(); out["net"] = "open"
except OSError as exc:
    out["net"] = type(exc).__name__
def can_write(path):
    try:
        open(path, "w").write("x"); os.remove(path); return True
    except OSError:
        return False
out["write"] = {p: can_write(p) for p in ("/opt/x", "/kbm/code/models/x", "/kbm/cell/x", "/tmp/x")}
out["uid"] = os.getuid()
out["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
out["no_new_privs"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0]
print(json.dumps(out))
"""


def test_a_cell_container_has_no_network_no_privileges_and_one_writable_folder(jax_image, docker_env, tmp_path):
    executor, prepared, _, _ = jax_image
    spec = {"cell_id": "probe", "resources": {"cpus": 1.0, "gpus": None, "shm_gb": 0.5}, "memory_limit_gb": 2.0}
    job = CellJob(tmp_path, tmp_path / "spec.json", tmp_path / "worker.log", {"KERAS_BACKEND": "jax"})
    mounts = executor._mounts(job)
    kwargs = executor.container_kwargs(prepared, job, spec, mounts)
    client = connect()
    out = client.containers.run(command=["/opt/kbm-env/bin/python", "-c", PROBE], remove=True, **kwargs)
    facts = json.loads(out.decode().strip().splitlines()[-1])
    assert facts["interfaces"] == ["lo"] and facts["net"] != "open"
    assert facts["write"] == {"/opt/x": False, "/kbm/code/models/x": False, "/kbm/cell/x": True, "/tmp/x": True}
    assert facts["uid"] == os.getuid() and int(facts["cap_eff"], 16) == 0 and facts["no_new_privs"] == "1"
    assert kwargs["nano_cpus"] == 1_000_000_000 and kwargs["shm_size"] == 512 << 20
    assert kwargs["mem_limit"] == int(2.0 * 1.25 * (1 << 30))
    assert isinstance(mounts, Mounts) and mounts.map(str(tmp_path / "a.json")) == f"{CELL_DIR}/a.json"


def test_a_hung_cell_is_killed_and_its_container_removed(jax_image, docker_env, matrix, keras_home, tmp_path):
    env = {**os.environ, **docker_env, "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": "hang@mlp@train"}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--executor", "docker", "--env", ENV, "--only", "jax@keras", "--model", "mlp",
         "--profile", "smoke",
         "--timeout", "25", "--results", str(tmp_path / "results"), "--no-report"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    run = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    ((path, _),) = list(iter_results(run))
    r = json.loads(path.read_text())
    assert r["status"] == "timeout" and r["stage"] == "train", r.get("error")
    assert connect().containers.list(all=True, filters={"label": f"{LABEL}.cell={r['cell_id']}"}) == []


def test_a_runner_killed_with_sigkill_leaves_no_container_behind(jax_image, docker_env, keras_home, tmp_path):
    """A container outlives the process that started it: the run's watchdog removes it when the runner is killed."""
    env = {**os.environ, **docker_env, "KERAS_HOME": str(keras_home), "KBM_TESTING": "1", "KBM_FAULT": "hang@mlp@train"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--executor", "docker", "--env", ENV, "--only", "jax@keras", "--model", "mlp",
         "--profile", "smoke",
         "--results", str(tmp_path / "results"), "--no-report"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ours = {"label": LABEL}
    deadline = time.monotonic() + 180
    running: list = []
    while not running:
        running = [c for c in connect().containers.list(filters=ours)  # this run's: its cell folder is mounted
                   if any(str(tmp_path) in m.get("Source", "") for m in c.attrs.get("Mounts", []))]
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the cell's container never started")
        time.sleep(0.5)
    proc.kill()  # SIGKILL: no handler, no finally
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while connect().containers.list(all=True, filters={"id": running[0].id}):
        assert time.monotonic() < deadline, "the container outlived its runner by 30 s"
        time.sleep(0.5)


def test_auto_picks_docker_when_an_engine_answers_and_venv_when_none_does(docker_env, monkeypatch):
    executor, why = choose("auto")
    assert isinstance(executor, DockerExecutor) and "engine answered" in why and docker_env["DOCKER_HOST"] in why
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    executor, why = choose("auto")
    assert isinstance(executor, VenvExecutor)
    assert "no Docker engine answered at unix:///nonexistent/docker.sock" in why and "venv" in why
    with pytest.raises(DockerUnavailable, match="--gpus 1 needs a Docker engine"):
        choose("auto", ExecutorOptions(gpus=1))


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU: nothing to refuse")
def test_asking_for_a_gpu_without_one_is_a_clear_error_not_a_cpu_run(jax_image, docker_env, keras_home, tmp_path):
    env = {**os.environ, **docker_env, "KERAS_HOME": str(keras_home)}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--executor", "docker", "--gpus", "1", "--env", ENV, "--only", "jax@keras",
         "--model", "mlp",
         "--profile", "smoke", "--results", str(tmp_path / "results")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot give containers a GPU" in proc.stderr and "NVIDIA Container Toolkit" in proc.stderr
    assert not (tmp_path / "results").exists()  # nothing ran
    # a profile asking for a GPU reaches launch: the cell fails with the engine's reason, the run goes on
    executor, prepared, _, _ = jax_image
    (tmp_path / "cell").mkdir()
    spec = {"cell_id": "gpu", "resources": {"gpus": 1}, "paths": {}, "data": {}}
    (tmp_path / "cell" / "spec.json").write_text(json.dumps(spec))
    job = CellJob(tmp_path / "cell", tmp_path / "cell" / "spec.json", tmp_path / "cell" / "worker.log", {})
    handle = executor.launch(prepared, job)
    assert handle.wait(5) == 125
    assert connect().containers.list(all=True, filters={"label": f"{LABEL}.cell=gpu"}) == []  # none left behind
    assert "cannot give containers a GPU" in (tmp_path / "cell" / "worker.log").read_text()


def test_nightly_gpu_workflow_is_valid_and_runs_gpu_check_from_a_bundle_on_a_gpu():
    """A hosted job makes the bundle; the self-hosted GPU job runs the one command from it, with no index, and the
    nightly steps (history, check, site, judgement) in the machine's python3."""
    workflow = REPO_ROOT / ".github" / "workflows" / "nightly-gpu.yml"
    lint = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                           "vendor.github-workflows", str(workflow)], capture_output=True, text=True)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    doc = yaml.safe_load(workflow.read_text())
    triggers = doc[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    bundle, job = doc["jobs"]["bundle"], doc["jobs"]["gpu-check"]
    made = " ".join(s.get("run", "") for s in bundle["steps"])
    assert "make gpu-bundle BUNDLE=gpu-bundle" in made
    # a shared PostgreSQL history: the bundle carries psycopg when (and only when) the GPU job will use one
    assert "${KBM_HISTORY_URL:+ARGS=--postgres}" in made
    assert "secrets.KBM_HISTORY_URL" in bundle["env"]["KBM_HISTORY_URL"]
    assert job["needs"] == "bundle" and "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    script = "\n".join(step.get("run", "") + " ".join(map(str, (step.get("env") or {}).values()))
                       for step in job["steps"])
    assert "make gpu-check BUNDLE=gpu-bundle" in script and "--install-only" in script
    assert "make .venv" not in script and "pip install" not in script  # nothing from an index on the GPU machine
    assert "tooling/nightly.sh" in script  # run, add to the history, check results, site, judge (README "History")
    nightly = (REPO_ROOT / "tooling" / "nightly.sh").read_text()
    steps = ("history add", "check", "history report", "history check")
    assert all(f'"${{kbm[@]}}" {step}' in nightly for step in steps) and "KBM_NIGHTLY_RUN" in nightly
    uses = [str(s.get("uses", "")) for s in job["steps"]]
    assert "actions/cache/restore@v4" in uses and "actions/cache/save@v4" in uses  # the history, night to night
    assert "actions/download-artifact@v4" in uses
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and all(s.get("if") == "always()" for s in uploads)


# -- the 2017 images: python:3.6 cannot be pulled here, so they build on a local Python 3.6 base ------------------
ENVS_2017 = {"keras2017-tf-cntk": {"tensorflow1", "cntk"}, "keras2017-theano": {"theano"},
             "keras2017-mxnet": {"mxnet"}}  # fmt: skip


@pytest.mark.parametrize("env_name", list(ENVS_2017))
def test_a_2017_image_builds_once_and_trains_a_smoke_mlp_per_backend(env_name, docker_env, matrix, keras_home,
                                                                       tmp_path):  # fmt: skip
    """Cold: the image is built (its Python 3.6 base too where the registry's cannot be pulled, said on screen);
    warm: reused by hash. Then one smoke MLP per backend in a confined container, as the venv executor trains it."""
    env = matrix.environments[env_name]
    notes: list[str] = []
    prepared = DockerExecutor().prepare(env_name, env, notes.append)
    assert prepared.location.startswith(f"kbm/{env_name}:cpu-")
    base = prepared.info["base"]
    if base.startswith("kbm/python:"):  # the local stand-in for python:3.6-slim, made from pyenv's 3.6
        assert base.startswith("kbm/python:3.6.")
        if not prepared.reused and any("pulling" in n for n in notes):
            assert any("cannot be pulled" in n and "local Python 3.6 base" in n for n in notes), notes
    again = DockerExecutor().prepare(env_name, env, lambda _: None)
    assert again.reused and again.location == prepared.location and again.seconds < 10
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--executor", "docker", "--env", env_name, "--model", "mlp", "--profile",
         "smoke", "--results", str(tmp_path / "results"), "--no-report"],
        cwd=REPO_ROOT, env={**os.environ, **docker_env, "KERAS_HOME": str(keras_home)}, capture_output=True,
        text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    results = [json.loads(path.read_text()) for path, _ in iter_results(run)]
    assert {r["cell"]["backend"] for r in results} == ENVS_2017[env_name]
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["params"] == matrix.models["mlp"].expected_params  # as the venv executor's (tests/test_keras2017.py)
        assert r["versions"]["python"].startswith("3.6.") and r["versions"]["keras"] == env.keras
        ex = r["executor"]
        assert ex["name"] == "docker" and ex["image"] == prepared.location
        assert ex["network_mode"] == "none" and ex["read_only_rootfs"] is True and ex["cap_drop"] == ["ALL"]
        caches = sorted(env.docker.caches.values())  # Theano's compile cache, kept between cells as ~/.theano is
        assert sorted(ex["writable_mounts"]) == sorted([CELL_DIR, *caches])


# -- the venv executor's 2017 environments on a bare Debian 12: nothing but what they unpacked -------------------
def venv_2017(matrix, name: str):
    """A 2017 virtualenv the venv executor builds on this host (the one tests/test_keras2017.py uses)."""
    from runner.interpreters import InterpreterNotFound, find_python

    try:
        find_python("3.6")
    except InterpreterNotFound as exc:
        missing(f"the 2017 environments need Python 3.6: {exc}", FIX["python3.6"])
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        missing("not a Debian host: no apt-get/dpkg to unpack Debian packages", FIX["debian"])
    return VenvExecutor().prepare(name, matrix.environments[name], print)


# what each environment's Debian packages bring that the bare base lacks (OpenMPI's hwloc; GCC's OpenMP runtime)
BARE = [("keras2017-tf-cntk", "cntk", "libhwloc15"), ("keras2017-mxnet", "mxnet", "libgomp1")]


@pytest.mark.parametrize(("env_name", "backend", "lacked"), BARE)
def test_a_venv_2017_environment_trains_in_a_bare_debian_container(env_name, backend, lacked, docker_env, matrix,
                                                                    keras_home, tmp_path):  # fmt: skip
    """The engine's base image is debootstrap's minbase with Python: none of the packages a developer's machine
    happens to have (Slurm brings libhwloc15, gcc brings libgomp1). The environment built on this host, mounted
    read-only with its interpreter's prefix, trains a smoke MLP there: what it unpacked is all it needs. And every
    package its closure left to the base system is installed in that image. (Theano is left out: it needs g++,
    a compiler rather than a library, and falls back to Python code without one; its image installs g++.)"""
    from runner.cells import Cell, cell_variables, worker_spec
    from runner.matrix import expand_env_dir
    from runner.orchestrate import add_runtime

    prepared = venv_2017(matrix, env_name)
    location = prepared.location
    prefix = str(Path(prepared.info["python_path"]).resolve().parents[1])  # pyenv's 3.6, which the venv links
    client = connect()
    base = docker_env["KBM_BASE_IMAGE"]
    installed = client.containers.run(base, ["dpkg-query", "-W", "-f", "${Package}\\n"], remove=True).decode()
    assert set(prepared.info["debian"]["left_to_base_system"]) <= set(installed.split())
    assert lacked not in installed.split()  # the point: the image lacks what the closure brings
    cell = Cell("mlp", backend, env_name, "smoke", 0, matrix.defaults.seed, "faithful-2017")
    spec = worker_spec(matrix, cell, "real")
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    add_runtime(spec, cell_dir, None)
    (cell_dir / "spec.json").write_text(json.dumps(spec))
    variables = {**expand_env_dir(cell_variables(matrix, cell), location), "PYTHONPATH": str(REPO_ROOT),
                 "KERAS_HOME": str(keras_home), "HOME": "/tmp"}
    volumes = {location: {"bind": location, "mode": "ro"}, prefix: {"bind": prefix, "mode": "ro"},
               str(REPO_ROOT): {"bind": str(REPO_ROOT), "mode": "ro"},
               str(keras_home): {"bind": str(keras_home), "mode": "ro"},
               str(cell_dir): {"bind": str(cell_dir), "mode": "rw"}}
    container = client.containers.run(base, [f"{location}/bin/python", "-m", "models.worker", str(cell_dir /
                                      "spec.json")], environment=variables, volumes=volumes, working_dir=str(REPO_ROOT),
                                      network_mode="none", detach=True)  # fmt: skip
    try:
        code = container.wait(timeout=600)["StatusCode"]
        log = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert code == 0, log[-3000:]
    result = json.loads((cell_dir / "worker-result.json").read_text())
    assert result["status"] == "ok", result.get("error")
    assert result["versions"]["keras_backend"] == backend and result["versions"]["python"].startswith("3.6.")
    assert result["params"] == matrix.models["mlp"].expected_params and len(result["epochs"]) == 3
