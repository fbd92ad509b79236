"""The OpenAI chat and completions routes, whole answers or server-sent events.

A stream is stepped one token at a time on the offload (a worker thread on the local server), so the event
loop never waits on the model, and every chunk goes out as soon as it is written. However the stream ends,
its ``close`` runs: a client that leaves (Starlette cancels the body when it sees the disconnect) stops the
model before its next step, and what was written is billed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aimass.http.hot_routes import Endpoint, HotRoute, schema_ref
from aimass.http.offload import Offload
from aimass.http.openai import _TAG, INFERENCE_ERRORS, MODEL_VERSION_HEADER
from aimass.protocol.openai_chat import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatService,
    ChatStream,
    Completion,
    CompletionRequest,
    GenerationCall,
    StreamOptions,
)


def _next(events: Iterator[bytes]) -> bytes | None:
    return next(events, None)


def chat_hot_routes(service: ChatService, offload: Offload) -> list[HotRoute]:
    def answer(prepare: Callable[[bytes], GenerationCall]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            call = await offload(prepare, await request.body())
            headers = {MODEL_VERSION_HEADER: call.runtime.manifest.version}
            if not call.stream:
                body = await offload(service.complete, call)
                return Response(body, media_type="application/json", headers=headers)
            stream = await offload(service.stream, call)
            headers["cache-control"] = "no-cache"
            return StreamingResponse(_sse(stream, offload), media_type="text/event-stream", headers=headers)

        return endpoint

    def route(
        path: str, summary: str, request: Any, response: Any, prepare: Callable[[bytes], GenerationCall]
    ) -> HotRoute:
        body = {"application/json": {"schema": schema_ref(request)}}
        models = (request, StreamOptions)
        return HotRoute(path, answer(prepare), summary, _TAG, body, response, INFERENCE_ERRORS, models=models)

    return [
        route(
            "/v1/chat/completions",
            "Create chat completion",
            ChatCompletionRequest,
            ChatCompletion,
            service.prepare_chat,
        ),
        route("/v1/completions", "Create completion", CompletionRequest, Completion, service.prepare_completion),
    ]


async def _sse(stream: ChatStream, offload: Offload) -> AsyncIterator[bytes]:
    events = stream.events()
    try:
        while True:
            chunk = await offload(_next, events)
            if chunk is None:
                return
            yield chunk
    finally:
        stream.close()
