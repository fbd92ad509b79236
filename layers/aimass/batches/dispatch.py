"""Running one batch line through the same app the synchronous API serves, in this process.

A line is answered exactly as the same request sent over HTTP: the app's routes, validation, limits and
error renderer, called as ASGI with no socket. What a line cost is read from the meter the protocol layer
notes it on (``aimass.metering.meter``), as the metering middleware reads it for a request.

Routes that read a multipart form (``/v1/audio/transcriptions``) get one built from the line's JSON body:
its ``file`` field carries the file base64-encoded, every other field is a form field.

Lines to a generative model run side by side (``SIDE_BY_SIDE``): its engine advances every running generation
in one shared step per token, so lines answered together share their decode steps. Every other route's lines
run one after another, each as fast as the model's threads make it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

from aimass.errors import InvalidInput, error_document
from aimass.metering.meter import Metered, open_meter
from aimass.serving.tenancy import current_tenant, tenant_scope

# Routes whose lines run side by side, and how many at once: generations share their model's decode steps
# (bench/llm.py: 8 streams write 2.6 times as many tokens a second as one).
SIDE_BY_SIDE = re.compile(r"^/v1/(chat/)?completions$|^/v2/models/[^/]+(/versions/[^/]+)?/generate$")
SIDE_BY_SIDE_LINES = 16
# The routes whose body is a multipart form, and the field of each that holds the file.
FORM_ROUTES = {"/v1/audio/transcriptions": "file"}
JSON = b"application/json"
# A form field's name; an array field (OpenAI's timestamp_granularities[]) ends in [], its values comma-separated.
_FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,64}(\[\])?$")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # a JSON document
    metered: Metered | None


# Answers a run of requests to one route at once (aimass.batches.coalesce): (request id, body) each, an
# answer each, or None for a request it leaves to the app.
Coalescer = Callable[[Sequence[tuple[str, dict[str, Any]]]], list["Answer | None"]]


@dataclass(frozen=True)
class LineRoutes:
    """What batch lines run on: the API's app (without its metering), and the routes answered in runs."""

    app: ASGIApp
    coalescers: Mapping[str, Coalescer] = field(default_factory=dict)


@dataclass(frozen=True)
class LineRequestOf:
    path: str
    body: dict[str, Any]
    request_id: str


class LineClient:
    """Posts bodies to an ASGI app in this process; one per thread (it owns an event loop).

    ``coalescers`` answer runs of requests to their routes together (one engine batch); what they leave,
    and every other route's requests, go through the app one by one.
    """

    def __init__(self, app: ASGIApp, coalescers: Mapping[str, Coalescer] | None = None) -> None:
        self.app = app
        self.coalescers = dict(coalescers or {})
        self.loop = asyncio.new_event_loop()

    def post_all(self, requests: Sequence[LineRequestOf]) -> list[Answer]:
        """Each request's answer, in order."""
        answers: list[Answer | None] = [None] * len(requests)
        for path, coalescer in self.coalescers.items():
            picked = [n for n, request in enumerate(requests) if request.path == path]
            if picked:
                found = coalescer([(requests[n].request_id, requests[n].body) for n in picked])
                for n, answer in zip(picked, found, strict=True):
                    answers[n] = answer
        together = [n for n, r in enumerate(requests) if answers[n] is None and SIDE_BY_SIDE.match(r.path)]
        if len(together) > 1:
            tenant = current_tenant()  # the pool's threads do not inherit this thread's context

            def side_by_side(n: int) -> Answer:
                with tenant_scope(tenant):
                    return self._post_json(requests[n])

            with ThreadPoolExecutor(min(len(together), SIDE_BY_SIDE_LINES), "aimass-lines") as pool:
                for n, answer in zip(together, pool.map(side_by_side, together), strict=True):
                    answers[n] = answer
        return [
            answer if answer is not None else self.post(request.path, request.body, request.request_id)
            for answer, request in zip(answers, requests, strict=True)
        ]

    def _post_json(self, request: LineRequestOf) -> Answer:
        """A JSON line on the calling thread's own event loop (this client's loop belongs to its thread)."""
        content = json.dumps(request.body).encode()
        return asyncio.run(self._call(request.path, content, JSON, request.request_id))

    def post(self, path: str, body: dict[str, Any], request_id: str) -> Answer:
        field = FORM_ROUTES.get(path)
        if field is None:
            content, media = json.dumps(body).encode(), JSON
        else:
            built = _form(body, field, request_id)
            if isinstance(built, Answer):
                return built
            content, media = built
        return self.loop.run_until_complete(self._call(path, content, media, request_id))

    def close(self) -> None:
        self.loop.close()

    async def _call(self, path: str, content: bytes, media: bytes, request_id: str) -> Answer:
        meter = open_meter()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(content)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
            "client": None,
            "server": None,
        }
        sent = False
        status = 500
        parts: list[bytes] = []
        media_out = b""

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, media_out
            if message["type"] == "http.response.start":
                status = int(message["status"])
                media_out = dict(message.get("headers", [])).get(b"content-type", b"")
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        body = b"".join(parts)
        if not media_out.startswith(JSON):  # a transcription as text, say: the body as a JSON string
            body = json.dumps(body.decode("utf-8", "replace")).encode()
        return Answer(status, body, meter.metered)


def _form(body: dict[str, Any], field: str, request_id: str) -> tuple[bytes, bytes] | Answer:
    """The multipart form of a JSON body whose ``field`` is a base64 file; a 400 answer when it cannot be."""
    encoded = body.get(field)
    try:
        data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        return _refused(f"body.{field} must be the file's content, base64-encoded", f"body.{field}", request_id)
    boundary = secrets.token_hex(16).encode()
    parts = []
    for name, value in body.items():
        if name == field:
            continue
        if not _FIELD.fullmatch(name) or not isinstance(value, (str, int, float, bool)):
            return _refused(f"body.{name} must be a form field: a string or a number", f"body.{name}", request_id)
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        parts.append(
            b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
            % (boundary, name.encode(), text.encode())
        )
    head = b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n' % (
        boundary,
        field.encode(),
        field.encode(),
    )
    parts.append(head + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    parts.append(b"--%s--\r\n" % boundary)
    return b"".join(parts), b"multipart/form-data; boundary=" + boundary


def _refused(message: str, param: str, request_id: str) -> Answer:
    # The document the route's own refusal would carry (aimass.errors.error_document).
    error = InvalidInput(message, param=param)
    return Answer(error.status_code, json.dumps(error_document(error, request_id)).encode(), None)
