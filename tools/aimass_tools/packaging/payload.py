"""The payload: a recipe replayed into a folder standing for ``${LAMBDA_TASK_ROOT}``, and its local ENV."""

from __future__ import annotations

import compileall
import json
import py_compile
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from aimass_tools.packaging.copying import Sources, copy_step
from aimass_tools.packaging.dockerignore import read_dockerignore
from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.layout import ENV_FILE, PIP_CACHE, REPO, REPORT_FILE
from aimass_tools.packaging.pip_cache import pip_install
from aimass_tools.packaging.platform import TASK_ROOT
from aimass_tools.packaging.recipe import Recipe, read_recipe
from aimass_tools.packaging.report import Report, size_report
from aimass_tools.packaging.steps import Compile, Copy, PipInstall


def build_payload(
    function: str,
    out: Path,
    *,
    dockerfile: Path | None = None,
    context: Path = REPO,
    model_store: Path | None = None,
    pip_cache: Path = PIP_CACHE,
    target: str | None = None,
) -> Report:
    """Replay ``functions/<function>/Dockerfile``'s ``target`` stage (by default the Lambda stage) into ``out``
    (replaced); return the size report."""
    started = time.perf_counter()
    dockerfile = dockerfile or context / "functions" / function / "Dockerfile"
    recipe = read_recipe(dockerfile, target)
    _prepare_out(out)
    sources = Sources(context, model_store, read_dockerignore(context))
    pip_cached = False
    for step in recipe.steps:
        where = f"{dockerfile}: {type(step).__name__}"
        if isinstance(step, Copy):
            copy_step(step, out, sources, where)
        elif isinstance(step, PipInstall):
            pip_cached = pip_install(step, out, recipe.platform, pip_cache)
        elif isinstance(step, Compile):
            _compile(out, step, where)
        else:
            for path in step.paths:
                _remove(out / path)
    _check_entry(recipe, out)
    environment = {
        "task_root": TASK_ROOT,
        "env": recipe.env,
        "cmd": recipe.cmd,
        "stage": recipe.stage,
        "entrypoint": recipe.entrypoint,
        "expose": recipe.expose,
        "healthcheck": recipe.healthcheck,
    }
    (out / ENV_FILE).write_text(json.dumps(environment, indent=2) + "\n")
    report = size_report(function, recipe, out, time.perf_counter() - started, pip_cached)
    (out / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def _compile(out: Path, step: Compile, where: str) -> None:
    """``compileall`` as the image runs it, with this interpreter standing in for the image's (the same
    version: BASE_IMAGES)."""
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    for path in step.paths:
        target = out / path
        if target.is_dir():
            done = compileall.compile_dir(target, quiet=1, invalidation_mode=mode)
        elif target.is_file():
            done = compileall.compile_file(target, quiet=1, invalidation_mode=mode)
        else:
            raise PackagingError(f"{where}: {path} is not in the task root to compile")
        if not done:
            raise PackagingError(f"{where}: {path} does not compile")


def local_env(payload: Path) -> dict[str, str]:
    """The image's ENV for a run from ``payload``: paths under /var/task point into the folder instead."""
    described = json.loads((payload / ENV_FILE).read_text())
    root = str(described["task_root"])

    def rewrite(value: str) -> str:
        parts = value.split(":")  # path lists too (LD_LIBRARY_PATH-like values)
        return ":".join(str(payload) + p[len(root) :] if p == root or p.startswith(root + "/") else p for p in parts)

    env = {str(key): rewrite(str(value)) for key, value in described["env"].items()}
    return {"LAMBDA_TASK_ROOT": str(payload), **env}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _prepare_out(out: Path) -> None:
    # The folder is replaced; refuse to wipe one this script did not write (a typo in --out).
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FILE).exists():
        raise PackagingError(f"{out} is not empty and holds no {REPORT_FILE}; not replacing it")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def _check_entry(recipe: Recipe, out: Path) -> None:
    """What the image starts is in the payload: the handler's module for Lambda, server mode's package for a server."""
    if recipe.serves_http:
        module = recipe.entrypoint[-1]
        if not (out / Path(*module.split(".")) / "__main__.py").is_file():
            raise PackagingError(f"ENTRYPOINT {recipe.entrypoint!r}: the payload has no package {module!r} to run")
        return
    module, _, _ = recipe.cmd[0].rpartition(".")
    relative = Path(*module.split("."))
    if not (out / relative.with_suffix(".py")).is_file() and not (out / relative / "__init__.py").is_file():
        raise PackagingError(f"CMD {recipe.cmd[0]!r}: the payload has no module {module!r}")
