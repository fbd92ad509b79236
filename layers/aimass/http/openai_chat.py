"""The OpenAI chat and completions routes, whole answers or server-sent events (``aimass.http.sse``).

The routes are lazy (``aimass.http.hot_routes.LazyRoutes``): their protocol is imported by the first request
to one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aimass.http.hot_routes import Endpoint, HotRoute, LazyRoutes, schema_ref
from aimass.http.inference_routes import INFERENCE_ERRORS, MODEL_VERSION_HEADER, TAG
from aimass.http.offload import Offload
from aimass.serving.cost import Schedule

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from aimass.protocol.openai_chat import ChatService, GenerationCall
    from aimass.serving.registry import ModelRegistry
    from aimass.settings import Settings

PATHS = (("/v1/chat/completions", "Create chat completion"), ("/v1/completions", "Create completion"))


def lazy_chat_routes(registry: ModelRegistry, settings: Settings, offload: Offload) -> LazyRoutes:
    def load() -> list[HotRoute]:
        from aimass.protocol.openai_chat import ChatService

        return chat_hot_routes(ChatService(registry, Schedule(settings)), offload)

    return LazyRoutes(PATHS, load)


def chat_hot_routes(service: ChatService, offload: Offload) -> list[HotRoute]:
    from starlette.responses import Response

    from aimass.http.sse import sse_response
    from aimass.protocol.openai_chat import (
        ChatCompletion,
        ChatCompletionRequest,
        Completion,
        CompletionRequest,
        StreamOptions,
    )

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
        return HotRoute(path, answer(prepare), summary, TAG, body, response, INFERENCE_ERRORS, models=models)

    (chat_path, chat_summary), (completion_path, completion_summary) = PATHS
    return [
        route(chat_path, chat_summary, ChatCompletionRequest, ChatCompletion, service.prepare_chat),
        route(completion_path, completion_summary, CompletionRequest, Completion, service.prepare_completion),
    ]
