"""README's picture of the report (`docs/images/report.png`): the first screen of the report of the recorded
run in `tests/data/schema2-run`, written by the report code of this checkout and shot in headless Chromium.

A recorded run, not a made-up one, so the picture shows what a reader's run gives; rerun it after the report's
first screen changes: `./kbm -m tooling.readme_picture` (needs `chromium` on PATH).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from reports.build import run_report_dir, write_report
from runner.paths import REPO_ROOT

RUN = REPO_ROOT / "tests" / "data" / "schema2-run"
OUT = REPO_ROOT / "docs" / "images" / "report.png"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.readme_picture", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--size", default="1280,900", help="the browser window, WIDTH,HEIGHT (the screen shot)")
    args = p.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / RUN.name
        shutil.copytree(RUN, run)
        index = write_report([run], run_report_dir(run), run.name)
        shot = Path(tmp) / "shot.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", "--disable-background-networking", f"--user-data-dir={tmp}/profile",
                        f"--window-size={args.size}", f"--screenshot={shot}", index.as_uri()],
                       cwd=tmp, capture_output=True, timeout=120, check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
