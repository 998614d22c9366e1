"""What every container a cell runs in looks like from the inside, whoever starts it (Docker, Kubernetes).

One place for the paths the images and the executors agree on (docker/keras3/Dockerfile.* put the environment's
virtualenv at IMAGE_ENV) and for the variables a container gets, so a Docker cell and a Kubernetes pod of the same
cell see the same environment.
"""

from __future__ import annotations

import os

from runner.matrix import expand_env_dir

IMAGE_ENV = "/opt/kbm-env"  # the environment's virtualenv inside the image
PYTHON = f"{IMAGE_ENV}/bin/python"
CODE_DIR = "/kbm/code"  # models/ lives at /kbm/code/models, on PYTHONPATH
CELL_DIR = "/kbm/cell"  # the cell folder, bind-mounted from the host (Docker)
MODEL_FILES_DIR = "/kbm/model-files"  # a run's copies of --model-file models, read-only (Docker)
USER_DATA_FILE = "/kbm/data-file.npz"  # a --data-file, read-only (Docker)
POD_CELL_DIR = "/tmp/kbm-cell"  # a pod has no host folder: the cell lives in its /tmp, collected from its log
KERAS_HOME = "/kbm/keras-home"  # a read-only Keras cache, where one is mounted
NO_KERAS_HOME = "/tmp/keras"  # where none is: downloads (or --data synthetic) land in the container's /tmp
# host variables a cell may be tuned or tested with; everything else stays out of the container
PASS_THROUGH = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "XLA_FLAGS",
)
TEST_SWITCH = "KBM_TESTING"  # set by the tests; only then does the fault hook (models/faults.py) travel


def host_variables(names: tuple[str, ...]) -> dict[str, str]:
    """The host's values of `names` for a container or pod, plus the fault-injection pair (KBM_TESTING,
    KBM_FAULT) only when this runner was started for tests: a stray KBM_FAULT in a user's shell stays home."""
    out = {key: os.environ[key] for key in names if key in os.environ}
    if os.environ.get(TEST_SWITCH) == "1":
        out.update({key: os.environ[key] for key in (TEST_SWITCH, "KBM_FAULT") if key in os.environ})
    return out


def container_variables(cell_variables: dict[str, str], keras_home_mounted: bool) -> dict[str, str]:
    """A cell's variables inside a container: the pass-through ones from the host, the cell's own with {env_dir}
    expanded to the image's environment, and the paths the worker needs."""
    out = host_variables(PASS_THROUGH)
    out.update(expand_env_dir(cell_variables, IMAGE_ENV))
    out.update(PYTHONPATH=CODE_DIR, KERAS_HOME=KERAS_HOME if keras_home_mounted else NO_KERAS_HOME, HOME="/tmp")
    return out
