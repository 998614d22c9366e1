"""One column order for every table, plot and terminal line: the Keras 3 backends, their native twins, the 2017
stacks.

Derived from matrix.yaml, not a list of names kept by hand: a backend's group comes from its `driver` (a native
twin) and from the Keras version of the environments that host it (3 or later: Keras 3; below: the 2017 stacks);
within a group the backends keep matrix.yaml's order, and a twin takes the place of its family's Keras 3 backend,
so TensorFlow, JAX, PyTorch are followed by TensorFlow (native), JAX (native), PyTorch (native). Reports and history
read results whose matrix.yaml may be gone, so a backend the matrix does not name is placed from the facts its
result recorded (driver, Keras version), after the known ones of its group.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from common.resources import DEFAULT_MATRIX

KERAS3, NATIVE, STACKS_2017 = 0, 1, 2
GROUP_TITLES = {KERAS3: "Keras 3", NATIVE: "native twins", STACKS_2017: "the 2017 stacks"}
UNKNOWN = 10_000  # after every backend matrix.yaml names


def _major(version: str | None) -> int | None:
    head = str(version or "").split(".")[0]
    return int(head) if head.isdigit() else None


def group_of(driver: str | None, keras_version: str | None) -> int:
    """A backend's group from its driver and its environment's Keras version (unknown version: Keras 3)."""
    if driver == "native":
        return NATIVE
    major = _major(keras_version)
    return STACKS_2017 if major is not None and major < 3 else KERAS3


@cache
def _matrix(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def model_key(model: str, path: Path = DEFAULT_MATRIX) -> tuple[int, str]:
    """Tests in matrix.yaml's order (the article's: MLP, CNN, CIFAR-10, hierarchical RNN, bAbI), then any other."""
    models = list(_matrix(path).get("models") or {})
    return (models.index(model) if model in models else len(models), model)


@cache
def matrix_order(path: Path = DEFAULT_MATRIX) -> dict[str, tuple[int, int]]:
    """backend -> (group, position) from matrix.yaml's backends and environments; empty where it cannot be read."""
    doc = _matrix(path)
    backends: dict[str, dict[str, Any]] = doc.get("backends") or {}
    keras: dict[str, str] = {}
    for env in (doc.get("environments") or {}).values():
        for name in env.get("backends") or []:
            known = _major(keras.get(name))
            if known is None or (_major(env.get("keras")) or 0) > known:
                keras[name] = str(env.get("keras") or "")
    position = {name: i for i, name in enumerate(backends)}
    out = {}
    for name, spec in backends.items():
        group = group_of(spec.get("driver"), keras.get(name))
        anchor = spec.get("family") if group == NATIVE else name
        out[name] = (group, position.get(anchor, position[name]))
    return out


def family_of(backend: str) -> str | None:
    """The framework family matrix.yaml gives a backend (a twin's and TensorFlow 1.x's: their Keras 3 backend's)."""
    spec = (_matrix(DEFAULT_MATRIX).get("backends") or {}).get(backend) or {}
    return spec.get("family") or (backend if spec else None)


def display_key(backend: str, driver: str | None = None, keras_version: str | None = None) -> tuple[int, int, str]:
    """Sort key of a backend in every table: (group, position in matrix.yaml, name)."""
    known = matrix_order().get(backend)
    if known is not None:
        return (*known, backend)
    return group_of(driver, keras_version), UNKNOWN, backend


def display_order(backends: list[str]) -> list[str]:
    """The distinct backends, in display order."""
    return sorted(dict.fromkeys(backends), key=display_key)


FALLBACK_COLORS = ("#000000", "#F0E442", "#999999", "#882255")  # a backend the matrix gives no colour, nor its family


def _blend(color: str, toward: float, share: float = 0.45) -> str:
    """`color` moved `share` of the way toward black (0.0) or white (1.0)."""
    rgb = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 * ((1 - share) * c + share * toward)):02x}" for c in rgb)


def color_of(backend: str) -> str:
    """A backend's colour in every figure, report and history page: matrix.yaml's `backends.<b>.color`; one without
    its own (a native twin, TensorFlow 1.x) takes its family's, darker for a twin and lighter for a 2017 stack, so
    the columns stay apart and related ones look related."""
    backends = _matrix(DEFAULT_MATRIX).get("backends") or {}
    own = (backends.get(backend) or {}).get("color")
    if own:
        return own
    base = (backends.get(family_of(backend) or "") or {}).get("color")
    if base:
        return _blend(base, 0.0 if display_key(backend)[0] == NATIVE else 1.0)
    return FALLBACK_COLORS[sum(map(ord, backend)) % len(FALLBACK_COLORS)]
