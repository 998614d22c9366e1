"""Schema 1 results, read as schema 2: the one place that knows the old format (docs/reference/result-files.md).

What changed in schema 2:
- the backend's facts (`title`, `keras_backend`, `framework`, `family`) moved from `settings` into `backend`;
  `settings.profile` became `settings.limits`; `settings.data`, `settings.known_issues` went (the data source is
  `data.source`, the issue that applied is `known_issue`);
- the variant that runs the Keras 3 backends as they ship was called `default`, which is also what every
  environment's own default is called: it is `stock` now, in `cell.variant`, `cell_id` and `settings.variant`;
- `work` (what an epoch trained and validated) is new: derived from the epochs, `data` and, when there, the spec;
- Keras metrics besides loss and accuracy moved into an epoch's `extra_metrics`;
- results written before `article_epoch_s` existed carry the same measurement as `timeline.fit_s`;
- `inference` and `memory` are new (absent in schema 1: not measured, never zero).
"""

from __future__ import annotations

import copy
from typing import Any

OLD_STOCK, STOCK = "default", "stock"
EPOCH_FIELDS = {"epoch", "wall_s", "cpu_s", "val_s", "samples", "loss", "accuracy", "val_loss", "val_accuracy"}
BACKEND_FIELDS = ("title", "keras_backend", "framework", "family")
SETTINGS_DROPPED = ("title", "keras_backend", "framework", "family", "known_issues", "data", "profile")
REAL_SOURCES = {"keras-cache", "download", "offline-wheel"}


def _variant(name: str | None) -> str:
    return STOCK if name in (None, OLD_STOCK) else name


def _epochs(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in epochs:
        known = {k: v for k, v in e.items() if k in EPOCH_FIELDS}
        extra = {k: float(v) for k, v in e.items() if k not in EPOCH_FIELDS and isinstance(v, (int, float))}
        out.append({**known, "extra_metrics": extra})
    return out


def _work(r: dict[str, Any], spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an epoch trained and validated, as far as a schema 1 result (and its spec, when there) tells."""
    epochs, data = r.get("epochs") or [], r.get("data") or {}
    if not epochs or not data:
        return None
    model = (spec or {}).get("model") or {}
    n_fit = int(epochs[-1]["samples"])
    if model.get("validation_split"):
        n_val = int(data["train_samples"]) - n_fit
    else:
        n_val = int(data["test_samples"])  # the five models validate on the test split, except bAbI
    source = data.get("source")
    return {
        "train_samples": n_fit,
        "val_samples": n_val,
        "batch_size": int(model.get("batch_size") or 0) or _batch_from_fit(r, n_fit),
        "epochs": int(((spec or {}).get("run") or {}).get("epochs") or len(epochs)),
        "steps_per_execution": int((r.get("settings") or {}).get("steps_per_execution") or 1),
        "data": "real" if source in REAL_SOURCES else source or "unknown",
        "model_hash": None,
    }


def _batch_from_fit(r: dict[str, Any], n_fit: int) -> int:
    """Without a spec, the batch size from Keras' own steps per epoch (ceil(n / batch)); 1 when unknown."""
    steps = (r.get("fit_params") or {}).get("steps")
    return max(1, -(-n_fit // steps)) if steps else 1


def migrate_v1(payload: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema 1 result as schema 2 (a copy; the file is never rewritten)."""
    r = copy.deepcopy(payload)
    r["schema_version"] = 2
    cell = r.get("cell") or {}
    old_variant = cell.get("variant")
    cell["variant"] = _variant(old_variant)
    if old_variant == OLD_STOCK and "cell_id" in r:  # ids from before variants have no variant part: kept
        r["cell_id"] = r["cell_id"].replace(f".{OLD_STOCK}.r", f".{STOCK}.r")
    settings = r.get("settings")
    if settings:
        r["backend"] = {k: settings.get(k) for k in BACKEND_FIELDS if k in settings}
        r["backend"].setdefault("title", (spec or {}).get("backend", {}).get("title") or cell.get("backend"))
        limits = settings.get("profile") or {}
        for key in SETTINGS_DROPPED:
            settings.pop(key, None)
        settings["limits"] = limits
        settings["variant"] = _variant(settings.get("variant"))
        probe = settings.get("recurrent_activation_probe")
        if probe is not None and not probe.get("y"):
            settings["recurrent_activation_probe"] = None
    elif spec and spec.get("backend"):
        r["backend"] = {k: spec["backend"].get(k) for k in BACKEND_FIELDS}
    r["epochs"] = _epochs(r.get("epochs") or [])
    if r.get("article_epoch_s") is None and r["epochs"] and (r.get("timeline") or {}).get("fit_s"):
        r["article_epoch_s"] = r["timeline"]["fit_s"] / len(r["epochs"])
    if r.get("status") == "ok":
        r["work"] = _work(r, spec)
    return r
