"""Pure ASGI middleware: a request id on every response, and the body size limit.

The limit is ``max_body_bytes`` on every path but those ``path_limits`` names (the local server's file
uploads, ``aimass.http.files``, and upload parts, ``aimass.http.uploads``), which read bodies up to their own.
A path there may be a route's template (``/v1/uploads/{upload_id}/parts``): a ``{name}`` is one path segment.

Written against raw ASGI rather than BaseHTTPMiddleware, as every middleware of this package: it sits on
every request's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimass.http import gateway
from aimass.http.answers import REQUEST_ID_HEADER, choose_request_id, declared_length_refusal, too_large
from aimass.http.errors import BodyReadError, render


def _request_id(scope: Scope) -> str:
    client = next((value.decode("latin-1") for key, value in scope.get("headers", ()) if key == b"x-request-id"), None)
    return choose_request_id(client, gateway.request_id(scope))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.path_limits = dict(path_limits or {})
        self._templates = [(compile_path(path)[0], limit) for path, limit in self.path_limits.items() if "{" in path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        limit = self._limit(scope.get("path", ""))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        for key, value in scope.get("headers", ()):
            if key != b"content-length":
                continue
            refusal = declared_length_refusal(value.decode("latin-1"), limit)
            if refusal is not None:
                await render(scope, refusal)(scope, receive, send_with_id)
                return

        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyReadError(too_large(received, limit))
            return message

        await self.app(scope, counted_receive, send_with_id)

    def _limit(self, path: str) -> int:
        if path in self.path_limits:
            return self.path_limits[path]
        return next((limit for template, limit in self._templates if template.match(path)), self.max_body_bytes)
