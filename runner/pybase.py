"""A Python X.Y base image made from what the machine has, for recipes whose registry base cannot be pulled.

The 2017 recipes start from `python:3.6-slim-*`, which no registry reachable from a locked-down machine serves.
The machine does have a Debian base image (the one `make engine` makes with debootstrap) and a Python 3.6 built by
pyenv (the venv executor uses the same one). This module builds `kbm/python:<version>-<key>`: that Debian base, the
shared libraries CPython's extension modules link (ssl, ffi, zlib, bz2, lzma, sqlite3, readline) from apt, and the
pyenv prefix copied to the same path (pyenv builds a shared libpython found through an RPATH into its prefix), with
`pythonX.Y` and `python3` linked into /usr/local/bin. The tag's key covers the Debian base's name, the prefix and the
packages, so it is built once; the image records the Python it has in a label.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.interpreters import pyenv_interpreter

LABEL = "org.keras-backend-matrix"
REPO = "kbm/python"
DEBIAN_BASE_REPO = "kbm/base"  # what `make engine` imports (debootstrap, Debian 12)
PACKAGES = ("libssl3", "libffi8", "zlib1g", "libbz2-1.0", "liblzma5", "libsqlite3-0", "libreadline8",
            "ca-certificates")  # fmt: skip
SKIP = "lib/python{xy}/test"  # CPython's own test suite (57 MB); nothing imports it


class PythonBaseError(RuntimeError):
    """No way to make the base here; the message says what is missing and what to do."""


def replaceable(image: str) -> str | None:
    """The X.Y of an official `python:X.Y...` image (the kind a local Python base can stand in for), else None."""
    repo, _, tag = image.partition(":")
    if repo not in ("python", "docker.io/library/python", "library/python"):
        return None
    parts = tag.split("-")[0].split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None


def pyenv_prefix(version: str) -> tuple[Path, str] | None:
    """(prefix, full version) of pyenv's newest X.Y.*, or None."""
    found = pyenv_interpreter(version)
    return (Path(found.path).parent.parent, found.version) if found else None


def debian_base(client: Any) -> str | None:
    """The Debian base to build on: KBM_BASE_IMAGE when it is the engine's, else the newest local kbm/base:*."""
    override = os.environ.get("KBM_BASE_IMAGE", "")
    if override.startswith(DEBIAN_BASE_REPO + ":"):
        return override
    images = sorted(client.images.list(name=DEBIAN_BASE_REPO), key=lambda i: i.attrs.get("Created", ""))
    tags = [t for image in reversed(images) for t in image.tags]
    return tags[0] if tags else None


def plan(client: Any, version: str) -> tuple[str, str, Path, str] | None:
    """(tag, debian base, prefix, full version) of the local Python base for X.Y, or None where none can be made."""
    found = pyenv_prefix(version)
    base = debian_base(client)
    if found is None or base is None:
        return None
    prefix, full = found
    key = hashlib.sha256(json.dumps([base, str(prefix), full, PACKAGES, SKIP]).encode()).hexdigest()[:10]
    return f"{REPO}:{full}-{key}", base, prefix, full


def dockerfile(base: str, prefix: Path, full: str) -> str:
    xy = ".".join(full.split(".")[:2])
    parents = " ".join(str(p) for p in [prefix, *prefix.parents] if str(p) != "/")
    return f"""FROM {base}
LABEL {LABEL}.python="{full}" {LABEL}.python-prefix="{prefix}"
RUN set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \\
    apt-get install -y -qq --no-install-recommends {" ".join(PACKAGES)}; rm -rf /var/lib/apt/lists/*
COPY prefix/ {prefix}/
RUN set -eu; chmod a+x {parents}; \\
    ln -sf {prefix}/bin/python{xy} /usr/local/bin/python{xy}; ln -sf {prefix}/bin/python{xy} /usr/local/bin/python3; \\
    python{xy} -c "import ssl, sqlite3, bz2, lzma, ctypes, zlib, readline, venv, ensurepip"
"""


def _context(base: str, prefix: Path, full: str, into: Any) -> None:
    xy = ".".join(full.split(".")[:2])
    skip = SKIP.format(xy=xy)
    with tarfile.open(fileobj=into, mode="w") as tar:
        data = dockerfile(base, prefix, full).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for path in sorted(prefix.rglob("*")):
            rel = path.relative_to(prefix).as_posix()
            if rel == skip or rel.startswith(skip + "/"):
                continue
            tar.add(path, arcname=f"prefix/{rel}", recursive=False)


def build(client: Any, version: str, log: Any, on_status: Callable[[str], None]) -> str:
    """Build (or find) the local Python X.Y base; returns its tag. Raises PythonBaseError saying what is missing."""
    import docker

    planned = plan(client, version)
    if planned is None:
        missing = []
        if pyenv_prefix(version) is None:
            missing.append(f"a pyenv Python {version} (`pyenv install {version}`)")
        if debian_base(client) is None:
            missing.append(f"a Debian 12 base image {DEBIAN_BASE_REPO}:* on the engine (`make engine` imports one)")
        raise PythonBaseError(f"cannot make a local Python {version} base: needs {' and '.join(missing)}")
    tag, base, prefix, full = planned
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    on_status(f"building the local Python {full} base {tag} from {base} and pyenv's {prefix}")
    with tempfile.TemporaryFile(prefix="kbm-pybase-") as context:
        _context(base, prefix, full, context)
        context.seek(0)
        error = None
        for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, network_mode="host", rm=True,
                                      forcerm=True, decode=True):  # fmt: skip
            text = chunk.get("stream") or chunk.get("status") or ""
            if text:
                log.write(text if text.endswith("\n") else text + "\n")
            if "error" in chunk:
                error = chunk["error"].strip()
                log.write(f"ERROR: {error}\n")
        log.flush()
    if error:
        raise PythonBaseError(f"building the local Python {full} base failed: {error[-300:]}")
    return tag


_HAS_PYTHON: dict[tuple[str, str], bool] = {}
PULL_TIMEOUT_S = 60.0


def has_python(client: Any, image: str, xy: str) -> bool:
    """Whether an image has pythonX.Y: its label or an official image's PYTHON_VERSION, else one short probe."""
    import docker

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return True  # not here: the build says what is missing
    config = found.attrs.get("Config") or {}
    said = (config.get("Labels") or {}).get(f"{LABEL}.python") or next(
        (e.split("=", 1)[1] for e in config.get("Env") or [] if e.startswith("PYTHON_VERSION=")), None
    )
    if said:
        return said == xy or said.startswith(xy + ".")
    key = (found.id, xy)
    if key not in _HAS_PYTHON:
        try:
            client.containers.run(found.id, ["sh", "-c", f"command -v python{xy}"], network_mode="none", remove=True)
            _HAS_PYTHON[key] = True
        except docker.errors.ContainerError:
            _HAS_PYTHON[key] = False
    return _HAS_PYTHON[key]


def _exists(client: Any, image: str) -> bool:
    import docker

    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def _pull(client: Any, image: str) -> str | None:
    """None when pulled, else why not (an error, or no answer within PULL_TIMEOUT_S)."""
    import threading

    outcome: list[str | None] = []

    def pull() -> None:
        try:
            repo, _, tag = image.partition(":")
            client.images.pull(repo, tag=tag or "latest")
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot be pulled here"
            outcome.append(str(getattr(exc, "explanation", None) or exc).splitlines()[0][:200])

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(PULL_TIMEOUT_S)
    return outcome[0] if outcome else f"no answer within {PULL_TIMEOUT_S:.0f} s"


def resolve_base(
    client: Any, wanted: str, default: str | None, python: str, log_path: Path | None = None,
    on_status: Callable[[str], None] | None = None,
) -> str:  # fmt: skip
    """The base to build an environment on. `wanted` is KBM_BASE_IMAGE or the matrix's; an override without the
    environment's Python gives way to the matrix's base; an official `python:X.Y` base that is not here is pulled,
    and where it cannot be, the local Python base stands in (built when `log_path` is given: prepare, not plan)."""
    xy = ".".join(python.split(".")[:2])
    say = on_status or (lambda _msg: None)
    if default and wanted != default and not has_python(client, wanted, xy):
        wanted = default
    if _exists(client, wanted) or replaceable(wanted) is None:
        return wanted
    planned = plan(client, xy)
    if planned is not None and _exists(client, planned[0]):
        return planned[0]
    if log_path is None:
        return wanted
    say(f"pulling the base image {wanted}")
    why = _pull(client, wanted)
    if why is None:
        return wanted
    say(f"the base image {wanted} cannot be pulled ({why}): making a local Python {xy} base instead")
    with open(log_path, "w") as log:
        tag = build(client, xy, log, say)
    say(f"local Python {xy} base: {tag} (stands in for {wanted})")
    return tag
