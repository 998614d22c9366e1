"""No hand-written list where the matrix or a registry knows: a list of models written out in the product's code is
left behind by the next model (reports/tax.py once left it out of the Keras tax silently), a copy of the executor
registry's names by the next executor. The product's source is read as Python (every list, tuple, set and dict
key of string constants), and names the matrix or a registry owns may appear together only in that registry."""

from __future__ import annotations

import ast
from pathlib import Path

from runner.executors import EXECUTOR_CHOICES, EXECUTORS
from runner.matrix import load_matrix
from runner.paths import DEFAULT_MATRIX, REPO_ROOT

PRODUCT = ("common", "runner", "reports", "history", "models")  # tooling/ holds experiments: their models are chosen
MATRIX = load_matrix(DEFAULT_MATRIX)

# the registries themselves: where these names are defined, once
REGISTRIES = {
    "executors": {"runner/executors/__init__.py"},  # EXECUTORS
    "datasets": {"models/data.py", "models/sources.py",  # LOADERS, FULL_SIZES; the files and URLs
                 "runner/matrix_schema.py"},  # ModelSpec.dataset: the names a matrix may use
    # provenance, GPU memory, the queued-work wait and precision live in one module per framework
    # (models/frameworks/<name>.py, found by name), colours in matrix.yaml; the twins' registry remains
    "frameworks": {"models/native/__init__.py"},
    "models": set(),
}


def owned_names() -> dict[str, tuple[set[str], int]]:
    """kind -> (the names, how many of them together make a list)."""
    return {
        "models": (set(MATRIX.models), 2),
        "datasets": ({spec.dataset for spec in MATRIX.models.values()} - {"user"}, 2),
        "frameworks": ({spec.framework for spec in MATRIX.backends.values()}, 3),
        "executors": (set(EXECUTORS), 3),
    }


def written_lists(path: Path) -> list[tuple[int, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            elements = node.elts
        elif isinstance(node, ast.Dict):
            elements = [k for k in node.keys if k is not None]
        else:
            continue
        strings = [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(strings) >= 2:
            out.append((node.lineno, strings))
    return out


def offenders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {kind: [] for kind in REGISTRIES}
    for package in PRODUCT:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            for line, strings in written_lists(path):
                for kind, (names, enough) in owned_names().items():
                    hit = sorted(set(strings) & names)
                    if len(hit) >= enough:
                        found[kind].append(f"{rel}:{line}: {', '.join(hit)}")
    return found


def test_no_list_of_models_executors_datasets_or_frameworks_is_written_out():
    found = offenders()
    for kind, where in found.items():
        files = {w.split(":")[0] for w in where}
        assert files <= REGISTRIES[kind], f"{kind} written out by hand (read them from the matrix or registry): " + \
            "; ".join(w for w in where if w.split(":")[0] not in REGISTRIES[kind])
        assert files == REGISTRIES[kind], f"{kind}: no longer a list in {REGISTRIES[kind] - files}: shrink REGISTRIES"


def test_the_checker_finds_a_list_written_out(tmp_path):
    (tmp_path / "x.py").write_text('ORDER = ("mlp", "cnn", "hrnn")\nD = {"venv": 1, "docker": 2, "slurm": 3}\n'
                                   'ok = ("mlp",)\n')
    assert written_lists(tmp_path / "x.py") == [(1, ["mlp", "cnn", "hrnn"]), (2, ["venv", "docker", "slurm"])]


def test_what_the_lists_became_follows_the_matrix_and_the_registry():
    """The sweep's and gpu-check's tests are the matrix's MNIST models; --executor offers the registry."""
    assert MATRIX.models_of("mnist") == [m for m, spec in MATRIX.models.items() if spec.dataset == "mnist"]
    assert set(MATRIX.models_of("mnist")) == {"mlp", "cnn", "hrnn"}
    assert EXECUTOR_CHOICES == ("auto", *EXECUTORS)
    added = MATRIX.model_copy(update={"models": {**MATRIX.models, "mlp2": MATRIX.models["mlp"]}})
    assert added.models_of("mnist")[-1] == "mlp2"  # a new MNIST model joins the sweep with no code change
