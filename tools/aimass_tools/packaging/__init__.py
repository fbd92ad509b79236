"""Assemble a function's Lambda payload without Docker, by replaying its Dockerfile (or its server stage's).

The folder it writes stands for the image's ``${LAMBDA_TASK_ROOT}`` (``/var/task``): the pinned
requirements installed for the Lambda platform, the shared core, the function code and its models,
exactly as the Dockerfile's COPY and RUN lines lay them out. Tests import the handler from that folder
in an isolated interpreter, so a dependency missing from the requirements, a file the image does not
copy, or a build/dev tool sneaking into the image shows up without a Docker engine.

The Dockerfile is the single source: it is parsed, and any instruction or flag that cannot be replayed
faithfully is refused, so the two cannot drift apart silently. A function's Dockerfile has two stages: the
Lambda image (``function``, assembled by default) and the long-lived server built on it (``server``:
``build_payload(..., target="server")``, which adds server mode and its pinned requirements).

Besides the payload itself the folder holds two files the image does not:

* ``.env.json``: the image's ENV values verbatim (paths under ``/var/task``), its CMD, ENTRYPOINT, EXPOSE and
  HEALTHCHECK, the stage, and the task root. ``local_env()`` turns it into the environment for a local run,
  rewriting ``/var/task`` to the folder.
* ``.payload.json``: the size report (MiB, the unit of Lambda's limits): the total and a breakdown
  into site-packages (per distribution), the shared core, the function code and the models.

The modules, by role: ``platform`` (base images and the wheels they load), ``stages``, ``recipe``,
``instructions`` and ``steps`` (the Dockerfile, parsed), ``dockerignore``, ``copying`` and ``pip_cache`` (the steps,
replayed), ``payload`` (the whole build and its local ENV), ``report`` (the size report).
``__main__`` is the command line (``python -m aimass_tools.packaging <function>``).
"""

from __future__ import annotations

from aimass_tools.packaging.dockerignore import is_ignored, read_dockerignore
from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.layout import ENV_FILE, PIP_CACHE, REPO, REPORT_FILE
from aimass_tools.packaging.payload import build_payload, local_env
from aimass_tools.packaging.platform import ARCH, BASE_IMAGES, ENTRYPOINT, SERVER_ENTRYPOINT, TASK_ROOT, Platform
from aimass_tools.packaging.recipe import Recipe, read_recipe
from aimass_tools.packaging.report import Report, print_report
from aimass_tools.packaging.stages import LAMBDA_STAGE
from aimass_tools.packaging.steps import Compile, Copy, PipInstall, Remove, Step

__all__ = [
    "ARCH",
    "BASE_IMAGES",
    "ENTRYPOINT",
    "ENV_FILE",
    "LAMBDA_STAGE",
    "PIP_CACHE",
    "REPO",
    "REPORT_FILE",
    "SERVER_ENTRYPOINT",
    "TASK_ROOT",
    "Compile",
    "Copy",
    "PackagingError",
    "PipInstall",
    "Platform",
    "Recipe",
    "Remove",
    "Report",
    "Step",
    "build_payload",
    "is_ignored",
    "local_env",
    "print_report",
    "read_dockerignore",
    "read_recipe",
]
