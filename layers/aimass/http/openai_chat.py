"""The OpenAI chat and completions routes, whole answers or server-sent events (``aimass.http.sse``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aimass.http.hot_routes import Endpoint, HotRoute, schema_ref
from aimass.http.offload import Offload
from aimass.http.openai import _TAG, INFERENCE_ERRORS, MODEL_VERSION_HEADER
from aimass.http.sse import sse_response
from aimass.protocol.openai_chat import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatService,
    Completion,
    CompletionRequest,
    GenerationCall,
    StreamOptions,
)


def chat_hot_routes(service: ChatService, offload: Offload) -> list[HotRoute]:
    def answer(prepare: Callable[[bytes], GenerationCall]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            call = await offload(prepare, await request.body())
            headers = {MODEL_VERSION_HEADER: call.runtime.manifest.version}
            if not call.stream:
                body = await offload(service.complete, call)
                return Response(body, media_type="application/json", headers=headers)
            return sse_response(request, await offload(service.stream, call), offload, headers)

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
