"""The command line every model build shares: ``python models/<domain>/<model>/build.py [--store DIR] [--force]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from models.buildkit.errors import BuildError
from models.buildkit.steps import console

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STORE = REPO / "model_store"


class Build(Protocol):
    """A model's ``build(store, *, force=False)``: returns the version directory it built or found."""

    def __call__(self, store: Path, *, force: bool = False) -> Path: ...


def run_cli(build: Build, doc: str | None, argv: Sequence[str] | None = None) -> int:
    """Parse the shared options, run ``build``; the exit status is 1 if a check failed. ``doc``: the script's."""
    # The script's docstring opens with one line saying what it builds: that line is the --help summary.
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model store root (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the store is up to date")
    args = parser.parse_args(argv)
    try:
        build(args.store, force=args.force)
    except BuildError as exc:
        console.print(f"[red]build failed:[/red] {exc}")
        return 1
    return 0
