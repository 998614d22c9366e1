"""MkDocs hook (mkdocs.yml `hooks:`): adds the generated reference pages (tooling/docs_reference.py) to the site.

They exist only in the build, never in docs/, so no stale copy can be read or committed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def on_files(files: Any, config: Any) -> Any:
    # mkdocs loads this file by path and restores sys.path afterwards; the generator imports the project's packages
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from mkdocs.structure.files import File

    from tooling.docs_reference import pages

    for uri, text in pages().items():
        files.append(File.generated(config, uri, content=text))
    return files
