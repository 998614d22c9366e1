"""Load and validate matrix.yaml.

Every error names the file, the line and the key path, so a typo is found without reading code. Pydantic checks
shapes and types (the models are runner/matrix_schema.py, re-exported here); cross-references (an environment
hosting an unknown backend, a profile overriding an unknown model) are checked here after it, with the same
line-precise reporting.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runner.interpreters import PLAIN
from runner.matrix_schema import (
    ENV_DIR,
    ENV_NAME_RE,
    NAME_RE,
    RESERVED_ENV,
    Backend,
    BackendLimits,
    Defaults,
    DockerRecipe,
    Environment,
    InferenceProfile,
    KnownIssue,
    Matrix,
    MatrixError,
    MnistWheel,
    ModelSpec,
    Optimizer,
    Profile,
    ProfileLimits,
    expand_env_dir,
)
from runner.variants import KERAS3_ONLY

__all__ = ["ENV_NAME_RE", "Backend", "BackendLimits", "Defaults", "DockerRecipe", "Environment", "InferenceProfile",
           "KnownIssue", "Matrix", "MatrixError", "MnistWheel", "ModelSpec", "Optimizer", "Profile", "ProfileLimits",
           "expand_env_dir", "load_matrix"]


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in the YAML document to its 1-based line (keys point at the key's own line)."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = path + (key_node.value,)
            out[sub] = key_node.start_mark.line + 1
            _line_index(value_node, sub, out)
            out[sub] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _line_for(lines: dict[tuple, int], loc: tuple) -> int:
    """The line of the deepest existing prefix of loc (a missing key is reported at its parent)."""
    for cut in range(len(loc), -1, -1):
        if tuple(loc[:cut]) in lines:
            return lines[tuple(loc[:cut])]
    return 1


def _fmt_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _unknown(kind: str, name: str, known: Any) -> str:
    return f"unknown {kind} {name!r}" + _suggest(name, list(known))


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} Known: {', '.join(sorted(choices))}"


Problems = list[tuple[tuple, str]]


def _check_backends(m: Matrix) -> Problems:
    problems: Problems = []
    for b_name, backend in m.backends.items():
        for i, issue in enumerate(backend.known_issues):
            loc = ("backends", b_name, "known_issues", i)
            problems += [(loc + ("models",), _unknown("model", model, m.models))
                         for model in issue.models if model not in m.models]
            problems += [(loc + ("profiles",), _unknown("profile", prof, m.profiles))
                         for prof in issue.profiles or [] if prof not in m.profiles]
        problems += [(("backends", b_name, "models"), _unknown("model", model, m.models))
                     for model in backend.models or [] if model not in m.models]
        family = backend.family
        if family and family in m.backends and m.backends[family].family not in (None, family):
            problems.append((("backends", b_name, "family"), f"family {family!r} is a backend that names another "
                             "family"))
        if not m.environments_for(b_name):
            problems.append((("backends", b_name), f"backend {b_name!r} is hosted by no environment"))
    for section, name, variables in [*(("backends", b, v.env) for b, v in m.backends.items()),
                                     *(("environments", e, v.env) for e, v in m.environments.items())]:
        for key in variables:
            if not re.match(ENV_NAME_RE, key):
                why = "use letters, digits and '_', not starting with a digit (values may hold anything)"
                problems.append(((section, name, "env", key), f"{key!r} is not a variable name: {why}"))
    return problems


def _check_environment(m: Matrix, env_name: str, env: Environment) -> Problems:
    loc = ("environments", env_name)
    problems: Problems = [(loc + ("backends", i), _unknown("backend", backend, m.backends))
                          for i, backend in enumerate(env.backends) if backend not in m.backends]
    for key, value in env.env.items():
        if "{" in value.replace(ENV_DIR, ""):
            problems.append((loc + ("env", key), f"unknown placeholder in {value!r}; the only one is {ENV_DIR} "
                             "(the environment's folder)"))
    for link, target in env.library_links.items():
        if link.startswith("/") or target.startswith("/") or ".." in Path(link).parts:
            problems.append((loc + ("library_links", link), "link and target must be relative paths inside the "
                             "unpacked packages (no '/' start, no '..')"))
    for cache, target in (env.docker.caches if env.docker else {}).items():
        if not target.startswith("/") or not re.match(NAME_RE, cache):
            problems.append((loc + ("docker", "caches", cache), "a cache is name: /absolute/path/in/the/container "
                             "(name: lower-case letters, digits, -_.)"))
    if env.library_links and not env.debian_packages:
        problems.append((loc + ("library_links",), "library_links needs debian_packages to link into"))
    if env.docker is not None and env.docker.python is None and not PLAIN.match(env.python):
        why = f"python is the range {env.python!r}: add `python: X.Y` here, the Python of its images"
        problems.append((loc + ("docker",), why))
    return problems


def _check_profiles(m: Matrix) -> Problems:
    problems: Problems = []
    for prof_name, prof in m.profiles.items():
        loc = ("profiles", prof_name)
        problems += [(loc + ("models_only", i), _unknown("model", model, m.models))
                     for i, model in enumerate(prof.models_only or []) if model not in m.models]
        problems += [(loc + ("models", model), _unknown("model", model, m.models))
                     for model in prof.models if model not in m.models]
        for backend, limits in prof.backends.items():
            if backend not in m.backends:
                problems.append((loc + ("backends", backend), _unknown("backend", backend, m.backends)))
            problems += [(loc + ("backends", backend, "models", model), _unknown("model", model, m.models))
                         for model in limits.models if model not in m.models]
        # a profile's configuration must exist for every suite model it may run
        runs = prof.models_only or list(m.models)
        for model in runs:
            spec = m.models.get(model)
            config = prof.limits_for(model).config
            if spec is not None and spec.configs and config and config not in spec.configs:
                where = loc + (("models", model, "config") if model in prof.models else ("config",))
                problems.append((where, f"model {model} has no configuration {config!r} (it has "
                                 f"{', '.join(spec.configs)})"))
    return problems


def _check_defaults_and_models(m: Matrix) -> Problems:
    problems: Problems = [(("defaults", "environments", i), _unknown("environment", env_name, m.environments))
                          for i, env_name in enumerate(m.defaults.environments or []) if env_name not in m.environments]
    if m.defaults.profile not in m.profiles:
        problems.append((("defaults", "profile"), _unknown("profile", m.defaults.profile, m.profiles)))
    models_dir = Path(__file__).resolve().parent.parent / "models"
    for model, spec in m.models.items():
        if spec.module is None and not (models_dir / f"{model}.py").is_file():
            problems.append((("models", model), f"no model definition models/{model}.py for {model!r}; a model of "
                             "your own names its file in `module`"))
    return problems


def _check_step_seconds(m: Matrix) -> Problems:
    problems: Problems = []
    for device, table in m.step_seconds.items():
        for backend, models in table.backends.items():
            loc = ("step_seconds", device, "backends", backend)
            if backend not in m.backends:
                problems.append((loc, _unknown("backend", backend, m.backends)))
            problems += [(loc + (model,), _unknown("model", model, m.models)) for model in models
                         if model not in m.models]
    return problems


def _cross_check(m: Matrix) -> Problems:
    problems = _check_backends(m) + _check_step_seconds(m)
    for env_name, env in m.environments.items():
        problems += _check_environment(m, env_name, env)
    return problems + _check_profiles(m) + _check_defaults_and_models(m) + _check_variants(m)


def _check_variant(m: Matrix, name: str, variant: Any) -> Problems:
    """A variant names real backends and environments, sets only variables a cell may set, and can run somewhere."""
    problems: Problems = []
    loc = ("variants", name)
    scope = variant.applies_to
    for i, backend in enumerate(scope.backends):
        if backend not in m.backends:
            problems.append((loc + ("applies_to", "backends", i),
                             _unknown("backend", backend, m.backends)))
    for i, env_name in enumerate(scope.environments or []):
        if env_name not in m.environments:
            problems.append((loc + ("applies_to", "environments", i),
                             _unknown("environment", env_name, m.environments)))
    for key in variant.env:
        if not re.match(ENV_NAME_RE, key):
            problems.append((loc + ("env", key), f"{key!r} is not an environment variable name "
                             "(letters, digits and '_', not starting with a digit)"))
        elif key.startswith(RESERVED_ENV):
            problems.append((loc + ("env", key), f"{key} is set by the runner itself; a variant cannot change it"))
    not_jax = [b for b in scope.backends if b in m.backends and m.backends[b].framework != "jax"]
    if variant.jax_config and not_jax:
        problems.append((loc + ("jax_config",), f"jax_config applies to JAX only, not {', '.join(not_jax)}; "
                         "split the variant"))
    if any(b not in m.backends for b in scope.backends) or any(
            e not in m.environments for e in scope.environments or []):
        return problems
    for package in scope.versions:
        unpinned = sorted({e for b in scope.backends for e in m.environments_for(b)
                           if (scope.environments is None or e in scope.environments)
                           and package not in m.environments[e].pins})
        if unpinned:
            problems.append((loc + ("applies_to", "versions", package),
                             f"{package} has no exact pin (==) in {', '.join(unpinned)}, so its version cannot be "
                             f"checked; pin it there or narrow applies_to.environments"))
    fits = [(b, e) for b in scope.backends for e in m.environments_for(b)
            if m.variant_misfit(name, b, e, gpus=scope.device == "gpu") is None]
    if not fits:
        problems.append((loc + ("applies_to",), "applies to no environment of the matrix (check backends, "
                         "environments and keras)"))
    for key in KERAS3_ONLY:
        old = sorted({e for _, e in fits if not m.environments[e].keras.startswith("3.")})
        if getattr(variant, key) is not None and old:
            problems.append((loc + (key,), f"{key} needs Keras 3 but the variant applies to {', '.join(old)}; "
                             "add `keras: [\"3.\"]` to applies_to"))
    return problems


def _default_loc(value: Any, section: tuple, gpu: bool) -> tuple | None:
    """Where a `default_variant` names the variant for a device class (None: it names none for it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return section + ("default_variant",)
    named = value.gpu if gpu else value.cpu
    return None if named is None else section + ("default_variant", "gpu" if gpu else "cpu")


def _check_variants(m: Matrix) -> Problems:
    """Every variant is sound (`_check_variant`) and every environment's default variant, for each device class,
    applies to all of its backends."""
    problems: Problems = []
    for name, variant in m.variants.items():
        problems += _check_variant(m, name, variant)
    said: set[tuple] = set()
    for gpu in (False, True):
        fallback = m.fallback_variant(gpu)
        fallback_loc = _default_loc(m.defaults.default_variant, ("defaults",), gpu) or ("defaults",)
        if fallback not in m.variants and fallback_loc not in said:
            said.add(fallback_loc)
            problems.append((fallback_loc, f"unknown variant {fallback!r}" + _suggest(fallback, list(m.variants))))
        for env_name, env in m.environments.items():
            loc = _default_loc(env.default_variant, ("environments", env_name), gpu) or fallback_loc
            name = m.default_variant(env_name, gpu)
            if name not in m.variants:
                if loc != fallback_loc and loc not in said:
                    said.add(loc)
                    problems.append((loc, _unknown("variant", name, m.variants)))
                continue
            device = "a GPU" if gpu else "a CPU"
            for backend in env.backends:
                why = m.variant_misfit(name, backend, env_name, gpus=gpu) if backend in m.backends else None
                if why and loc not in said:
                    said.add(loc)
                    fix = (f"set environments.{env_name}.default_variant to one that does, or one per device "
                           "class: {cpu: NAME, gpu: NAME}")
                    problems.append((loc, f"the default variant of {env_name} on {device} must apply to its backend "
                                     f"{backend}: {why}; {fix}"))
    return problems


UNION_TAG = re.compile(r"^(constrained-|literal\[|function-|lax-|strict-|variant-name$|variant-by-device$)")


def _validation_messages(exc: ValidationError, path: Path, lines: dict[tuple, int]) -> str:
    """FILE:LINE: key: message per problem; a value that fits none of a union's members (a batch size that is
    neither a number >= 1 nor "model") is one line naming each way it could have been right."""
    by_loc: dict[tuple, list[str]] = {}
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and UNION_TAG.match(p)))
        what = "unknown key (remove it or check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        by_loc.setdefault(loc, []).append(what)
    return "\n".join(f"{path}:{_line_for(lines, loc)}: {_fmt_loc(loc)}: {' or '.join(dict.fromkeys(whats))}"
                     for loc, whats in by_loc.items())


def _duplicate_keys(node: yaml.Node, where: str = "") -> list[tuple[str, int, int]]:
    """(dotted key, first line, repeated line) for every key a mapping defines twice, at any depth."""
    out: list[tuple[str, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = f"{where}.{key.value}" if where else str(key.value)
            if key.value in seen:
                out.append((name, seen[key.value], key.start_mark.line + 1))
            seen.setdefault(key.value, key.start_mark.line + 1)
            out += _duplicate_keys(value, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += _duplicate_keys(item, f"{where}[{i}]")
    return out


def load_matrix(path: str | Path) -> Matrix:
    """Parse and validate; raise MatrixError listing every problem as FILE:LINE: key: message."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read the matrix ({exc.strerror}). Pass --matrix PATH.") from exc
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise MatrixError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict) or node is None:
        raise MatrixError(f"{path}:1: the matrix must be a mapping with backends, environments, models, profiles")
    duplicates = _duplicate_keys(node)
    if duplicates:  # YAML keeps the last silently: a second `mixed-bf16:` would replace the first unseen
        raise MatrixError("\n".join(f"{path}:{line}: {key}: defined twice (first on line {first}); keep one"
                                     for key, first, line in duplicates))
    lines = _line_index(node)
    try:
        matrix = Matrix.model_validate(raw)
    except ValidationError as exc:
        raise MatrixError(_validation_messages(exc, path, lines)) from None
    problems = _cross_check(matrix)
    if problems:
        raise MatrixError("\n".join(f"{path}:{_line_for(lines, loc)}: {_fmt_loc(loc)}: {msg}" for loc, msg in problems))
    return matrix
