"""Where a container's server listens and how many workers it runs: read from the environment, checked once.

Standard library only: the image's health check (``aimass_server.health``) reads its port here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The port a container serves on unless PORT says otherwise (the Dockerfiles' EXPOSE).
DEFAULT_PORT = 8080
# Every interface: a container's port is published from outside it (docker run -p, an ECS port mapping).
DEFAULT_HOST = "0.0.0.0"


class OptionError(ValueError):
    """An environment variable the server reads holds a value it cannot use; the message names both."""


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    workers: int | None  # None: one per available core (aimass_server.sizing)


def server_options(environ: Mapping[str, str]) -> ServerOptions:
    """``AIMASS_HOST``, ``PORT`` and ``AIMASS_WORKERS``, with their defaults."""
    workers = environ.get("AIMASS_WORKERS", "").strip()
    return ServerOptions(
        host=environ.get("AIMASS_HOST", "").strip() or DEFAULT_HOST,
        port=port(environ),
        workers=_whole("AIMASS_WORKERS", workers, 1, 1024) if workers else None,
    )


def port(environ: Mapping[str, str]) -> int:
    raw = environ.get("PORT", "").strip()
    return _whole("PORT", raw, 1, 65535) if raw else DEFAULT_PORT


def _whole(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise OptionError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)
