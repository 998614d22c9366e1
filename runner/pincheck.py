"""Do an image's pins still resolve on PyPI? A metadata-only check, so CI catches a broken GPU pin without the
multi-GB build: `python -m runner.pincheck [--gpus] [ENV ...]`.

`pip install --dry-run` would be the natural tool, but it downloads every wheel in full wherever the index serves no
PEP 658 metadata (measured here behind the TLS proxy: 124 MB of jax-cuda13-pjrt and 439 MB of nvidia-cublas for
one dry run). This walks the same graph through PyPI's JSON API instead: for each requirement, the newest release
its specifier allows that has a wheel for the image's interpreter and platform (CPython X.Y, manylinux x86_64),
then that wheel's own requirements (markers evaluated for the target, extras followed), read from its PEP 658
`.metadata` file or, where the index serves none, from its METADATA member through HTTP range requests (kilobytes,
never the wheel). A pin that names no release, has no wheel for the platform, or needs a dependency that has none
is reported with the chain that needs it. It does not backtrack across conflicting dependency ranges (pip's
resolver does that at build time).
"""

from __future__ import annotations

import argparse
import email.parser
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

INDEX = os.environ.get("KBM_PYPI_JSON", "https://pypi.org/pypi")
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(39, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]  # fmt: skip


def target_tags(python: str) -> set[Tag]:
    major, minor = (int(p) for p in python.split(".")[:2])
    abi = f"cp{major}{minor}"
    return set(cpython_tags((major, minor), [abi, "abi3", "none"], PLATFORMS)) | set(
        compatible_tags((major, minor), abi, PLATFORMS)
    )


def marker_env(python: str) -> dict[str, str]:
    xy = ".".join(python.split(".")[:2])
    return {"python_version": xy, "python_full_version": f"{xy}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "platform_release": "", "platform_version": "", "implementation_version": f"{xy}.0"}  # fmt: skip


@dataclass
class Outcome:
    chosen: dict[str, str] = field(default_factory=dict)  # project -> version
    problems: list[str] = field(default_factory=list)
    requests: int = 0


class _Index:
    """PyPI's JSON API, one GET per URL (projects are shared between the images' graphs)."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}
        self.requests = 0

    def get(self, url: str, parse: Any = json.load) -> Any:
        if url not in self.cache:
            self.requests += 1
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    self.cache[url] = parse(response)
            except urllib.error.HTTPError as exc:
                self.cache[url] = None if exc.code == 404 else {"error": f"HTTP {exc.code}"}
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.cache[url] = {"error": f"{type(exc).__name__}: {exc}"}
        return self.cache[url]


def _requires_dist(response: Any) -> list[str]:
    """Requires-Dist of a wheel's core metadata (PEP 658: the `.metadata` file beside the wheel, a few KB)."""
    return email.parser.BytesParser().parse(response, headersonly=True).get_all("Requires-Dist") or []


class _RangeFile(io.RawIOBase):
    """A remote wheel read through HTTP range requests: zipfile reads its central directory and one member."""

    def __init__(self, url: str):
        self.url, self.pos = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as response:
            self.size = int(response.headers["Content-Length"])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.pos + len(buffer), self.size)
        if end <= self.pos:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def wheel_requires(url: str) -> list[str]:
    """Requires-Dist from the wheel's METADATA, read with range requests (never the whole wheel)."""
    with zipfile.ZipFile(io.BufferedReader(_RangeFile(url), buffer_size=1 << 16)) as wheel:
        name = next(n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return _requires_dist(io.BytesIO(wheel.read(name)))


def requires_of(index: _Index, url: str) -> list[str] | str:
    """The wheel's requirements: its PEP 658 file where the index serves one, else a range read; or why not."""
    found = index.get(f"{url}.metadata", _requires_dist)
    if isinstance(found, list):
        return found
    try:
        return wheel_requires(url)
    except (OSError, ValueError, KeyError, StopIteration, zipfile.BadZipFile) as exc:
        return f"its metadata could not be read ({type(exc).__name__}: {exc})"


def _wheel(files: list[dict[str, Any]], tags: set[Tag], python: str) -> str | None:
    """The URL of a wheel among a release's files that installs on the target, or None."""
    version = Version(".".join(python.split(".")[:2]) + ".0")
    for f in files:
        if f.get("yanked") or not f["filename"].endswith(".whl"):
            continue
        needs = f.get("requires_python")
        try:
            if needs and version not in SpecifierSet(needs):
                continue
            if set(parse_wheel_filename(f["filename"])[3]) & tags:
                return f["url"]
        except (InvalidVersion, ValueError):
            continue
    return None


def check(requirements: list[str], python: str, index: _Index | None = None) -> Outcome:
    """Walk the requirement graph level by level (each level's projects fetched in parallel)."""
    index = index or _Index()
    tags, env = target_tags(python), marker_env(python)
    out = Outcome()
    level: list[tuple[Requirement, str]] = []
    for line in requirements:
        try:
            level.append((Requirement(line), ""))
        except InvalidRequirement as exc:
            out.problems.append(f"{line}: not a valid requirement ({exc})")
    seen: set[tuple[str, frozenset[str]]] = set()
    with ThreadPoolExecutor(8) as pool:
        while level:
            todo = []
            for req, chain in level:
                key = (canonicalize_name(req.name), frozenset(req.extras))
                if key not in seen:
                    seen.add(key)
                    todo.append((req, chain))
            projects = list(pool.map(lambda rc: index.get(f"{INDEX}/{canonicalize_name(rc[0].name)}/json"), todo))
            picked = []
            for (req, chain), project in zip(todo, projects, strict=True):
                if req.url:
                    continue  # a direct URL (not on the index): pip fetches it at build time
                if not project or "error" in project:
                    out.problems.append(f"{chain}{req.name} is not on PyPI ({(project or {}).get('error', 404)})")
                    continue
                versions = []
                for text in project.get("releases", {}):
                    try:
                        versions.append(Version(text))
                    except InvalidVersion:
                        continue
                allowed = sorted(req.specifier.filter(versions, prereleases=bool(req.specifier)), reverse=True)
                found = ((v, _wheel(project["releases"][str(v)], tags, python)) for v in allowed)
                version, url = next(((v, u) for v, u in found if u), (None, None))
                if version is None:
                    what = "no such release" if not allowed else f"no wheel for CPython {python} manylinux x86_64"
                    out.problems.append(f"{chain}{req}: {what} (newest allowed: {allowed[0] if allowed else '-'})")
                    continue
                out.chosen[canonicalize_name(req.name)] = str(version)
                base = f"{INDEX}/{canonicalize_name(req.name)}/json"  # mirrors may give URLs relative to it
                picked.append((req, chain, version, urllib.parse.urljoin(base, url)))
            metadata = list(pool.map(lambda p: requires_of(index, p[3]), picked))
            level = []
            for (req, chain, version, _), requires in zip(picked, metadata, strict=True):
                if isinstance(requires, str):
                    out.problems.append(f"{chain}{req.name}=={version}: {requires}")
                    continue
                for line in requires:
                    dep = Requirement(line)
                    extras = req.extras or {""}
                    if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                        level.append((dep, f"{chain}{req.name}=={version} -> "))
    out.requests = index.requests
    return out


def image_requirements(matrix: Any, name: str, flavour: str) -> list[str]:
    env = matrix.environments[name]
    return list((env.docker.requirements.get(flavour) if env.docker else None) or env.requirements)


def main(argv: list[str] | None = None) -> int:
    from runner import paths
    from runner.matrix import MatrixError, load_matrix

    p = argparse.ArgumentParser(prog="python -m runner.pincheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("environments", nargs="*", help="default: every Keras 3 environment with a recipe")
    p.add_argument("--gpus", action="store_true", help="check the GPU images' requirements (default: CPU)")
    p.add_argument("--matrix", type=Path, default=paths.DEFAULT_MATRIX)
    args = p.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
    except MatrixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    flavour = "gpu" if args.gpus else "cpu"
    names = args.environments or [n for n, e in matrix.environments.items() if e.docker and e.keras.startswith("3")]
    index, failed = _Index(), 0
    for name in names:
        outcome = check(image_requirements(matrix, name, flavour), matrix.environments[name].image_python, index)
        failed += bool(outcome.problems)
        state = "ok" if not outcome.problems else "BROKEN"
        print(f"{name} ({flavour}): {state}, {len(outcome.chosen)} projects resolve")
        for problem in outcome.problems:
            print(f"  {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
