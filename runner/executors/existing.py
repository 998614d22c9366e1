"""An interpreter the user already has (asv's "existing" environment): `python -m runner --python PATH`.

GPU machines and clusters come with a working Python (a conda environment, a module, the system Python with the
machine's own CUDA builds of JAX or PyTorch) and often no internet. This executor builds nothing: it imports Keras
and each backend's framework in that interpreter once, before any cell starts (a missing one stops the run with exit
status 2, naming the interpreter, the module and the fix), then runs each cell there exactly as the venv executor
does. Versions that differ from the environment's pins are recorded as warnings, never failures: the interpreter is
what the user chose to measure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.errors import BadInput
from runner.executors.base import CellHandle, CellJob, Executor, PreparedEnv
from runner.executors.venv import launch_worker
from runner.interpreters import specifier
from runner.matrix import Environment, Matrix, expand_env_dir
from runner.pins import requirement_name

PROBE_TIMEOUT_S = 300
# Runs in the user's interpreter, which may be as old as the 2017 environments' Python 3.6: no f-strings.
# Arguments: module names; `keras` last, imported with KERAS_BACKEND already set by the caller.
PROBE = r"""
import importlib, json, sys
out = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable, "modules": {}}
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
        out["modules"][name] = {"version": str(getattr(mod, "__version__", "unknown")),
                                "file": str(getattr(mod, "__file__", ""))}
    except BaseException as exc:
        out["modules"][name] = {"error": "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")}
# the GPUs each imported framework sees: they decide the device class, so the GPU default variants apply
out["gpus"] = {}
count = {"torch": lambda m: m.cuda.device_count(),
         "jax": lambda m: len([d for d in m.devices() if d.platform != "cpu"]),
         "tensorflow": lambda m: len(m.config.list_physical_devices("GPU"))}
for name, how in count.items():
    if name in sys.modules and "error" not in out["modules"].get(name, {"error": 1}):
        try:
            out["gpus"][name] = int(how(sys.modules[name]))
        except BaseException:
            pass
sys.stdout.write("\nKBM-PROBE " + json.dumps(out) + "\n")
"""


class InterpreterError(BadInput):
    """--python names an interpreter that cannot serve the selected cells; nothing runs (exit status 2)."""


def pinned_versions(env: Environment, frameworks: list[str]) -> dict[str, str]:
    """What the matrix pins, keyed as the worker's `versions` are: python, keras, numpy and each framework
    (a pin named like the framework or the framework plus a suffix: tensorflow-cpu, mxnet-cu80)."""
    pins = {"python": env.python, "keras": env.keras}
    for name, version in env.pins.items():
        if name == "numpy":
            pins["numpy"] = version
        for framework in frameworks:
            if name == framework or name.startswith(framework + "-"):
                pins.setdefault(framework, version)
    return pins


def _same(actual: str, pinned: str) -> bool:
    if pinned[:1] in "<>=!~":  # a range (an environment's python: ">=3.11,<3.14"): any version inside it
        return specifier(pinned).contains(actual, prereleases=True)
    actual, pinned = actual.split("+")[0], pinned.split("+")[0]  # a local build (2.13.0+cpu) is its release
    return actual == pinned or actual.startswith(pinned + ".")


def version_warnings(name: str, pins: dict[str, str], actual: dict[str, str]) -> list[str]:
    return [
        f"{module} {actual[module]} differs from the environment's pin {pins[module]} ({name}); "
        "the existing interpreter's version ran"
        for module in pins
        if actual.get(module) and actual[module] != "unknown" and not _same(actual[module], pins[module])
    ]


class ExistingExecutor(Executor):
    name = "existing"

    def __init__(self, python: str | Path, matrix: Matrix):
        given = os.path.expanduser(str(python))  # a bare name is looked up on PATH; a path made absolute
        found = shutil.which(given) if os.sep not in given else str(Path(given).absolute())
        self.python = found or given
        self.matrix = matrix
        self._probes: dict[str, dict[str, Any]] = {}

    def _frameworks(self, env: Environment) -> list[tuple[str, str, str]]:
        """(backend, framework module, keras backend name) for each backend the environment hosts."""
        return [(b, self.matrix.backends[b].framework, self.matrix.backends[b].keras_backend) for b in env.backends]

    def _env_dir(self) -> str:
        return str(Path(self.python).absolute().parent.parent)  # bin/python -> its prefix, for {env_dir}

    def probe(self, name: str, env: Environment) -> dict[str, Any]:
        """Import the environment's frameworks, numpy and Keras in the interpreter, once per environment."""
        if name in self._probes:
            return self._probes[name]
        frameworks = self._frameworks(env)
        checked = [p for v in self.matrix.variants.values() for p in v.applies_to.versions
                   if set(v.applies_to.backends) & set(env.backends)]  # what variants' `versions` name
        modules = list(dict.fromkeys([fw for _, fw, _ in frameworks] + ["numpy", *checked]))
        variables = dict(os.environ)
        variables.pop("VIRTUAL_ENV", None)
        variables.update(expand_env_dir(env.env, self._env_dir()))
        variables["KERAS_BACKEND"] = frameworks[0][2]
        try:
            proc = subprocess.run(
                [self.python, "-c", PROBE, *modules, "keras"],
                capture_output=True, text=True, env=variables, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            raise InterpreterError(
                f"--python {self.python}: cannot run it ({exc.strerror}); pass the path of a Python interpreter"
            ) from None
        except subprocess.TimeoutExpired:
            raise InterpreterError(
                f"--python {self.python}: importing Keras and its backends took over {PROBE_TIMEOUT_S} s"
            ) from None
        line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("KBM-PROBE ")), None)
        if line is None:
            raise InterpreterError(
                f"--python {self.python}: not a working Python interpreter (exit status {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-300:]}"
            )
        found = json.loads(line[len("KBM-PROBE ") :])
        self._probes[name] = found
        return found

    def problems(self, name: str, env: Environment) -> list[str]:
        found = self.probe(name, env)["modules"]
        out = []
        wanted = [(b, fw) for b, fw, _ in self._frameworks(env)] + [("keras", "keras")]
        for backend, module in dict.fromkeys(wanted):
            error = found.get(module, {}).get("error")
            if not error:
                continue
            pin = next((r for r in env.requirements if requirement_name(r)[0] in (module, f"{module}-cpu")), module)
            if module == "keras":
                pin = f"keras=={env.keras}" if env.keras[0].isdigit() else pin
                needed_by = f"environment {name}"
            else:
                needed_by = f"backend {backend} of environment {name}"
            out.append(
                f"cannot import {module} ({error}), needed by {needed_by}. Install it into that interpreter "
                f"(`{self.python} -m pip install '{pin}'`; offline: `pip install --no-index --no-deps --target DIR "
                f"{module}-*.whl` and put DIR on PYTHONPATH), choose the environments it has with --env/--only, "
                "or leave out --python to use the cached virtualenvs"
            )
        return out

    def preflight(self, environments: list[str]) -> None:
        """Raise InterpreterError, listing every missing module, before any cell starts."""
        if not Path(self.python).exists():
            raise InterpreterError(f"--python {self.python}: no such file; pass the path of a Python interpreter")
        issues = [p for name in environments for p in self.problems(name, self.matrix.environments[name])]
        if issues:
            raise InterpreterError(f"--python {self.python}: " + "\n  ".join(issues))

    def found_versions(self, environments: list[str]) -> dict[str, dict[str, str]]:
        """environment -> what the interpreter imports for it (python, keras, numpy, frameworks, the packages
        variants' `versions` name): the planner checks variants against these instead of the pins."""
        return {name: self._versions(name, self.matrix.environments[name]) for name in environments}

    def gpu_count(self, environments: list[str]) -> int:
        """The most GPUs any selected environment's framework sees in the interpreter: the cells' device class
        (which default variant applies), as --gpus says it for a container engine."""
        return max((n for name in environments
                    for n in self.probe(name, self.matrix.environments[name]).get("gpus", {}).values()), default=0)

    def _versions(self, name: str, env: Environment) -> dict[str, str]:
        found = self.probe(name, env)
        versions = {"python": found["python"]}
        versions.update({m: v["version"] for m, v in found["modules"].items() if "version" in v})
        return versions

    def plan(self, name: str, env: Environment) -> dict[str, Any]:
        return {
            "environment": name,
            "location": self.python,
            "cached": True,
            "python": env.python,
            "installs": ["nothing: the existing interpreter serves it as it is"],
        }

    def prepare(self, name: str, env: Environment, on_status: Callable[[str], None]) -> PreparedEnv:
        self.preflight([name])
        versions = self._versions(name, env)
        frameworks = [fw for _, fw, _ in self._frameworks(env)]
        warnings = version_warnings(name, pinned_versions(env, frameworks), versions)
        for warning in warnings:
            on_status(f"warning: {warning}")
        info = {"python": self.python, "executable": self.probe(name, env)["executable"], "versions": versions,
                "version_warnings": warnings}  # fmt: skip
        return PreparedEnv(name, env, self.python, True, 0.0, info)

    def launch(self, prepared: PreparedEnv, job: CellJob) -> CellHandle:
        user_path = tuple(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        handle = launch_worker(self.python, self._env_dir(), job, pythonpath=user_path)
        handle.extra = {k: prepared.info[k] for k in ("python", "executable", "versions", "version_warnings")}
        return handle
