"""The manual (docs/, mkdocs.yml) built for real, as `make docs` and CI build it: --strict, so a broken link, a
page left out of the nav or a generated page that fails to appear is an error; and the generated reference holds
every result field and every matrix key, found here by walking the pydantic models themselves (not the
generator's own walk of their JSON schema)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from common.results import CellResult
from runner.matrix_schema import Matrix
from runner.paths import REPO_ROOT

MKDOCS = Path(sys.executable).with_name("mkdocs")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(MKDOCS), "build", "--strict", "--clean", "-f", str(config), "-d", str(site)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(REPO_ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, list, dict and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def paths_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field as the reference names it: nested models dotted, `[]` for a list's items, `<name>` for a map's."""
    out = set()
    for name, field in model.model_fields.items():
        path = prefix + name
        out.add(path)
        origin = typing.get_origin(field.annotation)
        inner = [a for a in typing.get_args(field.annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(inner) == 1:
            origin = typing.get_origin(inner[0])
        for sub in _models_in(field.annotation):
            joint = "[]." if origin is list else ".<name>." if origin is dict else "."
            out |= paths_of(sub, path + joint)
    return out


def codes(page: Path) -> set[str]:
    return {html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", page.read_text())}


def test_the_manual_builds_strictly_with_every_page(site):
    for page in ("index.html", "getting-started/index.html", "reference/cli/index.html", "measurements/index.html",
                 "models/index.html", "platform/index.html", "article-2017/index.html"):
        assert (site / page).is_file(), page


def test_every_result_field_is_in_the_reference(site):
    expected = paths_of(CellResult)
    assert {"epochs[].wall_s", "memory.peak_rss_mb", "host.gpu.used", "inference.latency[].p50_ms"} <= expected
    missing = sorted(expected - codes(site / "reference" / "result-fields" / "index.html"))
    assert missing == []


def test_every_matrix_key_is_in_the_reference(site):
    expected = paths_of(Matrix)
    assert {"environments.<name>.docker.cpu", "profiles.<name>.backends.<name>.models.<name>.epochs"} <= expected
    missing = sorted(expected - codes(site / "reference" / "matrix" / "index.html"))
    assert missing == []


def test_every_subcommand_is_in_the_reference(site):
    from runner.commands import COMMANDS

    text = (site / "reference" / "cli" / "index.html").read_text()
    for name in COMMANDS:
        assert f"usage: kbm {name} " in html.unescape(text), name


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(REPO_ROOT / "docs", docs)
    (docs / "measurements.md").write_text((docs / "measurements.md").read_text() + "\nSee [this](no-such-page.md).\n")
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())
    config.update(docs_dir=str(docs), hooks=[str(REPO_ROOT / "tooling" / "mkdocs_hooks.py")])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 1 and "no-such-page.md" in proc.stdout + proc.stderr


def test_the_result_files_table_names_every_top_level_field_and_no_other():
    """The hand-written meanings (docs/reference/result-files.md) beside the generated list: the first column of
    its table names every top-level field of the contract, and nothing the contract lacks."""
    text = (REPO_ROOT / "docs" / "reference" / "result-files.md").read_text()
    named = set()
    for row in re.findall(r"^\| (`[^|]*) \|", text, re.M):
        named |= {n.removesuffix("[]") for n in re.findall(r"`([\w\[\]]+)`", row)}
    assert named == set(CellResult.model_fields)


def test_the_result_reference_gives_every_unit_the_names_carry():
    from tooling.docs_reference import fields

    rows = {r["field"]: r for r in fields(CellResult)}
    assert rows["epochs[].wall_s"]["unit"] == "seconds" and rows["memory.peak_rss_mb"]["unit"] == "MB"
    assert rows["inference.latency[].p50_ms"]["unit"] == "milliseconds"
    unitless = [f for f in rows if re.search(r"_(s|ms|mb|gb|mhz|gflops|bytes|share)$", f) and not rows[f]["unit"]]
    assert unitless == []
