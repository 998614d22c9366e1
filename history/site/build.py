"""Write the history site: index.html (regressions first, every series with its sparkline) and test-<model>.html."""

from __future__ import annotations

import time
from pathlib import Path

from history.site.pages import index_html, test_file, test_html
from history.source import backend_key, model_key
from history.view import Row


def write_site(rows: list[Row], out: Path, where: str) -> Path:
    """Every page, rewritten whole (a test no longer in the history leaves no stale page behind); returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("test-*.html"):
        stale.unlink()
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # the run report's order: tests as matrix.yaml lists them, backends Keras 3, native twins, 2017 stacks
    rows = sorted(rows, key=lambda r: (model_key(r.series.key.model), backend_key(r.series.key.backend),
                                       r.series.key.name, r.series.metric.column != "steady_epoch_s",
                                       r.series.metric.title))
    for model in sorted({r.series.key.model for r in rows}, key=model_key):
        (out / test_file(model)).write_text(test_html(model, rows, where, generated))
    index = out / "index.html"
    index.write_text(index_html(rows, where, generated))
    return index
