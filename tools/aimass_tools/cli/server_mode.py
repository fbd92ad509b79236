"""What each worker process of ``aimass serve`` runs: the app factory, and its HTTP protocol with TCP_NODELAY.

Workers are separate processes sharing one listening socket (uvicorn's supervisor spawns them), so each loads
every model once. They read their settings from the environment the command prepared (``aimass serve``).

The protocol is uvicorn's httptools parser (C) on uvloop: h11, pure Python, costs a small request more CPU than
the stack's own routing does (``bench/server_mode.py``).
"""

from __future__ import annotations

import asyncio
import socket

from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Nagle's algorithm off on an accepted connection.

    A keep-alive client that sends a small request right after reading a small response otherwise waits for the
    delayed ACK (~40 ms on Linux) before its request leaves; answers here take a few milliseconds. Stock uvicorn
    leaves it on.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with TCP_NODELAY set on every accepted connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)


def app() -> ASGIApp:
    """One worker's app: every model of the store, loaded in this process (uvicorn calls it as a factory)."""
    from aimass.http.app import build_app
    from aimass.settings import Settings

    return build_app(Settings())
