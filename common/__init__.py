"""What the host-side packages share: the result contract, statistics, rankings, terminal tables, UTC time.

    results.py    the typed result contract (schema 2): one model per field (the manual lists them), `migrate()` from
                  schema 1, atomic writes, validated loading
    work.py       a cell's work (what it trained and validated per epoch): what makes two figures comparable
    stats.py      medians with distribution-free intervals, noise flags, t-intervals
    ranking.py    rankings that say "tie" where intervals overlap
    termtable.py  terminal tables that stay readable at any width
    timeutil.py   UTC timestamps, whatever TZ says
    errors.py     BadInput, the one base of every error that means "fix your input" (exit status 2)

A leaf: it never imports runner, reports, models, tooling or history, all of which import it. It runs on the host
(Python >= 3.11, pydantic); the in-environment code (models/) writes plain JSON that this contract validates.
"""
