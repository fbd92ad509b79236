"""What the commands that call a deployment share (``files``, ``jobs``): its URL, the API key, the client.

The key is ``--key``, else AIMASS_API_KEY, else the development key ``aimass serve`` keeps in the state folder
(``<AIMASS_STATE_DIR>/dev-key``), so that a local server needs no setup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

import typer

from aimass.settings import Settings
from aimass_tools.api_client import AimassClient
from aimass_tools.cli.common import reported_errors

DEFAULT_URL = "http://127.0.0.1:8000"

UrlOption = Annotated[
    str, typer.Option("--url", envvar="AIMASS_URL", help="the AI Mass base URL (an API Gateway stage URL, or local)")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="AIMASS_API_KEY",
        help="API key (else AIMASS_API_KEY, else the development key `aimass serve` keeps in AIMASS_STATE_DIR)",
        show_default=False,
    ),
]


def api_key(given: str | None) -> str | None:
    if given:
        return given
    from aimass.metering.dev_key import FILE

    kept = Settings().state_dir / FILE
    try:
        return kept.read_text().strip() or None
    except OSError:
        return None  # no key: a server with metering off needs none, and one with it on says what is missing


@contextlib.contextmanager
def client(url: str, key: str | None) -> Iterator[AimassClient]:
    """A client of ``url``; an ApiError inside ends the command with its message and exit code 1."""
    with reported_errors(), AimassClient(url, api_key(key)) as opened:
        yield opened


def when(stamp: object) -> str:
    """A Unix time as UTC, for tables; blank when unset."""
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(count: object) -> str:
    if not isinstance(count, int):
        return ""
    amount = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(count)
