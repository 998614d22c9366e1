"""Where the history lives: a SQLite file by default, or any server database SQLAlchemy reaches by URL
(PostgreSQL through psycopg, for a fleet whose machines share one history).

Adding is idempotent and safe under concurrency: every write holds the store's write lock for its transaction and
compares what is there with what comes in, so adding a run twice changes nothing, a resumed run's new cells are
added, a result replaced by a resume is updated, and two runs finishing at once both land.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, delete, event, select, tuple_
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from history import migrate, schema
from history.errors import HistoryError
from history.source import Batch

DEFAULT_FILE = "history.sqlite"
ENV_VAR = "KBM_HISTORY"  # a path or URL used when --history is not given (the nightly's shared database)
SQLITE_BUSY_S = 120  # how long a writer waits for another's transaction before giving up


def default_target(results_dir: Path) -> str:
    return os.environ.get(ENV_VAR) or str(Path(results_dir) / DEFAULT_FILE)


def to_url(target: str) -> URL:
    """A path is a SQLite file; `postgresql://...` gets the psycopg driver; other URLs are refused by name."""
    if "://" not in target:
        return URL.create("sqlite", database=str(Path(target).expanduser().resolve()))
    try:
        url = make_url(target)
    except ArgumentError:
        raise HistoryError(f"--history {target!r}: not a database URL (postgresql://user@host:port/db) nor a "
                           "path") from None
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername.startswith(("postgresql+", "sqlite")):
        return url
    raise HistoryError(f"--history: {url.drivername} databases are not supported; use a file path (SQLite) or "
                       "postgresql://user@host:port/db")


def describe(target: str) -> str:
    """The target for messages, password masked."""
    url = to_url(target)
    if url.drivername == "sqlite":
        return url.database or ""
    return make_url(target).render_as_string(hide_password=True)  # as the user wrote it, password masked


def _engine(url: URL) -> Engine:
    if url.drivername != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_S})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
        dbapi_conn.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock at the start: no upgrade deadlocks

    return engine


@dataclass
class Added:
    runs: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.runs or self.new or self.updated)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Store:
    """An open history. `create=False` (reading) refuses a missing file or an empty database."""

    def __init__(self, target: str, create: bool = True):
        self.target, self.url = target, to_url(target)
        self.where = describe(target)
        if self.url.drivername == "sqlite" and self.url.database:
            path = Path(self.url.database)
            if not create and not path.is_file():
                raise HistoryError(f"no history at {path}: add runs with `./kbm history add results/<run-id>` or "
                                   "rebuild it from the result files with `./kbm history rebuild results`")
            path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _engine(self.url)
        try:
            if not create:
                with self.engine.connect() as conn:
                    if migrate.current_version(conn) == 0:
                        raise HistoryError(f"no history in {self.where}: add runs with `./kbm history add "
                                           "results/<run-id> --history ...` first")
        except SQLAlchemyError as exc:
            raise HistoryError(f"cannot open the history at {self.where}: {str(exc).splitlines()[0]} (check the "
                               "path or URL, and that the server runs and accepts this user)") from None
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, batch: Batch) -> Added:
        """Add (or bring up to date) the batch's runs, cells and epochs in one locked transaction."""
        out = Added()
        try:
            with self.engine.begin() as conn:
                migrate.write_lock(conn)
                out.runs = self._add_runs(conn, batch.runs)
                changed = self._add_cells(conn, batch.cells, out)
                self._replace_epochs(conn, changed, batch.epochs)
        except SQLAlchemyError as exc:
            raise HistoryError(f"could not write to the history at {self.where}: {str(exc).splitlines()[0]}") from None
        return out

    def _add_runs(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        t = schema.runs
        have = {r.run_id: r._asdict() for r in conn.execute(select(t).where(t.c.run_id.in_([r["run_id"]
                                                                                              for r in rows])))}
        added = 0
        for row in rows:
            old = have.get(row["run_id"])
            if old is None:
                conn.execute(t.insert().values(**row, added_at=_now()))
                added += 1
            elif any(old[k] != v for k, v in row.items()):
                conn.execute(t.update().where(t.c.run_id == row["run_id"]).values(**row))
        return added

    def _add_cells(self, conn: Connection, rows: list[dict[str, Any]], out: Added) -> set[tuple[str, str]]:
        t = schema.cells
        keys = [(r["run_id"], r["spec_hash"]) for r in rows]
        have = {(r.run_id, r.spec_hash): r._asdict() for r in conn.execute(
            select(t).where(tuple_(t.c.run_id, t.c.spec_hash).in_(keys)))} if keys else {}
        changed = set()
        for row, key in zip(rows, keys, strict=True):
            old = have.get(key)
            if old is None:
                conn.execute(t.insert().values(**row))
                out.new += 1
            elif any(old[k] != v for k, v in row.items()):
                conn.execute(t.update().where(t.c.run_id == key[0], t.c.spec_hash == key[1]).values(**row))
                out.updated += 1
            else:
                out.unchanged += 1
                continue
            changed.add(key)
        return changed

    def _replace_epochs(self, conn: Connection, changed: set[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
        t = schema.epochs
        if changed:
            conn.execute(delete(t).where(tuple_(t.c.run_id, t.c.spec_hash).in_(sorted(changed))))
        mine = [r for r in rows if (r["run_id"], r["spec_hash"]) in changed]
        if mine:
            conn.execute(t.insert(), mine)

    def clear(self) -> None:
        """Every row gone (the schema stays): what `rebuild` starts from."""
        with self.engine.begin() as conn:
            migrate.write_lock(conn)
            for table in (schema.epochs, schema.cells, schema.runs):
                conn.execute(delete(table))

    def cells_frame(self) -> pd.DataFrame:
        """Every stored result with its run's start time and commit (`run_started_at`, `run_git_commit`)."""
        c, r = schema.cells, schema.runs
        query = select(c, r.c.started_at.label("run_started_at"), r.c.git_commit.label("run_git_commit")).join(
            r, r.c.run_id == c.c.run_id)
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def epochs_frame(self) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql(select(schema.epochs), conn)

    def rows(self, table: str) -> list[tuple]:
        """A table's rows, sorted, without the time each was added: what two stores holding the same runs share."""
        t = schema.metadata.tables[table]
        cols = [col for col in t.c if col.name != "added_at"]
        with self.engine.connect() as conn:
            return sorted((tuple(row) for row in conn.execute(select(*cols))), key=repr)
