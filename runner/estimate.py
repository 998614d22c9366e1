"""How long planned cells will take, from matrix.yaml's recorded seconds per training step (`step_seconds`).

`--dry-run` prints the planned time where every cell has a figure (and says which have none); `--budget-s` keeps
a run, a sweep above all, inside the time a machine is lent for: a variant whose cells would not fit is not
planned, and the run says so. A cell's time is its epochs times its steps per epoch times the recorded seconds a
step of its backend and model, plus the driver's overhead (start, imports, compilation, evaluation, inference);
figures are for the backend's default variant and serve its other variants as an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.data import FULL_SIZES  # the full splits (train, test) of the datasets the figures scale to
from runner.cells import Cell, Selection, _gpus, default_variant
from runner.matrix import Matrix


@dataclass(frozen=True)
class Plan:
    """The planned seconds of the cells that have figures, the cells that have none, and where the figures are."""

    seconds: float
    known: int
    unknown: tuple[str, ...]
    device: str
    source: str | None


def cell_seconds(matrix: Matrix, cell: Cell, gpu: bool) -> float | None:
    """The planned seconds of one cell on this device class, or None where nothing is recorded for it."""
    table = matrix.step_seconds.get("gpu" if gpu else "cpu")
    step = table.backends.get(cell.backend, {}).get(cell.model) if table else None
    model = matrix.models[cell.model]
    full = FULL_SIZES.get(model.dataset, (None, None))[0]
    limits = matrix.profiles[cell.profile].limits_for(cell.model, cell.backend)
    samples = limits.train_samples or full
    if step is None or samples is None or table is None:
        return None
    epochs = limits.epochs or model.epochs
    steps = samples // model.batch_size if model.whole_batches else math.ceil(samples / model.batch_size)
    return epochs * steps * step + table.overhead_s.get(matrix.backends[cell.backend].driver, 0.0)


def planned_time(matrix: Matrix, cells: list[Cell], sel: Selection) -> Plan:
    gpu = any(_gpus(matrix, sel, c.profile) for c in cells)
    table = matrix.step_seconds.get("gpu" if gpu else "cpu")
    times = {c: cell_seconds(matrix, c, gpu) for c in cells}
    return Plan(sum(t for t in times.values() if t is not None), sum(t is not None for t in times.values()),
                tuple(c.id for c, t in times.items() if t is None), "gpu" if gpu else "cpu",
                table.source if table else None)  # fmt: skip


def describe(plan: Plan) -> str:
    """One line for --dry-run."""
    device = "a GPU" if plan.device == "gpu" else "a CPU"
    if not plan.known:
        return (f"planned time: none recorded for these cells on {device} (matrix.yaml step_seconds."
                f"{plan.device} has no figure for them)")
    line = (f"planned time: about {plan.seconds:.0f} s ({plan.seconds / 60:.1f} min) for {plan.known} cells on "
            f"{device}, from matrix.yaml step_seconds.{plan.device} ({plan.source})")
    if plan.unknown:
        line += f"; {len(plan.unknown)} more without a recorded figure: {', '.join(plan.unknown[:6])}"
        line += ", ..." if len(plan.unknown) > 6 else ""
    return line


def fit_budget(matrix: Matrix, cells: list[Cell], sel: Selection,
               budget_s: float) -> tuple[list[Cell], list[str], list[str]]:
    """The cells whose variants fit in `budget_s` by the recorded figures, a note for each variant left out, and
    the ids of the cells planned without a figure (they count nothing against the budget).

    Each backend's default variant is planned first (a sweep ranks against it), then the others in matrix order,
    each with all its cells (every model and repeat) or not at all; a cell without a figure is kept."""
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.backend, cell.environment, cell.variant), []).append(cell)
    order = list(matrix.variants)

    def rank(key: tuple[str, str, str]) -> tuple[int, int]:
        backend, env_name, variant = key
        default, _ = default_variant(matrix, backend, env_name, _gpus(matrix, sel, groups[key][0].profile))
        return (0 if variant == default else 1, order.index(variant))

    used, kept, notes = 0.0, set(), []
    unknown = sorted({c.id for c in cells if cell_seconds(matrix, c, _gpus(matrix, sel, c.profile)) is None})
    for key in sorted(groups, key=rank):
        cost = sum(cell_seconds(matrix, c, _gpus(matrix, sel, c.profile)) or 0.0 for c in groups[key])
        if used + cost <= budget_s:
            used += cost
            kept.add(key)
        else:
            notes.append(f"variant {key[2]} of {key[0]} ({len(groups[key])} cells, about {cost:.0f} s) would not fit "
                         f"in --budget-s {budget_s:g} ({used:.0f} s planned before it)")
    kept_cells = [c for c in cells if (c.backend, c.environment, c.variant) in kept]
    return kept_cells, notes, [i for i in unknown if any(c.id == i for c in kept_cells)]
