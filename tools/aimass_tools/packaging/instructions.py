"""COPY and RUN, parsed into steps; what cannot be replayed faithfully is refused, not approximated."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import PurePosixPath

from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.steps import Compile, Copy, PipInstall, Remove, Step, task_path


def parse_copy(rest: str, where: str) -> Copy:
    words = shlex.split(rest)
    flags = [word for word in words if word.startswith("--")]
    # Ownership and permissions do not change what the payload holds; anything else (--from) does.
    unknown = [flag for flag in flags if not flag.startswith(("--chown=", "--chmod=", "--link"))]
    if unknown:
        raise PackagingError(f"{where}: COPY {' '.join(unknown)} is not replayed")
    paths = [word for word in words if not word.startswith("--")]
    if len(paths) < 2:
        raise PackagingError(f"{where}: COPY needs a source and a destination")
    *sources, dest = paths
    globbed = [source for source in sources if set(source) & set("*?[")]
    if globbed:
        raise PackagingError(f"{where}: COPY wildcards are not replayed: {globbed}")
    into_dir = dest.endswith("/") or len(sources) > 1
    return Copy(tuple(sources), task_path(dest.rstrip("/") or dest, where), into_dir)


def parse_run(rest: str, where: str) -> list[Step]:
    """RUN is replayed only as ``pip install -r ... --target ${LAMBDA_TASK_ROOT}``, ``rm`` and
    ``python3.11 -m compileall -q --invalidation-mode unchecked-hash <paths>`` commands.

    ``dnf`` lines that install the base image's Python are accepted and skipped: the interpreter running
    the twin stands in for it (BASE_IMAGES says which version that must be).
    """
    steps: list[Step] = []
    for command in _split_commands(shlex.split(rest)):
        if _installs_python(command):
            continue
        if command and command[0] == "rm":
            paths = [word for word in command[1:] if not word.startswith("-")]
            steps.append(Remove(tuple(task_path(path, where) for path in paths)))
        elif command[:3] == ["python3.11", "-m", "compileall"]:
            steps.append(_parse_compile(command[3:], where))
        else:
            steps.append(_parse_pip(command, where))
    return steps


# The one way the images compile: quietly, into unchecked hash-based .pyc files. The task root never changes
# once built, so Python may load them without reading the source's time or hash (PEP 552).
_COMPILE_FLAGS = ["-q", "--invalidation-mode", "unchecked-hash"]


def _parse_compile(arguments: list[str], where: str) -> Compile:
    if arguments[: len(_COMPILE_FLAGS)] != _COMPILE_FLAGS or len(arguments) == len(_COMPILE_FLAGS):
        raise PackagingError(
            f"{where}: RUN python3.11 -m compileall {' '.join(arguments)!r} is not replayed "
            f"(only compileall {' '.join(_COMPILE_FLAGS)} <paths in the task root>)"
        )
    return Compile(tuple(task_path(path, where) for path in arguments[len(_COMPILE_FLAGS) :]))


def _installs_python(command: list[str]) -> bool:
    if command == ["dnf", "clean", "all"]:
        return True
    if command[:3] != ["dnf", "install", "-y"] or len(command) == 3:
        return False
    return all(re.fullmatch(r"python3\.\d+(-pip)?", package) for package in command[3:])


def _split_commands(words: list[str]) -> Iterator[list[str]]:
    command: list[str] = []
    for word in words:
        if word == "&&":
            yield command
            command = []
        else:
            command.append(word)
    yield command


_PIP_PREFIXES = (
    ["pip", "install"],
    ["pip3", "install"],
    ["python", "-m", "pip", "install"],
    ["python3.11", "-m", "pip", "install"],
)
# Flags that do not change what gets installed.
_PIP_NEUTRAL = {"--no-cache-dir", "--disable-pip-version-check", "--quiet", "-q", "--no-deps"}
_PIP_VALUED = {"-r": "requirements", "--requirement": "requirements", "-t": "target", "--target": "target"}


def _parse_pip(command: list[str], where: str) -> PipInstall:
    prefix = next((p for p in _PIP_PREFIXES if command[: len(p)] == p), None)
    if prefix is None:
        raise PackagingError(f"{where}: RUN {' '.join(command)!r} is not replayed (only pip install and rm)")
    values: dict[str, str] = {}
    words = iter(command[len(prefix) :])
    for word in words:
        if word in _PIP_VALUED:
            values[_PIP_VALUED[word]] = next(words, "")
        elif word not in _PIP_NEUTRAL:
            raise PackagingError(f"{where}: pip install {word!r} is not replayed")
    # The requirements file is a pinned closure: without --no-deps pip would add what the file leaves
    # out on purpose (huggingface-hub and its dependencies, declared by tokenizers).
    if "--no-deps" not in command:
        raise PackagingError(f"{where}: pip install must pass --no-deps (the requirements are a full closure)")
    target = values.get("target")
    if "requirements" not in values or target is None or task_path(target, where) != PurePosixPath("."):
        raise PackagingError(f"{where}: pip install needs -r <file> and --target ${{LAMBDA_TASK_ROOT}}")
    return PipInstall(task_path(values["requirements"], where))
