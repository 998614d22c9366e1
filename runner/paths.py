"""Where things live: the repository, the environment cache, results. One place, so tests can redirect it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

# matrix.yaml and docker/: the checkout's root, or, where the package was pip-installed, the folder it ships them in
from common.resources import DEFAULT_MATRIX, REPO_ROOT, RESOURCES  # noqa: F401 (re-exported: one rule for all)

CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# Keras Backend Matrix cache (environments, data).\n"


def cache_dir() -> Path:
    """KBM_CACHE, else $XDG_CACHE_HOME/keras-backend-matrix, else ~/.cache/keras-backend-matrix."""
    base = os.environ.get("KBM_CACHE")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(xdg) / "keras-backend-matrix"
    path.mkdir(parents=True, exist_ok=True)
    tag = path / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(CACHEDIR_TAG)
        (path / ".gitignore").write_text("*\n")
    return path


def code_root() -> Path:
    """The folder whose `models/` is the worker's code, put on the environments' PYTHONPATH: the checkout itself,
    or, for a pip-installed package, a copy of its models/ in the cache (site-packages holds the host's own
    packages, which must never shadow an environment's numpy or Keras). The copy is named by its content."""
    if RESOURCES == REPO_ROOT:
        return REPO_ROOT
    models = REPO_ROOT / "models"
    # every module of models/, its packages too (the frameworks' modules, the native twins)
    files = sorted(p.relative_to(models) for p in models.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256(b"".join(f.as_posix().encode() + (models / f).read_bytes() for f in files)).hexdigest()[:12]
    root = cache_dir() / "code" / digest
    if not (root / "models").is_dir():
        tmp = root.with_name(f".{digest}.{os.getpid()}")
        for rel in files:
            (tmp / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(models / rel, tmp / "models" / rel)
        try:
            tmp.rename(root)
        except OSError:  # another run made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def git_state(root: Path = REPO_ROOT) -> dict[str, object]:
    """The commit the models ran from, and whether the tree had uncommitted changes (a figure needs both)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}
