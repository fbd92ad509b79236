"""What the commands share: the consoles, the store options, error reporting, progress bars, the checkout."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.text import Text

from aimass.errors import AimassError
from aimass.settings import Settings
from aimass.store.base import ProgressCallback, WritableModelStore

console = Console()
# Errors and progress bars go to stderr, so that stdout carries only the results.
err_console = Console(stderr=True)

StoreOption = Annotated[
    Path | None, typer.Option("--store", help="model store directory [default: AIMASS_MODEL_STORE or ./model_store]")
]
BucketOption = Annotated[
    str | None,
    typer.Option("--bucket", help="S3 bucket of the model store [default: AIMASS_MODEL_BUCKET; unset: the directory]"),
]
PrefixOption = Annotated[
    str | None, typer.Option("--prefix", help="key prefix inside the bucket [default: AIMASS_MODEL_PREFIX or none]")
]

# tools/aimass_tools/cli/common.py -> the checkout root (where functions/ and models/ live).
CHECKOUT = Path(__file__).resolve().parents[3]


def settings_for(store: Path | None, bucket: str | None = None, prefix: str | None = None) -> Settings:
    """The settings from the environment, with the options given on the command line on top."""
    given = {"model_store": store, "model_bucket": bucket, "model_prefix": prefix}
    overrides: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    return Settings(**overrides)


def open_cli_store(store: Path | None, bucket: str | None = None, prefix: str | None = None) -> WritableModelStore:
    """The store the options name: S3 when a bucket is given or set, else the directory."""
    from aimass.store.factory import open_store
    from aimass.store.sealing.unseal import unsealer_from_settings

    settings = settings_for(store, bucket, prefix)
    # The unsealer lets the checks of `verify`, `promote`, `canary` and `rollback` open encrypted versions as the
    # functions would (in memory).
    return open_store(settings, unsealer=unsealer_from_settings(settings), seeded=False)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """An expected failure (an AimassError) ends the command with its one-line reason in red and exit code 1."""
    try:
        yield
    except AimassError as exc:
        err_console.print(Text(f"error: {exc.message}", style="red"), soft_wrap=True)
        raise typer.Exit(1) from None


@contextlib.contextmanager
def transfer_progress(verb: str) -> Iterator[ProgressCallback]:
    """A progress bar per file while bytes move (on a terminal only); hand the callback to the store."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_interactive) as bars:
        tasks: dict[str, TaskID] = {}

        def advance(path: str, amount: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bars.add_task(f"{verb} {path}", total=total)
            bars.advance(tasks[path], amount)

        yield advance
