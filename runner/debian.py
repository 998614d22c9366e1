"""Debian packages for an environment, unpacked into its own folder: the roots `matrix.yaml` names and everything
they depend on, less the base system that every Debian machine has.

A hand list of packages works only where the machine happens to have the rest: libopenmpi3 needs libhwloc15,
libpmix2, libfabric1, libucx0 and more, which Slurm's packages bring and a fresh machine lacks. So apt resolves
the roots' dependencies itself, against a private, empty package database (nothing counts as installed), which
gives the same answer on every machine whatever it has installed; what it leaves out is the base system: the
Essential and `Priority: required` packages and their own dependencies, which is what `debootstrap
--variant=minbase` installs and what no Debian system is without (libc6, libgcc-s1, libstdc++6, zlib1g, ...).
A root is always fetched, even one of the base system's.

Nothing on the system changes: apt runs with its own state and caches in a folder of the build (and its own
`apt-get update` there when the machine has no package lists, or stale ones), `apt-get download` fetches exactly
the resolved versions and `dpkg -x` unpacks them. Maintainer scripts never run, so what they would make is not
there (an update-alternatives link such as OpenMPI's InfiniPath PSM library; only transport plugins need it).
The unpacked tree gets Debian 12's merged /usr (`lib/` moved into `usr/lib/`), so one library folder holds them all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Part of every environment fingerprint that has Debian packages: a change of method here changes what gets
# installed, so environments built by an earlier method are rebuilt, never reused.
RESOLUTION = "apt-closure-without-minbase-1"
BASE_SYSTEM = ("?essential", "?priority(required)")  # apt patterns (apt >= 2.0): debootstrap's minbase
MERGED = ("lib", "lib32", "lib64", "libx32", "bin", "sbin")  # top-level folders that merged /usr moves into usr/
INST = re.compile(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)")


class DebianError(RuntimeError):
    """The packages cannot be resolved, fetched or unpacked; the message says what failed and what to do."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str

    @property
    def pin(self) -> str:
        return f"{self.name}={self.version}"


class Apt:
    """apt-get with private state under `folder`: an empty dpkg status and its own caches; the system's package
    lists, or its own (`private_lists`) where the system has none."""

    def __init__(self, folder: Path, log: TextIO):
        self.folder, self.log = folder, log
        self.status = folder / "status"
        self.lists = folder / "lists"
        self.private_lists = False
        for sub in (folder / "cache" / "archives" / "partial", self.lists / "partial"):
            sub.mkdir(parents=True, exist_ok=True)
        self.status.touch()

    def options(self) -> list[str]:
        opts = ["-q", "-o", f"Dir::State::status={self.status}", "-o", f"Dir::Cache={self.folder / 'cache'}",
                "-o", "Debug::NoLocking=1"]
        if os.geteuid() == 0:  # root's apt downloads as _apt, who cannot write into the build folder
            opts += ["-o", "APT::Sandbox::User=root"]
        if self.private_lists:
            opts += ["-o", f"Dir::State::Lists={self.lists}"]
        return opts

    def run(self, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        argv = ["apt-get", *self.options(), *args]
        self.log.write(f"$ {' '.join(argv)}\n")
        self.log.flush()
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
        self.log.write(proc.stdout + proc.stderr)
        self.log.flush()
        return proc

    def use_private_lists(self) -> None:
        """Package lists of its own (`apt-get update` into the build folder): no root needed, the system's kept."""
        self.private_lists = True
        proc = self.run(["update"])
        if proc.returncode != 0:
            raise DebianError(f"`apt-get update` into a private folder failed: {_last_error(proc)}; check the "
                              "machine's apt sources (/etc/apt/sources.list*) and that their mirror is reachable")

    def simulate(self, targets: list[str]) -> list[Package]:
        """What `apt-get install targets` would install on a machine with nothing installed, in apt's order."""
        proc = self.run(["-s", "install", "--no-install-recommends", *targets])
        if proc.returncode != 0:
            raise DebianError(f"apt cannot resolve {' '.join(targets)}: {_last_error(proc)}; each of debian_packages "
                              "in matrix.yaml must be a package of this machine's Debian or Ubuntu release")
        return [Package(*m.groups()) for m in map(INST.match, proc.stdout.splitlines()) if m]


def _last_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith(("E:", "W:"))]
    return (lines[-1] if lines else f"exit status {proc.returncode}").strip()


def system_has_lists() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(lists.glob("*_Packages*"))


def resolve(roots: list[str], apt: Apt) -> tuple[list[Package], list[str]]:
    """(packages to fetch, names left to the base system): the roots' closure, less the base system's."""
    closure = apt.simulate(list(roots))
    base = {p.name for p in apt.simulate(list(BASE_SYSTEM))}
    keep = [p for p in closure if p.name not in base or p.name in roots]
    return sorted(keep, key=lambda p: p.name), sorted(p.name for p in closure if p not in keep)


def fetch(roots: list[str], folder: Path, debs: Path, log: TextIO) -> tuple[list[Package], list[str], str]:
    """Resolve and download into `debs`; stale or missing system lists are replaced by private ones, once."""
    apt = Apt(folder, log)
    if not system_has_lists():
        apt.use_private_lists()
    while True:
        try:
            packages, base = resolve(roots, apt)
            proc = apt.run(["download", *(p.pin for p in packages)], cwd=debs)
            if proc.returncode != 0:
                raise DebianError(f"`apt-get download` failed: {_last_error(proc)}")
            return packages, base, "private (apt-get update)" if apt.private_lists else "the system's"
        except DebianError:
            if apt.private_lists:
                raise
            log.write("the system's package lists did not serve; retrying with private ones\n")
            for stale in debs.glob("*.deb"):
                stale.unlink()
            apt.use_private_lists()


def _control(deb: Path) -> tuple[str, str]:
    """(Package, Version) from a .deb's control file (its file name escapes the version's epoch)."""
    proc = subprocess.run(["dpkg-deb", "--show", "--showformat", "${Package} ${Version}", str(deb)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise DebianError(f"{deb.name} is not a readable .deb: {proc.stderr.strip()}")
    name, _, version = proc.stdout.strip().partition(" ")
    return name, version


def merge_usr(root: Path) -> None:
    """Debian 12's layout: `lib/x` becomes `usr/lib/x` (a file already there wins), `lib` a link to `usr/lib`."""
    for name in MERGED:
        top = root / name
        if not top.is_dir() or top.is_symlink():
            continue
        for path in sorted(top.rglob("*")):
            target = root / "usr" / path.relative_to(root)
            if path.is_dir() and not path.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists() and not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        shutil.rmtree(top)
        top.symlink_to(Path("usr") / name)


def make_links(root: Path, links: dict[str, str], names: list[str]) -> None:
    for link, target in links.items():
        path = root / link
        if not (path.parent / target).exists():
            raise DebianError(
                f"library_links: {link} -> {target}: {path.parent / target} is not in the unpacked packages "
                f"({', '.join(names)}); fix the link in matrix.yaml"
            )
        path.unlink(missing_ok=True)
        path.symlink_to(target)


def unpack(roots: list[str], links: dict[str, str], where: Path, log: TextIO) -> dict[str, Any]:
    """Fetch the closure of `roots` and unpack it into `where/debian`; returns its provenance for the marker."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        raise DebianError(
            f"needs the Debian packages {', '.join(roots)} but this host has no apt-get/dpkg; run this environment "
            "with the Docker executor (its recipe installs them) or on a Debian/Ubuntu host"
        )
    debs, state = where / "debian-downloads", where / "debian-apt"
    debs.mkdir()
    packages, base, lists = fetch(roots, state, debs, log)
    root = where / "debian"
    files = {_control(deb): deb for deb in debs.glob("*.deb")}
    missing = [p.pin for p in packages if (p.name, p.version) not in files]
    if missing or len(files) != len(packages):
        raise DebianError(f"`apt-get download` left out {', '.join(missing) or 'nothing'} and brought "
                          f"{len(files)} files for {len(packages)} packages into {debs}")
    facts = []
    for p in packages:
        deb = files[(p.name, p.version)]
        proc = subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise DebianError(f"`dpkg -x {deb.name}` failed: {proc.stderr.strip()}")
        facts.append({"deb": deb.name, "bytes": deb.stat().st_size,
                      "sha256": hashlib.sha256(deb.read_bytes()).hexdigest()})
    merge_usr(root)
    make_links(root, links, sorted(f["deb"] for f in facts))
    shutil.rmtree(debs)
    shutil.rmtree(state)
    total = sum(f["bytes"] for f in facts)
    log.write(f"Debian packages: {len(packages)} fetched ({total / 1e6:.1f} MB) for {', '.join(roots)}: "
              f"{', '.join(p.pin for p in packages)}; left to the base system: {', '.join(base)}\n")
    return {
        "roots": list(roots),
        "resolution": RESOLUTION,
        "package_lists": lists,
        "packages": [{"name": p.name, "version": p.version, "arch": p.arch, **f}
                     for p, f in zip(packages, facts, strict=True)],
        "download_bytes": total,
        "left_to_base_system": base,
    }
