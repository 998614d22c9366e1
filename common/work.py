"""A cell's work: what it trained and validated per epoch. Two figures are comparable only for the same work.

Seconds per epoch rank only epochs of the same work: a backend given a tenth of the samples finishes its epoch
sooner without being faster. So every ranking, bold "fastest", tie call and ratio groups cells by model and work
first. Across different work the one fair unit is time per training sample with the validation pass taken out
(`train_us_per_sample`), and only with a caveat that names what differs (`describe_difference`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# the fields of `Work` (common/results.py) that decide comparability, in the order a heading names them
KEY_FIELDS = ("train_samples", "val_samples", "batch_size", "epochs", "steps_per_execution", "data", "model_hash",
              "precision")
DEFAULTS = {"steps_per_execution": 1, "precision": "float32"}  # what a result from before the field recorded
LABELS = {
    "train_samples": "training samples/epoch",
    "val_samples": "validation samples/epoch",
    "batch_size": "batch",
    "epochs": "epochs",
    "steps_per_execution": "steps per execution",
    "data": "data",
    "model_hash": "model file",
    "precision": "arithmetic",
}


def work_key(work: Mapping[str, Any] | None) -> tuple:
    """A hashable key for `work` (None: unknown work, which equals only other unknown work)."""
    if not work:
        return ("unknown",)
    return tuple(work.get(k) if work.get(k) is not None else DEFAULTS.get(k) for k in KEY_FIELDS)


def describe(work: Mapping[str, Any] | None) -> str:
    """`60,000 train / 10,000 val per epoch, batch 128, 6 epochs, real data` for a heading."""
    if not work:
        return "work unknown (a result written before work was recorded)"
    val = work.get("val_samples")
    parts = [f"{work['train_samples']:,} train / {'-' if val is None else f'{val:,}'} val per epoch",
             f"batch {work['batch_size']}", f"{work['epochs']} epochs"]
    if (work.get("steps_per_execution") or 1) != 1:
        parts.append(f"{work['steps_per_execution']} steps per execution")
    parts.append(f"{work.get('data')} data")
    if (work.get("precision") or "float32") != "float32":  # TF32 or mixed precision: different arithmetic
        parts.append(f"{work['precision']} arithmetic")
    if work.get("model_hash"):
        parts.append(f"model file {work['model_hash'][:8]}")
    return ", ".join(parts)


def describe_difference(works: Iterable[Mapping[str, Any] | None]) -> str:
    """What differs between several works, field by field: `training samples/epoch 60,000 vs 6,000; ...`."""
    works = list(works)
    if any(not w for w in works):
        return "some results do not record their work"
    out = []
    for field in KEY_FIELDS:
        values = list(dict.fromkeys(w.get(field) if w.get(field) is not None else DEFAULTS.get(field)
                                    for w in works))
        if len(values) > 1:
            shown = " vs ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values)
            out.append(f"{LABELS[field]} {shown}")
    return "; ".join(out)


def train_us_per_sample(steady_epoch_s: float | None, val_s: float | None, work: Mapping[str, Any] | None
                        ) -> float | None:
    """Microseconds per training sample with the validation pass taken out: the unit that may compare cells of
    different work (None where the validation time is unknown, e.g. Keras 2.0.8 results before it was timed)."""
    if steady_epoch_s is None or not work or not work.get("train_samples"):
        return None
    if work.get("val_samples"):
        if val_s is None:
            return None
        steady_epoch_s -= val_s
    return steady_epoch_s / work["train_samples"] * 1e6
