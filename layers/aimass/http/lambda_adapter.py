"""A function's Lambda entrypoint: Mangum's event handling, with a leaner request cycle.

Every warm request pays for what the adapter does around the app, and pays more than its instruction count
says: the model's run before it has pushed the adapter's code and data out of the CPU's caches. So here:

* Mangum's API Gateway handlers, with the ASGI scope built once per request (Mangum's rebuilds it, every
  header lowered and encoded, each time it is read: twice per request);
* the request's body handed to the app from a plain list rather than through an ``asyncio.Queue``, and the
  answer collected in a list: the same messages, in Mangum's order and with its states, its errors and its
  500s (``mangum.protocols.http.HTTPCycle``).

tests/unit/test_lambda_adapter.py replays every recorded event through this and through Mangum.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from functools import cached_property
from typing import Any, cast

from mangum import Mangum
from mangum.exceptions import UnexpectedMessage
from mangum.handlers import ALB, APIGateway, HTTPGateway
from mangum.types import (
    ASGI,
    LambdaConfig,
    LambdaContext,
    LambdaEvent,
    LambdaHandler,
    Message,
    Response,
    Scope,
)

_LOG = logging.getLogger("mangum.http")  # Mangum's own logger: its lines, where they always were


class _HTTPAPI(HTTPGateway):
    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        # Mangum asks ALB first: what it takes stays its.
        return not ALB.infer(event, context, config) and super().infer(event, context, config)

    @cached_property
    def scope(self) -> Scope:  # a property in Mangum's class, read once here
        return super().scope


class _RESTAPI(APIGateway):
    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        return not ALB.infer(event, context, config) and super().infer(event, context, config)

    @cached_property
    def scope(self) -> Scope:
        return super().scope


# Tried before Mangum's own, in Mangum's order: every event goes to the same kind of handler as under Mangum.
HANDLERS: list[type[LambdaHandler]] = [cast("type[LambdaHandler]", _HTTPAPI), cast("type[LambdaHandler]", _RESTAPI)]


class _State(enum.Enum):
    REQUEST = enum.auto()
    RESPONSE = enum.auto()
    COMPLETE = enum.auto()


class _Cycle:
    """One request and its buffered answer, as Mangum's HTTPCycle runs them."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.state = _State.REQUEST
        self.request: Message | None = {"type": "http.request", "body": body, "more_body": False}
        self.chunks: list[bytes] = []
        self.status = 500
        self.headers: list[list[bytes]] = []
        self.body: bytes | None = None  # the whole answer, once the app has written it
        self.disconnected: asyncio.Future[None] | None = None  # made only for an app that waits for it

    async def run(self, app: ASGI) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException:
            _LOG.exception("An error occurred running the application.")
            if self.state is _State.REQUEST:
                await self.send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [[b"content-type", b"text/plain; charset=utf-8"]],
                    }
                )
                await self.send({"type": "http.response.body", "body": b"Internal Server Error", "more_body": False})
            elif self.state is not _State.COMPLETE:
                self.status = 500
                self.body = b"Internal Server Error"
                self.headers = [[b"content-type", b"text/plain; charset=utf-8"]]

    async def receive(self) -> Message:
        if self.request is not None:
            message, self.request = self.request, None
            return message
        # Then, as from Mangum's queue, a disconnect once the answer is complete (an app streaming its answer
        # listens for it while it writes).
        if self.state is not _State.COMPLETE:
            if self.disconnected is None:
                self.disconnected = asyncio.get_running_loop().create_future()
            await self.disconnected
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.state is _State.REQUEST and message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
            self.state = _State.RESPONSE
        elif self.state is _State.RESPONSE and message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.body = b"".join(self.chunks)
                self.state = _State.COMPLETE
                if self.disconnected is not None and not self.disconnected.done():
                    self.disconnected.set_result(None)
                _LOG.info("%s %s %s", self.scope["method"], self.scope["path"], self.status)
        else:
            raise UnexpectedMessage(f"Unexpected {message['type']}")

    def response(self) -> Response:
        if self.body is None:  # Mangum fails the invocation too (its cycle has no body to give)
            raise UnexpectedMessage("the application returned without completing its response")
        return {"status": self.status, "headers": self.headers, "body": self.body}


class LambdaAdapter(Mangum):
    """Mangum with lifespan off (models load at import, not per invocation) and the cycle above."""

    def __init__(self, app: ASGI) -> None:
        super().__init__(app, lifespan="off", custom_handlers=HANDLERS)

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        handler = self.infer(event, context)
        cycle = _Cycle(handler.scope, handler.body)
        asyncio.get_event_loop().run_until_complete(cycle.run(self.app))
        return handler(cycle.response())


def lambda_handler(app: Any) -> LambdaAdapter:
    """The Lambda handler of ``app``, an ASGI app (Starlette's type and Mangum's differ in name only)."""
    return LambdaAdapter(cast("ASGI", app))
