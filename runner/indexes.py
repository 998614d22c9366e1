"""Package indexes an environment names (matrix.yaml `index_url`, `extra_index_urls`), turned into pip options.

Why: PyPI's `torch` is the CUDA build (with ~3 GB of nvidia-* wheels); the CPU build lives on PyTorch's own
index as `torch==X+cpu`. Pinning `+cpu` and adding that index as an *extra* index installs the CPU build on any
machine, while everything the machine's pip is configured with (a mirror as index-url, local find-links, other
extra indexes, a constraints file) still applies unchanged: pip appends command-line extra indexes to its
configured ones. A user's own PIP_INDEX_URL wins over an environment's `index_url`.

An index that does not answer a short HEAD request (through the user's proxies) is left out with a note: pip would
otherwise retry it for minutes, and the machine's own wheels may well satisfy the pin (a mirror, a wheel folder).
If nothing does, pip's error names the missing `+cpu` build, never a silent 3 GB CUDA download.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from runner.datafetch import reachable


def pip_index_args(index_url: str | None, extra_index_urls: list[str] | tuple[str, ...],
                   note: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """pip install/download options for these indexes; `note` hears which were left out, and why."""
    args: list[str] = []
    if index_url:
        if os.environ.get("PIP_INDEX_URL"):
            note(f"PIP_INDEX_URL={os.environ['PIP_INDEX_URL']} is set: it replaces the matrix's index {index_url}")
        elif (why := reachable(_probe_url(index_url))) is None:
            args += ["--index-url", index_url]
        else:
            note(f"index {index_url} left out ({why}); installing from this machine's pip configuration")
    for url in extra_index_urls:
        why = reachable(_probe_url(url))
        if why is None:
            args += ["--extra-index-url", url]
        else:
            note(f"extra index {url} left out ({why}); installing from this machine's pip configuration")
    return args


def _probe_url(index: str) -> str:
    """The index's page (a simple index answers on its root, with a trailing slash)."""
    return index if index.endswith("/") else index + "/"
