"""The middleware that hands the app, per request, what its worker holds (``aimass.http.offload.HELD``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from aimass.http.offload import ALONE_MAX_BODY, HELD
from aimass.protocol import wire

# Where a request's scope carries the set of requests its worker holds (uvicorn's running request tasks).
HELD_EXTENSION = "aimass.held"


class HeldRequests:
    """A request alone in its worker, with a small body, runs inline (``threaded_unless_alone``); any other, on a
    worker thread. The protocol (``aimass_server.protocol``) puts the live set in the scope's extensions."""

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
            size = wire.decimal(value)  # the header as the request context reads it
            return ALONE_MAX_BODY + 1 if size is None else size
    return 0 if scope.get("method") in ("GET", "HEAD") else ALONE_MAX_BODY + 1
