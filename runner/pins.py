"""What an environment pins: exact package versions read from its requirement lines.

Used where a version must be compared with the matrix (a variant's `versions` range, `--python`'s warnings).
"""

from __future__ import annotations

import re


def requirement_name(requirement: str) -> tuple[str, str | None]:
    """('tensorflow-cpu', '2.21.0') from 'tensorflow-cpu==2.21.0'; extras and markers dropped, names normalised."""
    name, _, version = requirement.partition("==")
    name = re.split(r"[\[ ;<>=!~@]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return name, (version.split(";")[0].strip() or None)


def pinned_packages(keras: str, requirements: list[str]) -> dict[str, str]:
    """Every package pinned exactly (name -> version), and keras."""
    pins = {"keras": keras}
    for requirement in requirements:
        name, version = requirement_name(requirement)
        if version is not None:
            pins[name] = version
    return pins
