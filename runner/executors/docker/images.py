"""Container images: an environment's recipe resolved, built with the classic builder, cached by hash.

`prepare` builds the environment's recipe (matrix.yaml `docker:`) from a generated context (the Dockerfile, the
pinned requirements, host-fetched wheels, the host's CA bundle for pip), tagged `kbm/<environment>:<flavour>-<hash>`
where the hash covers the recipe, the requirements, the wheels, the build arguments and the base image's name; a
base image whose id changed under the same name rebuilds. A second run builds nothing. Build output goes to a log
under the cache; each build step is reported on the screen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import paths, pybase
from runner.datafetch import pip_download_argv
from runner.executors.base import EnvironmentBuildError, PreparedEnv
from runner.executors.docker.client import IMAGE_REPO, LABEL, find_image
from runner.indexes import pip_index_args
from runner.matrix import Environment


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts (an intercepting proxy's CA lives there), copied into builds."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def _short_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Recipe:
    """An environment's recipe resolved for one flavour: what the image hash covers."""

    environment: str
    flavour: str
    dockerfile: Path
    base_image: str  # what the build starts from: the matrix's, or KBM_BASE_IMAGE / KBM_GPU_BASE_IMAGE
    requirements: tuple[str, ...]
    wheels: tuple[str, ...]
    build_args: dict[str, str]
    python: str
    declared_base: str = ""  # the matrix's base image for this flavour
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    # installed after the rest with --no-deps (KerasHub, whose declared tensorflow-text would bring TensorFlow)
    requirements_no_deps: tuple[str, ...] = ()

    def key(self) -> str:
        """Covers what the recipe declares, not how this machine got its base (a registry pull, or `make
        engine`'s debootstrap import named by KBM_BASE_IMAGE): the Kubernetes dry-run, which knows no engine,
        names the tag the Docker executor builds. The base actually used is a label, and a change rebuilds."""
        return _short_hash(
            {
                "dockerfile": self.dockerfile.read_text(),
                "base": self.declared_base or self.base_image,
                "requirements": self.requirements,
                "wheels": self.wheels,
                "build_args": self.build_args,
                "python": self.python,
                **({"indexes": [self.index_url, *self.extra_index_urls]}
                   if self.index_url or self.extra_index_urls else {}),
                # only when used: the 2017 images keep their keys
                **({"requirements_no_deps": self.requirements_no_deps} if self.requirements_no_deps else {}),
            }
        )

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPO}/{self.environment}:{self.flavour}-{self.key()}"


def resolve_recipe(name: str, env: Environment, flavour: str) -> Recipe:
    """The recipe for `flavour` (cpu or gpu), with KBM_BASE_IMAGE / KBM_GPU_BASE_IMAGE overriding the base."""
    recipe = env.docker
    if recipe is None:
        raise EnvironmentBuildError(
            f"{name}: no container recipe (matrix.yaml environments.{name}.docker); run it with --executor venv"
        )
    rel = recipe.gpu if flavour == "gpu" else recipe.cpu
    if rel is None:
        raise EnvironmentBuildError(f"{name}: no GPU recipe (environments.{name}.docker.gpu) for --gpus")
    dockerfile = paths.RESOURCES / rel
    if not dockerfile.is_file():
        raise EnvironmentBuildError(f"{name}: recipe {rel} does not exist; fix environments.{name}.docker.{flavour}")
    override = os.environ.get("KBM_GPU_BASE_IMAGE" if flavour == "gpu" else "KBM_BASE_IMAGE")
    declared = recipe.base_images.get(flavour) or ""  # type: ignore[call-overload]
    base = override or declared
    if not base:
        raise EnvironmentBuildError(f"{name}: no base image for {flavour} (docker.base_images.{flavour})")
    return Recipe(
        environment=name,
        flavour=flavour,
        dockerfile=dockerfile,
        base_image=base,
        requirements=tuple(recipe.requirements.get(flavour) or env.requirements),  # type: ignore[call-overload]
        wheels=tuple(recipe.wheels.get(flavour, [])),  # type: ignore[call-overload]
        build_args=dict(recipe.build_args),
        python=env.image_python,
        declared_base=declared,
        index_url=recipe.index_url[flavour] if flavour in recipe.index_url else env.index_url,  # type: ignore[index]
        extra_index_urls=tuple(recipe.extra_index_urls[flavour]  # type: ignore[index]
                               if flavour in recipe.extra_index_urls else env.extra_index_urls),
        requirements_no_deps=tuple(env.requirements_no_deps),
    )


def fetch_wheels(recipe: Recipe, dest: Path, log: Any) -> list[str]:
    """pip download each wanted wheel on the host (once; cached by requirement) and link it into dest."""
    names = []
    for requirement in recipe.wheels:
        cache = paths.cache_dir() / "docker" / "wheels" / _short_hash([requirement, recipe.python])
        if not any(cache.glob("*.whl")):
            cache.mkdir(parents=True, exist_ok=True)
            indexes = pip_index_args(recipe.index_url, recipe.extra_index_urls, lambda msg: log.write(msg + "\n"))
            args = pip_download_argv(requirement, cache, "--python-version", recipe.python, *indexes)
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            if subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                shutil.rmtree(cache, ignore_errors=True)
                raise EnvironmentBuildError(f"{recipe.environment}: `pip download {requirement}` failed on the host")
        for wheel in cache.glob("*.whl"):
            try:
                os.link(wheel, dest / wheel.name)
            except OSError:
                shutil.copy2(wheel, dest / wheel.name)
            names.append(wheel.name)
    return names


def _log_file(recipe: Recipe) -> Path:
    folder = paths.cache_dir() / "docker" / "build-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{recipe.environment}-{recipe.flavour}-{recipe.key()}.log"


class ImageStore:
    """The engine's images of the matrix's environments: looked up by recipe hash, built when missing."""

    def __init__(self, client: Any):
        self.client = client

    def image(self, tag: str) -> Any | None:
        return find_image(self.client, tag)

    def _base_id(self, base: str) -> str | None:
        image = self.image(base)
        return image.id if image is not None else None

    def _reusable(self, recipe: Recipe) -> Any | None:
        image = self.image(recipe.tag)
        if image is None:
            return None
        labels = image.labels or {}
        if labels.get(f"{LABEL}.base", recipe.base_image) != recipe.base_image:
            return None  # the same recipe built on another base (KBM_BASE_IMAGE changed): rebuild on this one
        built_on = labels.get(f"{LABEL}.base-id")
        base_now = self._base_id(recipe.base_image)
        if base_now and built_on and base_now != built_on:
            return None  # same base name, new base image: rebuild on it
        return image

    def _recipe(
        self, name: str, env: Environment, flavour: str, on_status: Callable[[str], None] | None = None
    ) -> Recipe:
        """The recipe on the base it really builds on (runner/pybase.py: an override without the environment's
        Python gives way; an official python:X.Y base that cannot be pulled is made locally, in prepare only)."""
        recipe = resolve_recipe(name, env, flavour)
        default = env.docker.base_images.get(recipe.flavour) if env.docker else None  # type: ignore[call-overload]
        log_path = None
        if on_status is not None:
            log_path = paths.cache_dir() / "docker" / "build-logs" / f"python-base-{recipe.python}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            base = pybase.resolve_base(self.client, recipe.base_image, default, recipe.python, log_path, on_status)
        except pybase.PythonBaseError as exc:
            raise EnvironmentBuildError(f"{name}: {exc}; see {log_path}", log_path) from None
        return dataclasses.replace(recipe, base_image=base)

    def plan(self, name: str, env: Environment, flavour: str) -> dict[str, Any]:
        try:
            recipe = self._recipe(name, env, flavour)
        except EnvironmentBuildError as exc:
            return {"environment": name, "location": str(exc), "cached": False, "python": env.image_python,
                    "installs": []}
        return {
            "environment": name,
            "location": f"{recipe.tag} (on {recipe.base_image})",
            "cached": self._reusable(recipe) is not None,
            "python": recipe.python,
            "installs": list(recipe.requirements) + [f"{r} (--no-deps)" for r in recipe.requirements_no_deps]
            + [f"{w} (wheel fetched on the host)" for w in recipe.wheels],
        }

    def prepare(self, name: str, env: Environment, flavour: str, on_status: Callable[[str], None]) -> PreparedEnv:
        """Reuse the image whose tag (recipe hash) matches, else build it; EnvironmentBuildError with the log."""
        started = time.perf_counter()
        recipe = self._recipe(name, env, flavour, on_status)
        image = self._reusable(recipe)
        if image is not None:
            return PreparedEnv(name, env, recipe.tag, True, time.perf_counter() - started, self.describe(image))
        log_path = _log_file(recipe)
        on_status(f"{name}: building image {recipe.tag} on {recipe.base_image} (log: {log_path})")
        with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="kbm-build-") as tmp:
            context = Path(tmp)
            self._context(recipe, context, log)
            self._build(recipe, context, log, log_path, on_status)
        image = self.image(recipe.tag)
        if image is None:
            raise EnvironmentBuildError(
                f"{name}: the build ended without an image {recipe.tag}; see {log_path}", log_path
            )
        info = self.describe(image)
        info["build_s"] = round(time.perf_counter() - started, 1)
        return PreparedEnv(name, env, recipe.tag, False, time.perf_counter() - started, info)

    def _context(self, recipe: Recipe, context: Path, log: Any) -> None:
        kbm = context / "kbm"
        (kbm / "wheels").mkdir(parents=True)
        (kbm / "wheels" / ".keep").write_text("")
        shutil.copy2(recipe.dockerfile, context / "Dockerfile")
        indexes = pip_index_args(recipe.index_url, recipe.extra_index_urls, lambda msg: log.write(msg + "\n"))
        options = [f"{flag} {url}" for flag, url in zip(indexes[::2], indexes[1::2], strict=True)]
        (kbm / "requirements.txt").write_text("\n".join([*options, *recipe.requirements]) + "\n")
        # empty when the environment has none: the recipe installs it only when it lists something
        no_deps = [*options, *recipe.requirements_no_deps] if recipe.requirements_no_deps else []
        (kbm / "requirements-no-deps.txt").write_text("".join(f"{line}\n" for line in no_deps))
        wheels = fetch_wheels(recipe, kbm / "wheels", log)
        log.write(f"context: requirements {list(recipe.requirements)}, wheels {wheels}\n")
        log.flush()

    def _build(self, recipe: Recipe, context: Path, log: Any, log_path: Path, on_status: Callable[[str], None]) -> None:
        import docker

        args = {"PYTHON_VERSION": recipe.python, "BASE_IMAGE": recipe.base_image, **recipe.build_args}
        ca = host_ca_bundle()
        if ca is not None:
            shutil.copy2(ca, context / "kbm" / "ca-bundle.crt")
            args["CA_BUNDLE"] = "ca-bundle.crt"
        labels = {
            f"{LABEL}.environment": recipe.environment,
            f"{LABEL}.flavour": recipe.flavour,
            f"{LABEL}.recipe": str(recipe.dockerfile.relative_to(paths.RESOURCES)),
            f"{LABEL}.key": recipe.key(),
            f"{LABEL}.base": recipe.base_image,
            f"{LABEL}.base-id": self._base_id(recipe.base_image) or "",
            f"{LABEL}.requirements": json.dumps(list(recipe.requirements)),
            f"{LABEL}.requirements-no-deps": json.dumps(list(recipe.requirements_no_deps)),
        }
        error = None
        try:
            stream = self.client.api.build(
                path=str(context),
                tag=recipe.tag,
                buildargs=args,
                labels=labels,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                text = chunk.get("stream") or chunk.get("status") or ""
                if text:
                    log.write(text if text.endswith("\n") else text + "\n")
                    if text.startswith("Step "):
                        on_status(f"{recipe.environment}: {text.strip()[:110]}")
                if "error" in chunk:
                    error = chunk["error"].strip()
                    log.write(f"ERROR: {error}\n")
        except docker.errors.APIError as exc:
            error = str(exc.explanation or exc)
            log.write(f"ERROR: {error}\n")
        log.flush()
        if error:
            hint = ""
            if self._base_id(recipe.base_image) is None:
                hint = (
                    f" (the base image {recipe.base_image} is not on this engine and could not be pulled: set "
                    "KBM_BASE_IMAGE, e.g. the local base `make engine` prints, or pull it)"
                )
            raise EnvironmentBuildError(
                f"{recipe.environment}: image build failed: {error[-300:]}{hint}; see {log_path}", log_path
            )

    def describe(self, image: Any) -> dict[str, Any]:
        labels = image.labels or {}
        return {
            "image": (image.tags or [image.id])[0],
            "image_id": image.id,
            "base": labels.get(f"{LABEL}.base"),
            "requirements": json.loads(labels.get(f"{LABEL}.requirements", "[]")),
            "requirements_no_deps": json.loads(labels.get(f"{LABEL}.requirements-no-deps", "[]")),
            "size_mb": round(image.attrs.get("Size", 0) / 1e6),
        }
