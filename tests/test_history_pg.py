"""The shared history on a real PostgreSQL server (started by the session's `postgres` fixture, stopped by its
pid): the same two real runs give the same rows as in SQLite, two processes adding at once both land on a database
neither had created, and the commands read it by URL."""

from __future__ import annotations

import subprocess
import sys

from history.store import Store
from runner.paths import REPO_ROOT
from tests.history_fixtures import free_port, history

TABLES = ("runs", "cells", "epochs")


def rows(target: str) -> dict[str, list[tuple]]:
    with Store(target, create=False) as store:
        return {t: store.rows(t) for t in TABLES}


def test_two_real_runs_give_the_same_rows_in_sqlite_and_postgresql(real_runs, postgres, tmp_path):
    url, sqlite = postgres.url("same_rows"), str(tmp_path / "h.sqlite")
    for target in (sqlite, url):
        proc = history("add", *map(str, real_runs["runs"]), "--history", target)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    in_pg, in_sqlite = rows(url), rows(sqlite)
    assert in_pg == in_sqlite
    assert len(in_pg["runs"]) == 2 and len(in_pg["cells"]) == 6 and len(in_pg["epochs"]) == 6 * 3
    again = history("add", *map(str, real_runs["runs"]), "--history", url)
    assert "already there, nothing changed" in again.stdout and rows(url) == in_pg


def test_two_processes_adding_to_postgresql_at_once_both_land(make_nights, postgres, tmp_path):
    url = postgres.url("concurrent")
    runs = make_nights(tmp_path / "nights", 4, seed=3)
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "history", "add", str(a), str(b), "--history", url],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, b in (runs[:2], runs[2:])]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    found = rows(url)
    assert sorted(r[0] for r in found["runs"]) == sorted(r.name for r in runs) and len(found["cells"]) == 16
    with Store(url) as store, store.engine.connect() as conn:
        assert [v for (v,) in conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version")] == [1, 2]


def test_the_commands_read_postgresql_by_url(make_nights, postgres, tmp_path):
    url = postgres.url("commands")
    runs = make_nights(tmp_path / "nights", 14, slowdown_from=8, seed=7)
    assert history("add", *map(str, runs), "--history", url).returncode == 0
    check = history("check", "--history", url)
    assert check.returncode == 1 and "steady s/epoch: step +" in check.stdout, check.stdout
    assert f"history postgresql://kbm@127.0.0.1:{postgres.port}/commands" in check.stdout
    site = history("report", "--out", str(tmp_path / "site"), "--history", url)
    assert site.returncode == 0 and (tmp_path / "site" / "test-mlp.html").is_file()


def test_an_unreachable_server_or_an_empty_database_is_bad_input(postgres):
    dead = f"postgresql://kbm@127.0.0.1:{free_port()}/none"
    proc = history("show", "--history", dead)
    assert proc.returncode == 2 and "cannot open the history" in proc.stderr, proc.stderr
    empty = history("check", "--history", postgres.url("empty"))
    assert empty.returncode == 2 and "no history in" in empty.stderr, empty.stderr
