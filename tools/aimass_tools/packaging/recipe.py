"""The Dockerfile, parsed into a recipe: the base image, the steps to replay, ENV and CMD."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.instructions import parse_copy, parse_run
from aimass_tools.packaging.platform import BASE_IMAGES, ENTRYPOINT, STREAMING_ENTRYPOINT, TASK_ROOT, Platform
from aimass_tools.packaging.steps import Step


@dataclass
class Recipe:
    base: str
    platform: Platform
    steps: list[Step] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)


def read_recipe(dockerfile: Path) -> Recipe:
    """Parse the Dockerfile into the steps this script replays; anything else is an error."""
    recipe: Recipe | None = None
    for number, instruction, rest in _instructions(dockerfile.read_text()):
        where = f"{dockerfile}:{number}"
        if instruction == "FROM":
            if recipe is not None:
                raise PackagingError(f"{where}: one FROM only; multi-stage builds are not replayed")
            recipe = Recipe(base=rest, platform=_platform(rest, where))
            continue
        if recipe is None:
            raise PackagingError(f"{where}: {instruction} before FROM")
        if instruction == "COPY":
            recipe.steps.append(parse_copy(rest, where))
        elif instruction == "RUN":
            recipe.steps.extend(parse_run(rest, where))
        elif instruction == "ENV":
            recipe.env.update(_parse_env(rest, where))
        elif instruction == "CMD":
            recipe.cmd = _parse_cmd(rest, where)
        elif instruction == "ENTRYPOINT":
            if json.loads(rest) not in (ENTRYPOINT, STREAMING_ENTRYPOINT) or recipe.platform.python != "3.11":
                raise PackagingError(
                    f"{where}: ENTRYPOINT must be {json.dumps(ENTRYPOINT)} (or, for a streaming function, "
                    f"{json.dumps(STREAMING_ENTRYPOINT)}) on a Python 3.11 base"
                )
        else:
            raise PackagingError(f"{where}: {instruction} is not replayed; extend aimass_tools/packaging/recipe.py")
    if recipe is None or not recipe.cmd:
        raise PackagingError(f"{dockerfile}: needs a FROM and a CMD")
    return recipe


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), comments and blank lines dropped, continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        instruction, _, rest = joined.partition(" ")
        yield start, instruction.upper(), rest.strip()
    if pending:
        raise PackagingError(f"line {start}: the last instruction ends in a line continuation")


def _platform(image: str, where: str) -> Platform:
    name = image.split("@", 1)[0]  # a digest pins the same image as its tag
    if name not in BASE_IMAGES:
        raise PackagingError(f"{where}: unknown base image {name!r}; add it to BASE_IMAGES")
    return BASE_IMAGES[name]


def _parse_env(rest: str, where: str) -> dict[str, str]:
    words = shlex.split(rest)  # Docker strips unescaped quotes the way a POSIX shell does
    if words and "=" not in words[0]:
        # The legacy form: ENV KEY value with spaces.
        return {words[0]: _expand(" ".join(words[1:]))}
    if not all("=" in word for word in words):
        raise PackagingError(f"{where}: ENV expects KEY=value pairs")
    return {key: _expand(value) for key, _, value in (word.partition("=") for word in words)}


def _expand(value: str) -> str:
    # The base image sets LAMBDA_TASK_ROOT; Docker expands it in ENV values.
    return value.replace("${LAMBDA_TASK_ROOT}", TASK_ROOT).replace("$LAMBDA_TASK_ROOT", TASK_ROOT)


def _parse_cmd(rest: str, where: str) -> list[str]:
    try:
        cmd = json.loads(rest)
    except json.JSONDecodeError:
        cmd = None
    if not (isinstance(cmd, list) and len(cmd) == 1 and re.fullmatch(r"[\w.]+\.\w+", str(cmd[0]))):
        raise PackagingError(f'{where}: CMD must be the exec form ["module.function"]')
    return [str(cmd[0])]
