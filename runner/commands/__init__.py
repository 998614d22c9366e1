"""`kbm` (`python -m runner`): one subcommand per module of this package, each with the same two functions.

A command module defines `parser() -> argparse.ArgumentParser` (prog `kbm NAME`, made by `make_parser`: what it
does, its options, then its exit statuses) and `main(argv) -> int`. COMMANDS is the one list of them: the
dispatcher (runner/cli.py's `main`), `kbm --help` and the manual's command-line reference
(tooling/docs_reference.py) all read it, so a new subcommand is a module and one line here. No subcommand means
`run`, so `./kbm --only jax` keeps working. Modules are imported only when their command runs or is documented.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from dataclasses import dataclass

DEFAULT = "run"


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # runner.commands.<module>
    summary: str  # one line for `kbm --help` and the manual

    def _load(self):  # noqa: ANN202 - a module
        return importlib.import_module(f"runner.commands.{self.module}")

    def parser(self) -> argparse.ArgumentParser:
        return self._load().parser()

    def main(self, argv: list[str]) -> int:
        return self._load().main(argv)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("run", "run", "run the matrix (the default when no subcommand is given)"),
    Command("sweep", "sweep", "every variant that applies, on the MNIST tests, 3 interleaved repeats"),
    Command("check", "check", "validate every result in run folders (exit 1 on any problem)"),
    Command("report", "report", "write results/<run-id>/report/ (HTML, Markdown, plots, CSV/Parquet)"),
    Command("compare", "compare", "per-cell ratio and accuracy delta of two runs; exit 1 on a regression"),
    Command("history", "history", "the runs kept in the history database: trends, steps, `history check`"),
    Command("gpu-check", "gpu_check", "a GPU machine's run: the MNIST tests and their twins at the gpu profile"),
    Command("gpu-bundle", "gpu_bundle", "every wheel gpu-check needs, for a GPU machine without a package index"),
)}


def make_parser(name: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """Every subcommand's help has one layout: `kbm NAME`, what it does, its options, then examples and exit status."""
    return argparse.ArgumentParser(prog=f"kbm {name}" if name else "kbm", description=_wrap(description),
                                   epilog=_wrap(epilog), formatter_class=argparse.RawDescriptionHelpFormatter)


def _wrap(text: str, width: int = 100) -> str:
    """Paragraphs refilled to `width`, lists and examples (indented lines) kept as written: the layout survives
    RawDescriptionHelpFormatter at any width the text was typed at."""
    blocks = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.splitlines()
        if any(line[:1].isspace() for line in lines):
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(lines), width))
    return "\n\n".join(blocks) + ("\n" if text.endswith("\n") else "")


def overview() -> str:
    """The subcommands as `kbm --help` lists them."""
    width = max(len(name) for name in COMMANDS)
    return "subcommands (kbm COMMAND --help for each):\n" + "".join(
        f"  kbm {name:<{width}}  {c.summary}\n" for name, c in COMMANDS.items()) + (
        "\ntooling (tests, CI, measurement; the tooling/ package): make bench-overhead, make engine, make slurm-up\n")


def dispatch(argv: list[str]) -> int:
    command = argv[0] if argv else None
    if command in COMMANDS:
        return COMMANDS[command].main(argv[1:])
    if command == "bench-overhead":  # measurement is tooling, outside the product (tooling/bench.py)
        print("error: bench-overhead is not a runner subcommand: run `make bench-overhead` "
              "(python -m tooling.bench)", file=sys.stderr)
        return 2
    return COMMANDS[DEFAULT]._load().main(argv, prog="kbm")  # `kbm --help` says `kbm`, not `kbm run`
