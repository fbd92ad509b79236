"""What each worker process of ``aimass serve`` runs: the app factory, and its HTTP protocol with TCP_NODELAY.

Workers are separate processes sharing one listening socket (uvicorn's supervisor spawns them), so each loads
every model once. They read their settings from the environment the command prepared (``aimass serve``).

The protocol is uvicorn's httptools parser (C) on uvloop: h11, pure Python, costs a small request more CPU than
the stack's own routing does (``bench/server_mode.py``).
"""

from __future__ import annotations

import asyncio
import socket

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aimass.http.offload import ALONE_MAX_BODY, HELD

# Where a request's scope carries the set of requests its worker holds (uvicorn's running request tasks).
HELD_EXTENSION = "aimass.held"


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
    """uvicorn's httptools protocol with TCP_NODELAY set on every accepted connection, telling each request what
    its worker holds: the live set of request tasks, which a request is counted in from the moment its headers
    are read (before its own task runs)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # ASGI extensions are dicts: the live set under "tasks".
        self.scope["extensions"] = {HELD_EXTENSION: {"tasks": self.tasks}}


class HeldRequests:
    """Hands the app, per request, what its worker holds (``aimass.http.offload.HELD``): a request alone in its
    worker, with a small body, runs inline (``threaded_unless_alone``); any other, on a worker thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extension = scope.get("extensions", {}).get(HELD_EXTENSION) if scope["type"] == "http" else None
        held = extension["tasks"] if extension else None
        if held is None or _body_size(scope) > ALONE_MAX_BODY:
            await self.app(scope, receive, send)
            return
        token = HELD.set(held)
        try:
            await self.app(scope, receive, send)
        finally:
            HELD.reset(token)


def _body_size(scope: Scope) -> int:
    """The declared body size; a chunked body (no Content-Length) counts as large."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else ALONE_MAX_BODY + 1
    return 0 if scope.get("method") in ("GET", "HEAD") else ALONE_MAX_BODY + 1


def app() -> ASGIApp:
    """One worker's app: every model of the store, loaded in this process (uvicorn calls it as a factory)."""
    from aimass.http.app import build_app
    from aimass.settings import Settings

    return HeldRequests(build_app(Settings()))
