"""The streaming Lambda runtime loop against a stand-in of Lambda's Runtime API, over real HTTP.

GIVEN an app whose answer is written over time, WHEN API Gateway invokes the function with a REST event, THEN
the answer reaches the Runtime API as it is written: a prelude of status and headers, eight NUL bytes, then each
piece of the body in its own chunk, the first long before the last. A peer's listing call is answered buffered,
as Mangum answers it; a failure mid-answer is reported in the documented trailers; a failure before the answer
is a 500 with the error shape; an event no adapter reads is reported as the invocation's error; the real app
answers through the loop as through Mangum.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from aimass.http import gateway
from aimass.http.app import build_app
from aimass.http.lambda_streaming import StreamingRuntime
from aimass.settings import Settings
from tests.lambda_runtime_api import RuntimeApi, runtime_api
from tests.tiny_models import TINY_TEXT, reference_embedding

PAUSE_S = 0.4


def rest_event(method: str, path: str, body: str | None = None, request_id: str = "req-1") -> dict[str, Any]:
    """A REST proxy event, as API Gateway sends it (the listing event, without the peer marker)."""
    event = gateway.listing_event(method, path, request_id)
    event["requestContext"].pop(gateway.PEER_MARKER)
    event["body"] = body
    event["isBase64Encoded"] = False
    return event


async def slowly() -> AsyncIterator[bytes]:
    yield b"data: first\n\n"
    await asyncio.sleep(PAUSE_S)
    yield b"data: second\n\n"


async def stream(request: Request) -> StreamingResponse:
    return StreamingResponse(slowly(), media_type="text/event-stream", headers={"x-kind": "sse"})


async def broken_midway(request: Request) -> StreamingResponse:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        raise RuntimeError("the generation failed")

    return StreamingResponse(pieces(), media_type="text/event-stream")


async def listing(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": []})


APP = Starlette(
    routes=[
        Route("/stream", stream),
        Route("/broken-midway", broken_midway),
        Route("/v1/models", listing),
    ]
)


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    with runtime_api() as stand_in:
        yield stand_in


def serve(api: RuntimeApi, app: Any, invocations: int) -> threading.Thread:
    runtime = StreamingRuntime(app, api.address, timeout_s=30)

    def loop() -> None:
        for _ in range(invocations):
            runtime.handle_next()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_an_answer_is_streamed_as_it_is_written(api: RuntimeApi) -> None:
    serve(api, APP, 1)
    api.invoke("req-1", rest_event("GET", "/stream"))
    answer = api.answer()
    assert answer.request_id == "req-1" and answer.streamed
    assert answer.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, body = answer.prelude()
    assert prelude["statusCode"] == 200 and prelude["headers"]["x-kind"] == "sse"
    assert prelude["headers"]["content-type"].startswith("text/event-stream")
    assert body == b"data: first\n\ndata: second\n\n"
    # Each piece came in its own chunk, when it was written: the first long before the second.
    arrivals = {data: at for at, data in answer.chunks}
    assert arrivals[b"data: second\n\n"] - arrivals[b"data: first\n\n"] >= PAUSE_S * 0.8
    assert answer.trailers == {}


def test_a_peers_listing_call_is_answered_buffered(api: RuntimeApi) -> None:
    serve(api, APP, 1)
    event = gateway.listing_event("GET", "/v1/models", "req-2")
    api.invoke("req-2", event)
    answer = api.answer()
    assert not answer.streamed
    response = json.loads(answer.body)
    assert response["statusCode"] == 200 and json.loads(response["body"]) == {"object": "list", "data": []}


def test_a_failure_midway_is_reported_in_the_trailers(api: RuntimeApi) -> None:
    serve(api, APP, 1)
    api.invoke("req-3", rest_event("GET", "/broken-midway"))
    answer = api.answer()
    prelude, body = answer.prelude()
    assert prelude["statusCode"] == 200 and body == b"data: first\n\n"
    assert answer.trailers["lambda-runtime-function-error-type"] == "RuntimeError"
    detail = json.loads(base64.b64decode(answer.trailers["lambda-runtime-function-error-body"]))
    assert detail["errorMessage"] == "the generation failed"


def test_a_failure_before_the_answer_is_a_500_in_the_error_shape(api: RuntimeApi) -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:  # no framework to answer for it
        raise RuntimeError("nothing could be answered")

    serve(api, raw, 1)
    api.invoke("req-4", rest_event("GET", "/anything"))
    answer = api.answer()
    prelude, body = answer.prelude()
    assert prelude["statusCode"] == 500
    assert json.loads(body)["error"]["type"] == "server_error"
    assert answer.trailers["lambda-runtime-function-error-type"] == "RuntimeError"


def test_an_event_no_adapter_reads_is_the_invocations_error(api: RuntimeApi) -> None:
    serve(api, APP, 2)
    api.invoke("req-5", {"not": "an API Gateway event"})
    answer = api.answer()
    assert answer.error is not None and answer.error["errorType"]
    api.invoke("req-6", rest_event("GET", "/stream"))  # the runtime goes on with the next event
    assert api.answer().prelude()[0]["statusCode"] == 200


def test_the_app_answers_through_the_loop(api: RuntimeApi, tiny_store: Path) -> None:
    app = build_app(Settings(model_store=tiny_store, metering="off"), in_lambda=True)
    serve(api, app, 1)
    body = json.dumps({"model": TINY_TEXT, "input": "a cat", "encoding_format": "float"})
    api.invoke("invocation-7", rest_event("POST", "/v1/embeddings", body, request_id="req-7"))
    prelude, answer = api.answer().prelude()
    assert prelude["statusCode"] == 200 and prelude["headers"]["x-request-id"] == "req-7"
    vector = json.loads(answer)["data"][0]["embedding"]
    assert vector == pytest.approx(reference_embedding("a cat").tolist(), abs=1e-6)
