"""A Dockerfile's stages: each FROM starts one (``AS <name>`` names it), and a stage FROM an earlier one's name
builds on everything that one built. Which stage is assembled is the target, as ``docker build --target`` says.

A function image has two: ``function``, the Lambda image (what the CDK app deploys, by naming it), and
``server``, built on it (what ``docker build`` builds when no target is named: the last stage).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aimass_tools.packaging.errors import PackagingError

# The Lambda stage's name in every function's Dockerfile; the assembler's default target.
LAMBDA_STAGE = "function"


@dataclass
class Stage:
    name: str | None
    base: str  # an image, or an earlier stage's name
    parent: Stage | None  # that earlier stage
    where: str  # the FROM line
    instructions: list[tuple[str, str, str]] = field(default_factory=list)  # (where, INSTRUCTION, arguments)


def read_stages(dockerfile: Path) -> list[Stage]:
    stages: list[Stage] = []
    for number, instruction, rest in _instructions(dockerfile.read_text()):
        where = f"{dockerfile}:{number}"
        if instruction == "FROM":
            stages.append(_stage(rest, where, {stage.name: stage for stage in stages if stage.name}))
        elif not stages:
            raise PackagingError(f"{where}: {instruction} before FROM")
        else:
            stages[-1].instructions.append((where, instruction, rest))
    if not stages:
        raise PackagingError(f"{dockerfile}: needs a FROM and a CMD")
    return stages


def chain(stages: list[Stage], target: str | None, dockerfile: Path) -> list[Stage]:
    """The stages that build ``target``, the first one (FROM an image) first.

    No target: the Lambda stage, or a Dockerfile's only stage. Docker's own default, the last stage, is the
    server stage of a function image, which the payload's every other user (the tests of the Lambda path, the
    Makefile's ``payload``, the bench) does not mean.
    """
    named = {stage.name: stage for stage in stages if stage.name}
    if target is None and LAMBDA_STAGE not in named and len(stages) == 1:
        stage: Stage | None = stages[0]
    else:
        wanted = target or LAMBDA_STAGE
        if wanted not in named:
            raise PackagingError(f"{dockerfile}: no stage named {wanted!r} (stages: {sorted(named) or 'unnamed'})")
        stage = named[wanted]
    built: list[Stage] = []
    while stage is not None:
        built.insert(0, stage)
        stage = stage.parent
    return built


def _stage(rest: str, where: str, earlier: dict[str | None, Stage]) -> Stage:
    words = rest.split()
    if len(words) == 3 and words[1].upper() == "AS":
        base, name = words[0], words[2]
    elif len(words) == 1 and not words[0].startswith("--"):
        base, name = words[0], None
    else:
        raise PackagingError(f"{where}: FROM {rest!r} is not replayed (only FROM <image or stage> [AS <name>])")
    if name is not None and name in earlier:
        raise PackagingError(f"{where}: a second stage named {name!r}")
    return Stage(name=name, base=base, parent=earlier.get(base), where=where)


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
