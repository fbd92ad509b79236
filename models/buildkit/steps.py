"""How a build reports: one console, and named steps under one progress bar with each step's time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Shared by the kit and the model's own modules: messages printed during a step must go through the console
# that draws the progress bar, or they tear it.
console = Console()


@dataclass
class Steps:
    """Runs the named build steps under one progress bar and prints each one's time."""

    progress: Progress
    total: int
    task: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task = self.progress.add_task("build", total=self.total)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress.update(self.task, description=name)
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.timings[name] = elapsed
        self.progress.console.print(f"[green]✓[/green] {name} ({elapsed:.1f} s)")
        self.progress.advance(self.task)


@contextlib.contextmanager
def build_steps(total: int) -> Iterator[Steps]:
    """A progress bar for ``total`` steps, shown while the block runs: ``with step("name"): ...`` per step."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield Steps(progress, total=total)
