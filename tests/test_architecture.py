"""The layout holds: who may import whom, read from the source with the standard library's `ast`.

Every import counts, a lazy one inside a function as much as one at the top: a cycle is a cycle when it runs.
An import names the module it loads (`from runner import paths` is runner.paths); a package's __init__ is an edge
only where the package itself is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runner.paths import REPO_ROOT

PACKAGES = ("common", "runner", "reports", "models", "tooling", "history")
MAX_LINES = 500
MAX_FUNCTION_LINES = 60
# who may import whom, package by package (lazy imports included): `common` is the leaf every host package uses;
# `runner` may call `reports` (the report a run ends with) and `history`, never the other way round; `models`
# runs inside the environments and imports no host package; `tooling` (tests, CI, measurement) may use them all
ALLOWED = {
    "common": set(),
    "models": set(),
    "reports": {"common"},
    "history": {"common", "reports"},
    "runner": {"common", "reports", "history", "models"},  # models.sources: the data files both sides name
    "tooling": {"common", "reports", "runner", "history", "models"},  # benchmarks run models/ in an environment
}


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules `name` imports anywhere in its file (module level, functions, conditionals)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a non-module attribute: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path = REPO_ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_the_checker_sees_lazy_and_relative_imports_and_finds_their_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def later():\n    from . import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from pkg.a import something\n")
    found = graph(tmp_path, ("pkg",))
    assert found["pkg.b"] == {"pkg.c"} and found["pkg.d"] == {"pkg.a"}
    assert cycles(found) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_import_cycle_among_the_packages(edges):
    assert cycles(edges) == []


def test_runner_never_reaches_the_tooling_package(edges):
    for name in edges:
        if in_package(name, "runner"):
            assert not [m for m in reachable(edges, name) if in_package(m, "tooling")], name


def test_the_worker_never_imports_the_host_side(edges):
    for name in edges:
        if in_package(name, "models"):
            host = [m for m in reachable(edges, name) if not in_package(m, "models")]
            assert host == [], f"{name} reaches {host}"


def test_history_never_imports_the_runner_and_reaches_the_project_through_one_module(edges):
    """history/ reads results only through reports.load, from history/source.py: a move in reports/ (or the
    runner's result contract) changes one file there, and the runner may import history/ lazily without a cycle."""
    for name in edges:
        if in_package(name, "history"):
            outside = {m for m in edges[name] if not in_package(m, "history")}
            assert not [m for m in outside if in_package(m, "runner") or in_package(m, "models")
                        or in_package(m, "tooling")], name
            assert name == "history.source" or not outside, f"{name} imports {outside}"


def test_no_executor_reaches_the_orchestration_loop(edges):
    executors = [name for name in edges if in_package(name, "runner.executors")]
    assert "runner.executors.docker.images" in executors  # the walk reaches into sub-packages
    for name in executors:
        assert "runner.orchestrate" not in reachable(edges, name), name


def package_of(module: str) -> str:
    return module.split(".")[0]


def test_packages_import_only_in_the_allowed_direction(edges):
    """No package imports another that imports it back: the package graph, not only the module graph."""
    found = {(package_of(a), package_of(b)) for a, targets in edges.items() for b in targets
             if package_of(a) != package_of(b)}
    wrong = sorted((a, b) for a, b in found if b not in ALLOWED[a])
    assert wrong == [], f"imports against the direction: {wrong}"


def test_the_package_check_catches_a_package_importing_back(tmp_path):
    for pkg in ("low", "high"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "low" / "base.py").write_text("def later():\n    import high.top\n")  # a lazy import counts
    (tmp_path / "high" / "top.py").write_text("import low.base\n")
    found = graph(tmp_path, ("low", "high"))
    pairs = {(package_of(a), package_of(b)) for a, ts in found.items() for b in ts if package_of(a) != package_of(b)}
    assert pairs == {("low", "high"), ("high", "low")}


def long_functions(root: Path, folders: list[str], files: list[str]) -> dict[str, int]:
    paths = [p for f in folders for p in (root / f).rglob("*.py")] + [root / f for f in files]
    out = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out[f"{path.relative_to(root)}:{node.lineno} {node.name}"] = n
    return out


def test_no_function_in_runner_or_the_worker_is_longer_than_60_lines():
    assert long_functions(REPO_ROOT, ["runner", "common"], ["models/worker.py"]) == {}


def test_no_file_in_runner_is_over_500_lines():
    long = {str(p.relative_to(REPO_ROOT)): n for p in (REPO_ROOT / "runner").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("package", ["common", "runner", "runner/executors", "reports", "models", "tooling",
                                     "history"])
def test_each_package_says_what_it_holds_and_what_it_never_imports(package):
    doc = ast.get_docstring(ast.parse((REPO_ROOT / package / "__init__.py").read_text()))
    assert doc and "never import" in " ".join(doc.split()).lower(), package
