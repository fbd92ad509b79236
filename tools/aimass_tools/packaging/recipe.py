"""The Dockerfile, parsed into a recipe: the base image, the steps to replay, ENV, ENTRYPOINT and CMD.

One target stage's recipe (``aimass_tools.packaging.stages``): the steps of every stage it builds on, then its
own; ENV accumulates; ENTRYPOINT and CMD carry over as Docker carries them (a stage that sets ENTRYPOINT and no
CMD runs with none).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from aimass_tools.packaging.errors import PackagingError
from aimass_tools.packaging.instructions import parse_copy, parse_run
from aimass_tools.packaging.platform import (
    BASE_IMAGES,
    ENTRYPOINT,
    SERVER_ENTRYPOINT,
    STREAMING_ENTRYPOINT,
    TASK_ROOT,
    Platform,
)
from aimass_tools.packaging.stages import Stage, chain, read_stages
from aimass_tools.packaging.steps import Step

# The entrypoints a recipe may end with: the Lambda runtime interface client, AI Mass's streaming Runtime API
# loop, and server mode. None set: the base image's own (the Lambda bootstrap of the python:3.x images).
_LAMBDA_ENTRYPOINTS = (ENTRYPOINT, STREAMING_ENTRYPOINT)
_HEALTHCHECK_OPTIONS = ("--interval=", "--timeout=", "--start-period=", "--start-interval=", "--retries=")


@dataclass
class Recipe:
    base: str
    platform: Platform
    stage: str | None = None  # the target stage's name (None: a Dockerfile's one unnamed stage)
    steps: list[Step] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)  # the exec form HEALTHCHECK runs; empty: none

    @property
    def serves_http(self) -> bool:
        """Whether the image is a long-lived server (``python -m aimass_server``) rather than a Lambda function."""
        return self.entrypoint == SERVER_ENTRYPOINT


def read_recipe(dockerfile: Path, target: str | None = None) -> Recipe:
    """Parse the Dockerfile's ``target`` stage (by default the Lambda stage) into the steps this script replays;
    anything else is an error, in any stage."""
    stages = read_stages(dockerfile)
    recipes: dict[int, Recipe] = {}  # every stage must replay; a stage's parent comes before it in the file
    for stage in stages:
        recipes[id(stage)] = _stage_recipe(stage, None if stage.parent is None else recipes[id(stage.parent)])
    built = chain(stages, target, dockerfile)
    recipe = recipes[id(built[-1])]
    if recipe.serves_http:
        if recipe.cmd:
            raise PackagingError(f"{dockerfile}: the server stage passes no CMD to {json.dumps(SERVER_ENTRYPOINT)}")
    elif not recipe.cmd:
        raise PackagingError(f"{dockerfile}: needs a FROM and a CMD")
    return recipe


def _stage_recipe(stage: Stage, parent: Recipe | None) -> Recipe:
    """The stage's recipe: its parent stage's (already read), then its own instructions."""
    if parent is not None:
        recipe = Recipe(
            base=parent.base,
            platform=parent.platform,
            steps=list(parent.steps),
            env=dict(parent.env),
            cmd=list(parent.cmd),
            entrypoint=list(parent.entrypoint),
            expose=list(parent.expose),
            healthcheck=list(parent.healthcheck),
        )
    else:
        recipe = Recipe(base=stage.base, platform=_platform(stage.base, stage.where))
    recipe.stage = stage.name
    cmd_set = False
    for where, instruction, rest in stage.instructions:
        if instruction == "COPY":
            recipe.steps.append(parse_copy(rest, where))
        elif instruction == "RUN":
            recipe.steps.extend(parse_run(rest, where))
        elif instruction == "ENV":
            recipe.env.update(_parse_env(rest, where))
        elif instruction == "CMD":
            recipe.cmd, cmd_set = _parse_cmd(rest, where), True
        elif instruction == "ENTRYPOINT":
            recipe.entrypoint = _parse_entrypoint(rest, where, recipe.platform)
            if not cmd_set:  # Docker: an ENTRYPOINT resets the CMD a stage inherited
                recipe.cmd = []
        elif instruction == "EXPOSE":
            recipe.expose.extend(_parse_expose(rest, where))
        elif instruction == "HEALTHCHECK":
            recipe.healthcheck = _parse_healthcheck(rest, where)
        else:
            raise PackagingError(f"{where}: {instruction} is not replayed; extend aimass_tools/packaging/recipe.py")
    return recipe


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


def _exec_form(rest: str) -> list[str] | None:
    try:
        words = json.loads(rest)
    except json.JSONDecodeError:
        return None
    return [str(word) for word in words] if isinstance(words, list) and all(isinstance(w, str) for w in words) else None


def _parse_cmd(rest: str, where: str) -> list[str]:
    cmd = _exec_form(rest)
    if cmd is None or not (cmd == [] or (len(cmd) == 1 and re.fullmatch(r"[\w.]+\.\w+", cmd[0]))):
        raise PackagingError(f'{where}: CMD must be the exec form ["module.function"] (or [] for the server stage)')
    return cmd


def _parse_entrypoint(rest: str, where: str, platform: Platform) -> list[str]:
    entrypoint = _exec_form(rest)
    if entrypoint not in (*_LAMBDA_ENTRYPOINTS, SERVER_ENTRYPOINT) or platform.python != "3.11":
        raise PackagingError(
            f"{where}: ENTRYPOINT must be {json.dumps(ENTRYPOINT)} (or, for a streaming function, "
            f"{json.dumps(STREAMING_ENTRYPOINT)}; for the server stage, {json.dumps(SERVER_ENTRYPOINT)}) on a "
            "Python 3.11 base"
        )
    return list(entrypoint)


def _parse_expose(rest: str, where: str) -> list[int]:
    ports = [word.removesuffix("/tcp") for word in rest.split()]
    if not ports or not all(port.isdigit() and 0 < int(port) < 65536 for port in ports):
        raise PackagingError(f"{where}: EXPOSE expects TCP port numbers, got {rest!r}")
    return [int(port) for port in ports]


def _parse_healthcheck(rest: str, where: str) -> list[str]:
    """HEALTHCHECK [options] CMD ["exec", "form"], or NONE; the options (timing) change no file."""
    words = rest.split()
    while words and words[0].startswith(_HEALTHCHECK_OPTIONS):
        words.pop(0)
    if words == ["NONE"]:
        return []
    command = _exec_form(" ".join(words[1:])) if words[:1] == ["CMD"] else None
    if not command:
        raise PackagingError(f'{where}: HEALTHCHECK must be [options] CMD ["exec", "form"] or NONE')
    return command
