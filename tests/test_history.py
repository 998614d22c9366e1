"""The history for real: real smoke runs add themselves to a real SQLite file, nights made from a real run (scaled
result files that pass the contract) carry an injected slowdown that `history check` must find at its night, the
same nights without it must stay quiet, and the site opens in headless Chromium.

Nights: a real run's results scaled by a seeded night factor (4 % between nights, 3 % between a night's repeats),
and by 1.15 from night 12 on; 20 nights, so the step is 8 runs old, inside check's 10-run window. With this
noise the detector finds such a step in about nine seeds of ten (tests/history_fixtures.py; README "History"):
the seed is fixed, so the test is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from sqlalchemy import create_engine

from history import migrate
from history.store import Store
from runner.paths import REPO_ROOT
from tests.browser import check_page, chromium_path
from tests.ci import in_ci
from tests.history_fixtures import history, kbm

NIGHTS, STEP_AT = 20, 12
JUDGED_TIMES = ("steady s/epoch", "article-style s/epoch")


def db_rows(path: Path) -> dict[str, list[tuple]]:
    with Store(str(path), create=False) as store:
        return {t: store.rows(t) for t in ("runs", "cells", "epochs")}


def test_a_finished_run_adds_itself_and_no_history_skips_it(real_runs, tmp_path):
    first, second = real_runs["procs"]
    db = real_runs["results"] / "history.sqlite"
    assert f"history: {db.resolve()}" in first.stderr.replace("\n", "")
    assert "history:" not in second.stderr
    rows = db_rows(db)
    run1, run2 = (r.name for r in real_runs["runs"])
    assert [r[0] for r in rows["runs"]] == [run1]  # the --no-history run is not there
    results = [json.loads(p.read_text()) for p in real_runs["runs"][0].glob("*/result.json")]
    assert sorted(c[1] for c in rows["cells"]) == sorted(r["spec_hash"] for r in results)
    assert len(rows["epochs"]) == sum(len(r["epochs"]) for r in results)


def test_adding_a_run_twice_changes_nothing(real_runs, tmp_path):
    db = tmp_path / "h.sqlite"
    runs = [str(r) for r in real_runs["runs"]]
    first = history("add", *runs, "--history", str(db))
    assert first.returncode == 0, first.stderr
    before = db_rows(db)
    again = history("add", *runs, "--history", str(db))
    assert again.returncode == 0 and "already there, nothing changed" in again.stdout, again.stdout
    assert db_rows(db) == before
    assert len(before["runs"]) == 2 and len(before["cells"]) == 4 + 2


def test_two_processes_adding_at_once_both_land(make_nights, tmp_path):
    """Two runs finishing at once, on a history neither has created yet: both processes create, migrate and add."""
    runs = make_nights(tmp_path / "nights", 4)
    db = tmp_path / "h.sqlite"
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "history", "add", str(a), str(b), "--history",
                               str(db)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, b in (runs[:2], runs[2:])]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    rows = db_rows(db)
    assert sorted(r[0] for r in rows["runs"]) == sorted(r.name for r in runs)
    assert len(rows["cells"]) == 4 * 4
    with sqlite3.connect(db) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]


def test_rebuild_gives_what_adding_gave(real_runs, tmp_path):
    added = tmp_path / "added.sqlite"
    assert history("add", *map(str, real_runs["runs"]), "--history", str(added)).returncode == 0
    rebuilt = tmp_path / "rebuilt.sqlite"
    proc = history("rebuild", str(real_runs["results"]), "--history", str(rebuilt))
    assert proc.returncode == 0 and "2 run(s), 6 result(s)" in proc.stdout, proc.stdout + proc.stderr
    assert db_rows(rebuilt) == db_rows(added)
    again = history("rebuild", str(real_runs["results"]), "--history", str(rebuilt))  # a rerun: same rows
    assert again.returncode == 0 and db_rows(rebuilt) == db_rows(added)


@pytest.fixture(scope="module")
def series_dbs(make_nights, tmp_path_factory) -> dict[str, Path]:
    """Two histories of the same 20 nights, with and without the slowdown from night 12."""
    root = tmp_path_factory.mktemp("series")
    out = {}
    for name, slow in (("slow", STEP_AT), ("flat", None)):
        runs = make_nights(root / name, NIGHTS, slowdown_from=slow)
        out[name] = root / f"{name}.sqlite"
        proc = history("add", *map(str, runs), "--history", str(out[name]))
        assert proc.returncode == 0, proc.stderr
    return out


def regressions(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("REGRESSION ")]


def test_an_injected_slowdown_is_one_step_at_its_night_and_fails_check(series_dbs):
    proc = history("check", "--history", str(series_dbs["slow"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = regressions(proc.stdout)
    night = f"2027-01-{STEP_AT + 1:02d}T02:17:00Z"  # night 12 (from 0) is January 13th
    found = {(b, figure) for line in lines for b in ("jax", "torch") for figure in JUDGED_TIMES
             if f"mlp {b} " in line and f": {figure}: step +" in line and f" at {night} " in line}
    assert found == {(b, f) for b in ("jax", "torch") for f in JUDGED_TIMES}, lines
    assert len(lines) == 4, lines  # one step per judged time series, nothing else (accuracy did not move)
    for line in lines:
        change = float(re.search(r"step \+([\d.]+) %", line).group(1))
        assert 8 < change < 23, line  # 15 % injected, seen through the noise
        assert "commits " in line and ".." in line


def test_the_same_nights_without_the_slowdown_give_no_step(series_dbs):
    proc = history("check", "--history", str(series_dbs["flat"]))
    assert proc.returncode == 0, proc.stdout
    assert regressions(proc.stdout) == [] and "0 new conclusive regression(s)" in proc.stdout
    shown = history("show", "--metric", "all", "--history", str(series_dbs["flat"]))
    assert shown.returncode == 0 and "step " not in shown.stdout, shown.stdout


def test_show_prints_latest_trend_and_the_step_with_its_commits(series_dbs):
    proc = history("--history", str(series_dbs["slow"]))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "history:" in out and "(2 series;" in out  # steady s/epoch of JAX and PyTorch by default
    for backend in ("jax", "torch"):
        assert re.search(rf"│ mlp\s+│ {backend}\s+│", out), out
    assert out.count("REGRESSION ") == 4
    before = hashlib.sha1(f"night {STEP_AT - 1}".encode()).hexdigest()[:10]
    after = hashlib.sha1(f"night {STEP_AT}".encode()).hexdigest()[:10]
    assert f"commits {before}..{after}" in out


def test_a_new_hardware_fingerprint_starts_a_new_series(make_nights, tmp_path):
    runs = make_nights(tmp_path / "nights", 12, host_from=6, host={"cpu_model": "Other CPU", "usable_cores": 8})
    db = tmp_path / "h.sqlite"
    assert history("add", *map(str, runs), "--history", str(db)).returncode == 0
    proc = history("show", "--series", "jax", "--history", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "(2 series;" in proc.stdout and "CPU: Other CPU, 8 cores" in proc.stdout
    assert proc.stdout.count("(ended)") == 1 and "cores (ended)" in proc.stdout.replace("\n", " ")
    assert history("check", "--history", str(db)).returncode == 0


class Svgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.trends, self.sparks, self.points = 0, 0, 0

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class", "")
        self.trends += tag == "svg" and cls == "trend"
        self.sparks += tag == "svg" and cls == "spark"
        self.points += tag == "g" and cls == "pt"


def test_the_site_opens_in_chromium_with_a_trend_plot_per_backend(series_dbs, tmp_path):
    if chromium_path() is None:
        message = "chromium is not installed: apt-get install -y chromium"
        pytest.fail(message) if in_ci() else pytest.skip(message)
    out = tmp_path / "site"
    proc = history("report", "--out", str(out), "--history", str(series_dbs["slow"]))
    assert proc.returncode == 0 and f"history site: {out / 'index.html'}" in proc.stdout, proc.stdout + proc.stderr
    index, page = (out / "index.html").read_text(), (out / "test-mlp.html").read_text()
    for html in (index, page):
        assert "<script" not in html and "http://" not in html and "https://" not in html  # offline, no CDN
    assert index.index("new conclusive regression") < index.index("Every test")  # regressions first
    parsed = Svgs()
    parsed.feed(page)
    assert parsed.trends == 14  # jax and torch x steady, article-style, first epoch, accuracy, p50 latency,
    # throughput, peak memory
    assert parsed.points == 14 * NIGHTS
    for name in ("index.html", "test-mlp.html"):
        check = check_page(out / name, tmp_path / f"shots-{name}")
        assert check.console_errors == [], check.console_errors
        assert check.title.startswith(("Keras Backend Matrix: history", "History: mlp"))
    shot = imread(check.screenshots["top"])[..., :3]  # the test page's first screen: JAX's trend plot
    jax_blue = np.array([0x00, 0x72, 0xB2]) / 255
    assert np.sum(np.all(np.abs(shot - jax_blue) < 0.03, axis=-1)) > 200  # its points were drawn
    red = np.array([0xC6, 0x28, 0x28]) / 255
    assert np.sum(np.all(np.abs(shot - red) < 0.03, axis=-1)) > 20  # and the regression marked


@pytest.mark.parametrize("args, says", [
    (["show", "--history", "{db}"], "no history at"),
    (["check", "--history", "{db}"], "history add results/<run-id>"),
    (["report", "--history", "{db}"], "no history at"),
    (["add", "{tmp}", "--history", "{db}"], "not a run folder (no run.json)"),
    (["rebuild", "{tmp}/absent"], "not a folder"),
    (["rebuild", "{tmp}"], "holds no run folder"),
    (["show", "--history", "mysql://u@h/db"], "not supported"),
])
def test_bad_input_is_exit_2_and_names_the_fix(args, says, tmp_path):
    proc = history(*(a.format(db=tmp_path / "none.sqlite", tmp=tmp_path) for a in args))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr, proc.stderr
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates a history


def test_unknown_series_and_bad_options_are_exit_2(series_dbs):
    db = str(series_dbs["flat"])
    proc = history("check", "--series", "cntk", "--history", db)
    assert proc.returncode == 2 and "no series matches 'cntk'; known series:" in proc.stderr, proc.stderr
    assert "mlp jax keras3-jax" in proc.stderr
    proc = history("show", "--window", "0", "--history", db)
    assert proc.returncode == 2 and "--window 0" in proc.stderr
    proc = history("show", "--metric", "speed", "--history", db)
    assert proc.returncode == 2 and "unknown figure speed" in proc.stderr


def test_a_schema_1_store_is_upgraded_in_place_and_a_newer_one_refused(real_runs, tmp_path):
    db = tmp_path / "old.sqlite"
    engine = create_engine(f"sqlite:///{db}")  # schema 1, as an older checkout left it, with a run in it
    assert migrate.upgrade(engine, target=1) == [1]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO runs (run_id, added_at) VALUES ('old-run', '2026-01-01T00:00:00Z')")
    engine.dispose()
    proc = history("add", str(real_runs["runs"][0]), "--history", str(db))
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
        assert {r for (r,) in conn.execute("SELECT run_id FROM runs")} == {"old-run", real_runs["runs"][0].name}
        assert "peak_rss_mb" in [c[1] for c in conn.execute("PRAGMA table_info(cells)")]
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00Z', 'from the future')")
    proc = history("show", "--history", str(db))
    assert proc.returncode == 2 and "newer than this checkout knows" in proc.stderr, proc.stderr


def test_an_unwritable_history_is_a_warning_not_a_failed_run(real_runs, tmp_path):
    from history.hook import add_after_run

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    said = []

    class Console:
        def print(self, *objects, **kw):
            said.append(" ".join(map(str, objects)))

    assert add_after_run(real_runs["runs"][0], str(blocker / "history.sqlite"), tmp_path, Console()) is False
    assert len(said) == 1 and said[0].startswith("warning: the run was not added to the history")
    assert f"./kbm history add {real_runs['runs'][0]}" in said[0]


def test_the_entry_point_gives_the_exit_statuses_and_help(series_dbs):
    """`python -m runner history ...` in a process of its own: 1 on the slowdown, 0 without it, help for each."""
    assert kbm("history", "check", "--history", str(series_dbs["slow"])).returncode == 1
    assert kbm("history", "check", "--history", str(series_dbs["flat"])).returncode == 0
    top = kbm("history", "--help")
    assert top.returncode == 0 and all(f"history {c}" in top.stdout for c in ("add RUN", "rebuild", "report",
                                                                             "check", "[show]")), top.stdout
    for command in ("show", "add", "rebuild", "report", "check"):
        helped = history(command, "--help")
        assert helped.returncode == 0 and "--history PATH|URL" in helped.stdout, command


def test_the_figures_of_schema_2_results_reach_the_store_as_the_loader_names_them():
    """reports.load's frame for schema-2 results (inference and memory): latency in ms, throughput per batch size,
    the spec hash as a column; a GPU's count from the validated file joins the fingerprint."""
    import pandas as pd

    from history.source import _cell_row

    row = pd.Series({"run_id": "r", "cell_id": "mlp.jax.keras3-jax.article.stock.r0", "spec_hash": "abc",
                     "model": "mlp", "device": "GPU: NVIDIA H200", "busy": False, "latency_p50_ms": 2.5,
                     "throughput": {1: 400.0, 32: 9000.0, 256: 30000.0}, "peak_rss_mb": 2048.0,
                     "gpu_peak_mb": float("nan")})
    raw = {"host": {"gpu": {"used": True, "devices": ["NVIDIA H200", "NVIDIA H200"]}}}
    cell = _cell_row(row, raw)
    assert cell["spec_hash"] == "abc" and cell["latency_s"] == 0.0025 and cell["throughput_per_s"] == 30000.0
    assert cell["peak_rss_mb"] == 2048.0 and cell["gpu_peak_mb"] is None
    assert cell["fingerprint"] == "GPU: NVIDIA H200 x 2"
    older = _cell_row(pd.Series({"run_id": "r", "cell_id": "c", "device": "CPU: AMD EPYC, 2 cores", "busy": True}),
                      {"spec_hash": "def", "host": {"gpu": {"used": False}}})
    assert older["spec_hash"] == "def" and older["latency_s"] is None and older["fingerprint"].endswith("2 cores")
