"""One versioned schema for SQLite and PostgreSQL: a schema_version table and ordered migration steps.

Each step runs once, in order, inside the same write transaction as the row that records it, under the store's
write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory lock), so two processes opening a new
store at once never both create it. A store newer than this checkout is refused rather than guessed at.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Float, MetaData, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from history import schema
from history.errors import HistoryError

LOCK_KEY = 0x6B626D68  # "kbmh": the advisory lock every writer of a PostgreSQL history takes


def write_lock(conn: Connection) -> None:
    """Serialise writers for the rest of this transaction (SQLite's BEGIN IMMEDIATE already holds its lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _v1(conn: Connection) -> None:
    meta = MetaData()
    Table("schema_version", meta, *schema.version_columns())
    Table("runs", meta, *schema.run_columns())
    Table("cells", meta, *schema.cell_columns_v1())
    Table("epochs", meta, *schema.epoch_columns())
    meta.create_all(conn, checkfirst=False)  # a foreign table of the same name fails here, loudly


def _v2(conn: Connection) -> None:
    kind = Float().compile(dialect=conn.dialect)
    for name in schema.CELL_COLUMNS_V2:
        conn.execute(text(f"ALTER TABLE cells ADD COLUMN {name} {kind}"))


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Connection], None]


STEPS = (
    Step(1, "runs, cells (one row per result: run id + spec hash) and epochs", _v1),
    Step(2, "cells: inference latency and throughput, peak RSS and GPU memory (schema-2 results)", _v2),
)
LATEST = STEPS[-1].version


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(schema.schema_version.c.version).order_by(
        schema.schema_version.c.version.desc()).limit(1)).scalar() or 0


def upgrade(engine: Engine, target: int = LATEST) -> list[int]:
    """Apply the steps above the store's version up to `target`; returns the versions applied (none: up to date)."""
    applied: list[int] = []
    try:
        with engine.begin() as conn:
            write_lock(conn)
            version = current_version(conn)
            if version > LATEST:
                raise HistoryError(f"the history has schema version {version}, newer than this checkout knows "
                                   f"({LATEST}); update the checkout (git pull) to read it")
            if version == 0 and (existing := inspect(conn).get_table_names()):
                raise HistoryError(f"the database already holds other tables ({', '.join(sorted(existing)[:5])}) "
                                   "and no history; give the history a database (or file) of its own")
            for step in STEPS:
                if version < step.version <= target:
                    step.apply(conn)
                    conn.execute(schema.schema_version.insert().values(
                        version=step.version, applied_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        description=step.description))
                    applied.append(step.version)
    except SQLAlchemyError as exc:
        raise HistoryError(f"could not prepare the history's tables: {exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0]}") from None
    return applied
