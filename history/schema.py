"""The store's tables, as the latest schema version has them (migrate.py builds them step by step).

One row per run, one per result (a repeat of a cell in a run, keyed by the run id and the cell's spec hash) and one
per epoch of every ok result (the samples behind each interval). The result files stay the source of truth: every
row can be rebuilt from them (`history rebuild`). Columns are added by a new migration step, never by editing an
old one: a store written by an older checkout is upgraded in place.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)


def version_columns() -> list[Column]:
    return [Column("version", Integer, primary_key=True, autoincrement=False),
            Column("applied_at", String(32), nullable=False), Column("description", Text, nullable=False)]


def run_columns() -> list[Column]:
    return [
        Column("run_id", String(64), primary_key=True),
        Column("started_at", String(32)),
        Column("git_commit", String(64)),
        Column("git_dirty", Boolean),
        Column("argv", Text),
        Column("node", String(255)),
        Column("data", String(32)),
        Column("source", Text),  # the folder it was added from (where its result files are)
        Column("added_at", String(32), nullable=False),
    ]


def cell_columns_v1() -> list:
    text = {"error", "device"}
    ints = {"repeat", "seed"}
    floats = {"other_cpu_share", "steady_epoch_s", "article_epoch_s", "first_epoch_s", "compile_s", "test_accuracy"}
    bools = {"git_dirty", "busy"}
    names = ("cell_id", "model", "backend", "environment", "variant", "profile", "data_source", "repeat", "seed",
             "status", "error", "executor", "device_kind", "device", "fingerprint", "keras", "framework",
             "git_commit", "git_dirty", "started_at", "busy", "other_cpu_share", "steady_epoch_s",
             "article_epoch_s", "first_epoch_s", "compile_s", "test_accuracy")
    cols: list = [Column("run_id", String(64), nullable=False), Column("spec_hash", String(64), nullable=False)]
    for name in names:
        kind = (Text if name in text else Integer if name in ints else Float if name in floats
                else Boolean if name in bools else String(255))
        cols.append(Column(name, kind))
    return [*cols, PrimaryKeyConstraint("run_id", "spec_hash"),
            ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE")]


# Version 2: the figures schema-2 results add (inference, memory); null where a result has none.
CELL_COLUMNS_V2 = ("latency_s", "throughput_per_s", "peak_rss_mb", "gpu_peak_mb")


def epoch_columns() -> list:
    return [
        Column("run_id", String(64), nullable=False),
        Column("spec_hash", String(64), nullable=False),
        Column("epoch", Integer, nullable=False),
        Column("wall_s", Float, nullable=False),
        Column("steady", Boolean, nullable=False),
        PrimaryKeyConstraint("run_id", "spec_hash", "epoch"),
        ForeignKeyConstraint(["run_id", "spec_hash"], ["cells.run_id", "cells.spec_hash"], ondelete="CASCADE"),
    ]


metadata = MetaData()
schema_version = Table("schema_version", metadata, *version_columns())
runs = Table("runs", metadata, *run_columns())
cells = Table("cells", metadata, *cell_columns_v1(), *(Column(n, Float) for n in CELL_COLUMNS_V2))
epochs = Table("epochs", metadata, *epoch_columns())
