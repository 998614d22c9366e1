"""The manual's reference pages, generated from the code so they cannot drift from it.

- the result fields: `common.results.CellResult`'s JSON schema, every nested field with its type, its unit (read
  from the name's suffix, the contract's convention) and the comment the contract's source gives it;
- matrix.yaml: `runner.matrix_schema.Matrix`'s JSON schema, every key the loader accepts, the same way;
- the command line: the `--help` of each `kbm` subcommand, from the parsers themselves.

The mkdocs hook (`tooling/mkdocs_hooks.py`) adds them to the site at build time, so no copy sits in `docs/`;
`python -m tooling.docs_reference DIR` writes them out for reading without a build.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import os
import sys
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HELP_COLUMNS = "110"  # argparse wraps to $COLUMNS: a fixed width keeps the pages the same on every machine

# the contract's convention: the unit is in the name (common/results.py, "units in the names")
UNITS = [("_per_s", "per second"), ("_ms", "milliseconds"), ("_s", "seconds"), ("_mb", "MB"), ("_gb", "GB"),
         ("_bytes", "bytes"), ("_mhz", "MHz"), ("_gflops", "GFLOP/s"), ("_share", "fraction of the machine, 0-1")]


def unit_of(name: str, kind: str) -> str:
    if name.endswith("_at"):
        return "UTC time, ISO 8601" if kind == "string" else "Unix time, seconds"
    return next((unit for suffix, unit in UNITS if name.endswith(suffix)), "")


def source_comments(model: type[BaseModel]) -> dict[tuple[str, str], str]:
    """(class, field) -> the comment the source gives the field: on its line, else the comment lines just above."""
    text = Path(inspect.getsourcefile(model) or "").read_text()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = text.splitlines()
    out: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                said = [comments[n] for n in range(item.lineno, (item.end_lineno or item.lineno) + 1) if n in comments]
                above, n = [], item.lineno - 1
                while n >= 1 and lines[n - 1].strip().startswith("#"):
                    above.insert(0, comments.get(n, ""))
                    n -= 1
                if said or above:
                    out[(node.name, item.target.id)] = " ".join(above + said)
    return out


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """The schema behind a property: ($ref followed, null taken out of anyOf), its model name, nullable."""
    nullable = False
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        if len(options) == 1:
            node = options[0]
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return defs[name], name, nullable
    return node, None, nullable


def type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    node, model, _ = _resolve(node, defs)
    if model and "enum" not in node:
        return "object"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    for union in ("anyOf", "oneOf"):  # oneOf: a discriminated union (default_variant: a name or one per device)
        if union in node:
            return " or ".join(type_of(o, defs) for o in node[union] if o.get("type") != "null")
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {type_of(node.get('items', {}), defs)}"
    if kind == "object":
        value = node.get("additionalProperties")
        return f"map of {type_of(value, defs)}" if isinstance(value, dict) else "map"
    return kind


def fields(model: type[BaseModel], key_word: str = "<name>") -> list[dict[str, str]]:
    """Every field of `model`, nested ones as dotted paths (`epochs[].wall_s`, `backends.<name>.title`)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    comments = source_comments(model)
    rows: list[dict[str, str]] = []

    def walk(obj: dict[str, Any], owner: str, prefix: str) -> None:
        required = set(obj.get("required", []))
        for name, prop in obj.get("properties", {}).items():
            node, ref, nullable = _resolve(prop, defs)
            kind = type_of(prop, defs)
            path = prefix + name
            said = comments.get((owner, name), "") or (node.get("description", "") if ref else "")
            rows.append({"field": path, "type": kind + (", or null" if nullable else ""),
                         "unit": unit_of(name, node.get("type", "")), "required": "yes" if name in required else "",
                         "meaning": said.replace("|", "\\|")})
            if ref and "properties" in node:
                walk(node, ref, path + ".")
            elif node.get("type") == "array":
                item, item_ref, _ = _resolve(node.get("items", {}), defs)
                if item_ref and "properties" in item:
                    walk(item, item_ref, path + "[].")
            elif node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
                value, value_ref, _ = _resolve(node["additionalProperties"], defs)
                if value_ref and "properties" in value:
                    walk(value, value_ref, f"{path}.{key_word}.")
            else:  # a union with a model among its forms: that model's keys too
                for option in node.get("oneOf", []) + node.get("anyOf", []):
                    member, member_ref, _ = _resolve(option, defs)
                    if member_ref and "properties" in member:
                        walk(member, member_ref, path + ".")

    walk(schema, model.__name__, "")
    return rows


def table(rows: list[dict[str, str]]) -> str:
    head = "| field | type | unit | required | meaning |\n|---|---|---|---|---|\n"
    return head + "".join(f"| `{r['field']}` | {r['type']} | {r['unit']} | {r['required']} | {r['meaning']} |\n"
                          for r in rows)


def result_fields_page() -> str:
    from common.results import SCHEMA_VERSION, CellResult

    return (f"# Result fields\n\n"
            f"Generated from the result contract, `common/results.py` (`CellResult`, schema {SCHEMA_VERSION}), by "
            f"`tooling/docs_reference.py` at every build: every field a `result.json` may hold, nested fields as "
            f"dotted paths (`[]`: each element of a list). Units are in the names (`_s` seconds, `_ms` "
            f"milliseconds, `_mb` MB); \"meaning\" is the comment the contract's source gives the field. A field "
            f"the contract does not declare is an error. What the fields mean together: "
            f"[Result files](result-files.md).\n\n" + table(fields(CellResult)))


def matrix_keys_page() -> str:
    from runner.matrix_schema import Matrix

    return ("# matrix.yaml\n\n"
            "Generated from the matrix's schema, `runner/matrix_schema.py` (`Matrix`), by "
            "`tooling/docs_reference.py` at every build: every key `matrix.yaml` may hold (`<name>`: a backend, "
            "environment, model, profile or variant of your choosing). A key the schema does not declare is a "
            "FILE:LINE error when the matrix loads (`runner/matrix.py`), which also checks that the names refer "
            "to each other.\n\n" + table(fields(Matrix)))


@contextmanager
def _columns(width: str) -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def cli_page() -> str:
    from runner.commands import COMMANDS
    from runner.options import build_parser

    with _columns(HELP_COLUMNS):
        parts = ["# Command line\n\n",
                 "Generated from the parsers by `tooling/docs_reference.py` at every build: `./kbm --help` and "
                 "each subcommand's `--help`, as the terminal prints them. `./kbm` alone (no subcommand) is "
                 "`./kbm run`.\n\n",
                 "## kbm\n\n```text\n", build_parser("kbm").format_help(), "```\n\n"]
        for name, command in COMMANDS.items():
            parser = command.parser()
            parts += [f"## kbm {name}\n\n", command.summary, "\n\n```text\n", parser.format_help(), "```\n\n"]
            for sub, subparser in _subcommands(parser).items():
                parts += [f"### kbm {name} {sub}\n\n```text\n", subparser.format_help(), "```\n\n"]
    return "".join(parts)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A parser's own subcommands (`kbm history show`, ...), in the order it declares them."""
    return next((dict(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def pages() -> dict[str, str]:
    """Site path -> Markdown of every generated page."""
    return {"reference/result-fields.md": result_fields_page(), "reference/matrix.md": matrix_keys_page(),
            "reference/cli.md": cli_page()}


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or ["site-reference"])[0])
    for uri, text in pages().items():
        (out / uri).parent.mkdir(parents=True, exist_ok=True)
        (out / uri).write_text(text)
        print(out / uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
