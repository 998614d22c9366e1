"""History: every finished run kept in one database, its series, their steps and drift, and the pages people read.

    source.py    the one module that imports the rest of the project: results come in only through
                 reports.load.load_runs (the contract checked on the way in), flattened into rows for the store
    schema.py    the tables; migrate.py: the schema_version table and its ordered migration steps
    store.py     SQLite in a file by default, PostgreSQL (SQLAlchemy + psycopg) by URL; adding is idempotent
    series.py    one series per cell identity and hardware fingerprint; the repeats of a run are one point
    detect.py    steps (penalised L1 Potts fit, information criterion) and drift (Theil-Sen), each judged
                 against a relative threshold and the series' own noise; judge.py: what `check` fails on
    cli.py       `python -m runner history ...`; site/: the static trend pages; validate.py: measured rates
    hook.py      what a finished run calls to add itself (a warning, never a failed run)

Host side. Never imports runner/ (the runner imports hook.py lazily, as it does reports/), models/ or tooling/;
everything it needs from reports/ goes through source.py, so moving a module there changes one file here.
"""
