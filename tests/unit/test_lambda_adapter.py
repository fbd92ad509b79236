"""The function entrypoint's adapter (aimass.http.lambda_adapter) against Mangum's own, on every recorded event.

An app that records the ASGI scope and request body it is given, and answers with headers, cookies and a
body that depend on them, stands in for the real app: each recorded API Gateway event must reach it alike
through both adapters, and come back as the same Lambda response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mangum import Mangum
from mangum.types import ASGI, Message, Receive, Scope, Send
from starlette.responses import StreamingResponse

from aimass.http.lambda_adapter import lambda_handler
from aimass.lambda_context import LocalLambdaContext
from tests.conftest import EVENTS, load_event

EVENT_NAMES = sorted(path.stem for path in EVENTS.glob("apigw_*.json") if path.stem != "apigw_authorizer_request")


class Recording:
    """An ASGI app that keeps what it was sent and answers with it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message: Message = await receive()
        kept = {key: value for key, value in scope.items() if key != "aws.context"}
        self.seen.append({"scope": kept, "body": message["body"]})
        headers = [[b"content-type", b"application/json"], [b"set-cookie", b"a=1"], [b"set-cookie", b"b=2"]]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        document = {"path": scope["path"], "method": scope["method"], "bytes": len(message["body"])}
        await send({"type": "http.response.body", "body": json.dumps(document).encode()})


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_the_adapter_gives_the_app_and_the_client_what_mangum_gives(name: str) -> None:
    # GIVEN one app behind Mangum and behind the entrypoint's adapter
    app = Recording()
    plain, lean = Mangum(app, lifespan="off"), lambda_handler(app)

    # WHEN the recorded event goes through each
    expected = plain(load_event(name), LocalLambdaContext())
    got = lean(load_event(name), LocalLambdaContext())

    # THEN the app saw the same request and the client gets the same answer
    assert app.seen[0] == app.seen[1]
    assert got == expected


def test_an_alb_event_stays_mangums() -> None:
    # GIVEN an event from an Application Load Balancer, which also carries a requestContext
    alb: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": "arn"}},
        "httpMethod": "GET",
        "path": "/",
        "headers": {},
    }
    alb |= {"queryStringParameters": {}, "body": "", "isBase64Encoded": False, "version": "1.0", "resource": "/"}

    # WHEN both adapters answer it
    app = Recording()
    expected = Mangum(app, lifespan="off")(alb, LocalLambdaContext())
    got = lambda_handler(app)(alb, LocalLambdaContext())

    # THEN it is answered as an ALB event by both
    assert got == expected


async def _streamed(scope: Scope, receive: Receive, send: Send) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            yield f"data: {index}\n\n".encode()

    await StreamingResponse(chunks(), media_type="text/event-stream")(scope, receive, send)


async def _fails_before_answering(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("broken")


async def _fails_while_answering(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    raise RuntimeError("broken")


async def _sends_out_of_order(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.body", "body": b"first"})


@pytest.mark.parametrize("app", [_streamed, _fails_before_answering, _fails_while_answering, _sends_out_of_order])
def test_streams_and_failures_are_answered_as_mangum_answers_them(app: ASGI) -> None:
    # GIVEN an app that streams its answer or fails in one of the ways Mangum turns into a 500
    sent = load_event("apigw_http_v2_text_infer")

    # WHEN both adapters run it
    expected = Mangum(app, lifespan="off")(sent, LocalLambdaContext())
    got = lambda_handler(app)(sent, LocalLambdaContext())

    # THEN the answers are the same
    assert got == expected
