"""Where things live: the repository, the environment cache, results. One place, so tests can redirect it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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
