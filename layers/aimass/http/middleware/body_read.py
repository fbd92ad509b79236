"""The request body as the local server reads it from a client: a deadline, and a client that leaves mid-body.

(On Lambda the body comes whole with the event, and this middleware is not installed.) The local server reads
a body at the client's pace: without a deadline, a client that stops sending holds its request (and a
worker) for as long as it likes. With one (``AIMASS_BODY_TIMEOUT_S``) the app stops waiting and the client,
if still there, gets a 408.

A client that closes the connection before its body is complete has simply left: one INFO line says so,
and the usage record says 499 (nginx's "client closed request"). It is not a server error, so there is no
traceback; and no one is there to read an answer.

Whatever the app made of a body that never came (Starlette raises ClientDisconnect, FastAPI turns that into
a 400) stays in here: this middleware answers instead. It sits inside the metering middleware, so the
usage record carries the status it answered.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimass.errors import AimassError, ClientClosedRequest, RequestTimeout
from aimass.http.answers import request_id_of
from aimass.http.errors import render
from aimass.protocol import wire

log = logging.getLogger("aimass.http")
_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyReadMiddleware:
    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(receive, self.timeout_s, _declared_length(scope))
        started = False

        async def send_unless_failed(message: Message) -> None:
            nonlocal started
            if not started and body.failure is not None:
                return  # the app's answer to a body that never came
            started = True
            await send(message)

        try:
            await self.app(scope, body.receive, send_unless_failed)
        except ClientDisconnect:
            if body.failure is None:
                raise
        if body.failure is None or started:
            return
        log.info(
            "%s: %s %s (request %s, %d of %s body bytes received)",
            body.failure.message,
            scope.get("method", ""),
            scope.get("path", ""),
            request_id_of(scope),
            body.received,
            body.expected if body.expected is not None else "unknown",
        )
        await render(scope, body.failure)(scope, receive, send)


class _Body:
    """The app's ``receive``: counts the body, keeps the deadline, and notes why a body did not come."""

    def __init__(self, receive: Receive, timeout_s: float, expected: int | None) -> None:
        self._receive = receive
        self.timeout_s = timeout_s
        self.expected = expected
        self.received = 0
        self.complete = False
        self.failure: AimassError | None = None
        self._deadline: float | None = None

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()  # after the body: the disconnect a streaming response listens for
        if self.failure is not None:
            return _DISCONNECT
        if self._deadline is None:  # from the app's first read: for the whole body, not for each chunk
            self._deadline = anyio.current_time() + self.timeout_s
        with anyio.move_on_after(self._deadline - anyio.current_time()):
            return self._count(await self._receive())
        self.failure = RequestTimeout(
            f"the request body did not arrive within {self.timeout_s:g} s (AIMASS_BODY_TIMEOUT_S); "
            "send it whole without pauses, or in a smaller request",
            param="body",
            headers={"connection": "close"},  # the rest of the body may still be on its way
        )
        return _DISCONNECT

    def _count(self, message: Message) -> Message:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.failure = ClientClosedRequest("the client left before sending the whole request body", param="body")
        return message


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            return wire.decimal(value)
    return None
