"""What a hot route reads of a request and what it answers, whichever adapter carried them; and error answers.

A hot route's handler is a plain function from a ``Call`` to an ``Answer``. The ASGI apps (the local server, a
function's Starlette app) wrap it in an endpoint (``aimass.http.hot_routes.calling``); a function's direct
Lambda path (``aimass.http.lambda_direct``) calls it on the event itself. Nothing here imports the web stack:
the direct path answers a function's first request without importing Starlette, Mangum or asyncio.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimass.errors import AimassError, InvalidInput, PayloadTooLarge, error_document
from aimass.protocol import wire

log = logging.getLogger("aimass.http")

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Call:
    """A request as a hot route's handler reads it: path parameters, headers (names lower-cased), body, and the id
    its answer carries."""

    method: str
    path: str
    path_params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    request_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    media_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200


Handler = Callable[[Call], Answer]


def request_id_of(scope: Mapping[str, Any]) -> str:
    """The id the request context gave an ASGI request (``aimass.http.middleware.request_context``)."""
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def choose_request_id(client: str | None, gateway: str | None) -> str:
    """The client's ``x-request-id`` where it is a sane token; else API Gateway's id (so that logs on both
    sides line up); else a fresh one."""
    if client is not None and _CLIENT_ID.fullmatch(client):
        return client
    if gateway is not None and _CLIENT_ID.fullmatch(gateway):
        return gateway
    return random_id()


def random_id() -> str:
    """``uuid.uuid4().hex`` (random, version 4, RFC 4122 variant) without the UUID object: an HTTP API's own
    ids end in '=' and take this path on every request, where the object cost about as much as the rest."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # the version nibble
    raw[8] = (raw[8] & 0x3F) | 0x80  # the variant bits
    return raw.hex()


def declared_length_refusal(value: str, limit: int) -> AimassError | None:
    """Why a ``Content-Length`` header's value is refused before the body is read, or None."""
    size = wire.decimal(value)
    if size is None:
        return InvalidInput(f"Content-Length must be decimal digits, got '{value}'", param="Content-Length")
    return too_large(size, limit) if size > limit else None


def too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body of {size} bytes is over the limit of {limit} bytes", param="body")


def error_body(error: AimassError, request_id: str, path: str) -> bytes:
    """The error's JSON document in the shape of the route's protocol (V2's own on /v2), as bytes."""
    document = error_document(error, request_id, v2=path.startswith("/v2"))
    return json_bytes(document)


def json_bytes(document: object) -> bytes:
    """Compact UTF-8 JSON, byte for byte what Starlette's JSONResponse renders."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def client_error(method: str, path: str, exc: Exception) -> AimassError:
    """``exc`` as the error a client is told of: itself when it is one (logged where it is the server's); any other
    exception logged, and an internal error: details stay in the log, the client gets the request id to quote."""
    if isinstance(exc, AimassError):
        if exc.status_code >= 500:
            log.error("%s %s failed: %s", method, path, exc.message)
        return exc
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return AimassError("internal error; quote the request id when reporting it")
