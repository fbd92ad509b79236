"""The steps a Dockerfile is replayed as, and the task-root paths they name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.platform import TASK_ROOT

# How a Dockerfile may spell the task root; the base image sets LAMBDA_TASK_ROOT to it.
TASK_ROOT_VARS = ("${LAMBDA_TASK_ROOT}", "$LAMBDA_TASK_ROOT", TASK_ROOT)


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]  # paths relative to the build context (the repository root)
    dest: PurePosixPath  # relative to the task root
    into_dir: bool  # the destination named a directory ("dest/"), as Docker reads a trailing slash


@dataclass(frozen=True)
class PipInstall:
    requirements: PurePosixPath  # relative to the task root: the file an earlier COPY put there


@dataclass(frozen=True)
class Remove:
    paths: tuple[PurePosixPath, ...]


@dataclass(frozen=True)
class Compile:
    """``python3.11 -m compileall``: bytecode for the code the image copied, written beside it at build time."""

    paths: tuple[PurePosixPath, ...]


Step = Copy | PipInstall | Remove | Compile


def task_path(raw: str, where: str) -> PurePosixPath:
    """A path inside the image's task root, relative to it."""
    for prefix in TASK_ROOT_VARS:
        if raw == prefix or raw.startswith(prefix + "/"):
            relative = PurePosixPath(raw[len(prefix) :].lstrip("/") or ".")
            if ".." in relative.parts:
                raise PackagingError(f"{where}: {raw!r} leaves the task root")
            return relative
    raise PackagingError(f"{where}: {raw!r} is outside ${{LAMBDA_TASK_ROOT}}")
