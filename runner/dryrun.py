"""What `--dry-run` prints: the environments (what installs where), the variants and the cells, running nothing."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from common.termtable import Column, fit
from runner.cells import Selection, worker_spec


def variant_table(matrix, cells) -> Table:
    """What each planned variant sets (the cell ids name the variant)."""
    table = Table(title="variants", title_justify="left")
    for col in ("variant", "cells", "sets", "changes numerics"):
        table.add_column(col, overflow="fold")
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.variant] = counts.get(cell.variant, 0) + 1
    for name, n in counts.items():
        v = matrix.variants[name]
        sets = [f"{k}={getattr(v, k)}" for k in ("data_format", "jit_compile", "recurrent_activation",
                                                 "steps_per_execution", "mixed_precision")
                if getattr(v, k) is not None]
        sets += [f"{k}={val}" for k, val in {**v.env, **v.jax_config}.items()]
        table.add_row(*(Text(t) for t in (name, str(n), "\n".join(sets) or "(the backend's own settings)",
                                          _numerics(v.changes_numerics))))
    return table


def dry_run(console: Console, matrix, cells, executor, data: str, timeout: float | None,
            sel: Selection | None = None) -> None:
    """The environments (what installs where) and the cells; key columns whole at any terminal width."""
    envs = Table(title="environments", title_justify="left")
    for col in ("environment", "python", "location", "state", "installs"):
        envs.add_column(col, overflow="fold")
    notes: dict[str, None] = {}
    for name in dict.fromkeys(c.environment for c in cells):
        plan = executor.plan(name, matrix.environments[name])
        state = "cached" if plan["cached"] else "to build"
        installs = "\n".join(plan["installs"])  # `jax[cuda13]` is a requirement, not markup
        envs.add_row(*(Text(v) for v in (name, plan["python"], plan["location"], state, installs)))
        if plan.get("note"):
            notes[plan["note"]] = None
    console.print(envs)
    for note in notes:  # what the executor wants said once (a scheduler not asked, shared storage)
        console.print(Text(f"note: {note}"))
    console.print(variant_table(matrix, cells))
    specs = [worker_spec(matrix, cell, data, timeout, sel) for cell in cells]
    columns = [Column("#", "right"), Column("model"), Column("backend"), Column("environment"),
               Column("variant"), Column("seed", "right", priority=2),
               Column("profile", priority=2), Column("rep", "right", priority=3), Column("epochs", "right"),
               Column("train", "right"), Column("test", "right"), Column("timeout s", "right", priority=1),
               Column("spec hash", priority=4)]
    rows = [[str(i), c.model, c.backend, c.environment, c.variant, str(c.seed), c.profile, str(c.repeat),
             str(s["run"]["epochs"]), str(s["run"]["train_samples"] or "all"), str(s["run"]["test_samples"] or "all"),
             f"{s['timeout_s']:.0f}", s["spec_hash"]] for i, (c, s) in enumerate(zip(cells, specs, strict=True), 1)]
    said = [f"{data} data"]
    if all(s["variant"]["is_default"] for s in specs):  # no --variant: nothing to say
        columns[4] = Column("variant", priority=99)
    for index, what in ((4, "variant {}"), (5, "seed {}"), (6, "{} profile"), (7, "repeat {}"), (11, "timeout {} s")):
        values = {row[index] for row in rows}
        if len(values) == 1:  # the same for every cell: said once, in the title
            said.append(what.format(values.pop()))
            columns[index] = Column(columns[index].name, priority=99)
    shown = [i for i, c in enumerate(columns) if c.priority != 99]
    table = fit([columns[i] for i in shown], [[row[i] for i in shown] for row in rows], min(console.width, 120),
                f"{len(cells)} cells ({', '.join(said)})")
    console.print(table)
    for line in suite_lines(specs):
        console.print(Text(line))


def suite_lines(specs: list[dict[str, Any]]) -> list[str]:
    """One line per keras.io suite model planned: the configuration its cells train (part of their work)."""
    lines: dict[str, None] = {}
    for spec in specs:
        cfg = spec["model"].get("config")
        if not cfg:
            continue
        sizes = [f"batch {cfg['batch_size']}"]
        if cfg.get("predict_batch_size"):
            sizes.append(f"predict batch {cfg['predict_batch_size']}")
        if cfg.get("sequence_length"):
            sizes.append(f"sequence {cfg['sequence_length']}")
        sizes.append(cfg.get("dtype") or "the policy's dtype")
        if cfg.get("lora_rank"):
            sizes.append(f"LoRA rank {cfg['lora_rank']}")
        if cfg.get("generate"):
            gen = cfg["generate"]
            sizes.append(f"generate to {gen['max_length']} tokens at batch {', '.join(map(str, gen['batch_sizes']))}")
        backbone = ", ".join(f"{k} {v}" for k, v in cfg["backbone"].items())
        lines[f"{spec['cell']['model']}: configuration {spec['model']['config_id']}: {'; '.join(sizes)}; "
              f"backbone {backbone}"] = None
    return list(lines)


def _numerics(scope: bool | list[str]) -> str:
    if isinstance(scope, bool):
        return "yes" if scope else ""
    return "on Keras " + ", ".join(f"{p}*" for p in scope)
