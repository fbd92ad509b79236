"""Each worker's HTTP protocol: uvicorn's httptools parser (C) on uvloop, with TCP_NODELAY.

h11, pure Python, costs a small request more CPU than the stack's own routing does (``bench/server_mode.py``).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aimass_server.held import HELD_EXTENSION


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
