"""Where the shipped resources live (matrix.yaml, docker/): the checkout's root, or, where the package was
pip-installed, the folder it ships them in. In common/ so that the runner and the readers (reports, history) find
the same matrix.yaml."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = REPO_ROOT if (REPO_ROOT / "matrix.yaml").is_file() else REPO_ROOT / "keras_backend_matrix"
DEFAULT_MATRIX = RESOURCES / "matrix.yaml"
