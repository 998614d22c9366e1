"""Where every number came from, one click away: for each result behind a row, the versions, host, git commit,
seed, data and settings, and a copy of the raw result.json inside the report folder (so the report travels)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

RAW_DIR = "results"


def raw_copy_name(result_key: str) -> str:
    """<report>/results/<run-id>/<cell-id>.json, relative to the report."""
    run_id, cell_id = result_key.split("/", 1)
    return f"{RAW_DIR}/{run_id}/{cell_id}.json"


def copy_raw(raw: dict[str, Path], out_dir: Path) -> None:
    for key, path in raw.items():
        dest = out_dir / raw_copy_name(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)


def _fmt(value: Any, nested: bool = False) -> str:
    if value is None or value == {} or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_fmt(v, True)}" for k, v in value.items())
        return f"{{{inner}}}" if nested else inner
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The provenance of one result as (what, value) pairs, in the order a reader checks them."""
    cell = result.get("cell") or {}
    host = result.get("host") or {}
    data = result.get("data") or {}
    settings = result.get("settings") or {}
    executor = result.get("executor") or {}
    commit = result.get("git_commit") or "unknown"
    if result.get("git_dirty"):
        commit += " (uncommitted changes)"
    return [
        ("cell", f"{result.get('cell_id')} (status {result.get('status')})"),
        ("seed, repeat", f"{cell.get('seed')}, {cell.get('repeat')}"),
        ("versions", _fmt(result.get("versions"))),
        ("git commit", commit),
        ("when", f"{result.get('started_at')} to {result.get('finished_at')}"),
        ("host", f"{host.get('cpu_model', '-')}, {host.get('cores', '-')} cores "
                 f"({host.get('usable_cores', '-')} usable), {host.get('platform', '-')}"),
        ("GPU", _fmt({k: host.get("gpu", {}).get(k) for k in ("available", "devices", "used")})),
        ("threads", _fmt(host.get("threads"))),
        ("machine load", _fmt(host.get("load"))),
        ("executor", f"{executor.get('name', '-')}: {executor.get('location', '-')} "
                     f"(fingerprint {executor.get('fingerprint', '-')})"),
        ("data", f"{data.get('source', '-')}, {data.get('train_samples', '-')} train / "
                 f"{data.get('test_samples', '-')} test, sha256 {str(data.get('sha256', '-'))[:16]}..."),
        ("settings", _fmt({k: v for k, v in settings.items() if k != "env"})),
        ("environment variables", _fmt(settings.get("env"))),
        ("spec hash", str(result.get("spec_hash"))),
        ("timeline s", _fmt(result.get("timeline"))),
    ]


def load_facts(path: Path) -> list[tuple[str, str]]:
    try:
        return facts(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError):
        return [("result", f"{path}: unreadable")]
