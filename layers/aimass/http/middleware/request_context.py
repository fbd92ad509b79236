"""Pure ASGI middleware: a request id on every response, and the body size limit.

The limit is ``max_body_bytes`` on every path but those ``path_limits`` names (the local server's file
uploads, ``aimass.http.files``, and upload parts, ``aimass.http.uploads``), which read bodies up to their own.
A path there may be a route's template (``/v1/uploads/{upload_id}/parts``): a ``{name}`` is one path segment.

Written against raw ASGI rather than BaseHTTPMiddleware, as every middleware of this package: it sits on
every request's hot path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimass.errors import AimassError, InvalidInput, PayloadTooLarge
from aimass.http import gateway
from aimass.http.errors import REQUEST_ID_HEADER, BodyReadError, render
from aimass.protocol import wire

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(candidate):
                return candidate
    # Behind API Gateway, reuse its id so logs on both sides line up.
    gateway_id = gateway.request_id(scope)
    if gateway_id is not None and _CLIENT_ID.fullmatch(gateway_id):
        return gateway_id
    return _random_id()


def _random_id() -> str:
    """``uuid.uuid4().hex`` (random, version 4, RFC 4122 variant) without the UUID object: an HTTP API's own
    ids end in '=' and take this path on every request, where the object cost about as much as the rest."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # the version nibble
    raw[8] = (raw[8] & 0x3F) | 0x80  # the variant bits
    return raw.hex()


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
            size = wire.decimal(value)
            refusal: AimassError | None = None
            if size is None:
                shown = value.decode("latin-1")
                refusal = InvalidInput(f"Content-Length must be decimal digits, got '{shown}'", param="Content-Length")
            elif size > limit:
                refusal = _too_large(size, limit)
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
                    raise BodyReadError(_too_large(received, limit))
            return message

        await self.app(scope, counted_receive, send_with_id)

    def _limit(self, path: str) -> int:
        if path in self.path_limits:
            return self.path_limits[path]
        return next((limit for template, limit in self._templates if template.match(path)), self.max_body_bytes)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body of {size} bytes is over the limit of {limit} bytes", param="body")
