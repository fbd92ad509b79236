"""A benchmark's stated targets, and the exit status they give it.

Every bench script with a target ends by judging its numbers here: it prints which targets were missed and exits
1, so that ``make bench`` (and whoever runs it) sees a miss instead of reading it off a table. ``--explore``
(every such script takes it) reports the same and exits 0: for runs that look for numbers, not a verdict.
Errors are not misses: a script that cannot measure still fails with its own message.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

MISSED = 1  # the exit status of a run that missed a target


@dataclass(frozen=True)
class Target:
    """One target, judged: what it is about, whether it was met, and the numbers that say so."""

    name: str
    met: bool
    detail: str

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


def _number(value: float) -> str:
    return f"{value:.4g}"


def at_most(name: str, value: float, limit: float, unit: str = "") -> Target:
    return Target(name, value <= limit, f"{_number(value)}{unit} (target <= {_number(limit)}{unit})")


def at_least(name: str, value: float, limit: float, unit: str = "") -> Target:
    return Target(name, value >= limit, f"{_number(value)}{unit} (target >= {_number(limit)}{unit})")


def holds(name: str, ok: bool, detail: str) -> Target:
    """A check that is true or not (an output in order, a bill paid once)."""
    return Target(name, ok, detail)


def passed(targets: Iterable[Target]) -> dict[str, bool]:
    """The ``passed`` entry a results file records beside the numbers."""
    return {target.name: target.met for target in targets}


def add_explore_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--explore", action="store_true", help="report missed targets but exit 0 (an exploratory run)")


def exit_status(targets: Iterable[Target], *, explore: bool, console: Console, script: str) -> int:
    """Print the verdict of every target; MISSED if one was missed (0 with ``explore``), else 0."""
    judged = list(targets)
    missed = [target for target in judged if not target.met]
    if not judged:
        console.print(f"{script}: no targets judged")
        return 0
    if not missed:
        console.print(f"[green]{script}: all {len(judged)} targets met[/]")
        return 0
    console.print(f"[red]{script}: {len(missed)} of {len(judged)} targets missed:[/]")
    for target in missed:
        console.print(f"[red]  missed {escape(target.line())}[/]", highlight=False)
    if explore:
        console.print(f"[yellow]{script}: --explore, so the exit status is 0 despite the misses[/]")
        return 0
    return MISSED
