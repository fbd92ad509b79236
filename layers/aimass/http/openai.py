"""OpenAI-shaped routes, so the official OpenAI SDKs work against the base URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from aimass.errors import ModelNotReady, NotFound
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.hot_routes import HotRoute, schema_ref
from aimass.http.offload import Offload
from aimass.protocol.openai import EmbeddingsRequest, EmbeddingsResponse, ModelList, OpenAIService

if TYPE_CHECKING:  # imported where the router is built: the Lambda path builds it on first need
    from fastapi import APIRouter

    from aimass.http.peers import Peers

MODEL_VERSION_HEADER = "x-model-version"
_TAG = "OpenAI-compatible"
# What a route that runs a model on a request body can answer.
INFERENCE_ERRORS = responses(*BODY, NotFound, ModelNotReady, *KEYED)


def openai_hot_routes(service: OpenAIService, offload: Offload) -> list[HotRoute]:
    async def embeddings(request: Request) -> Response:
        body, runtime = await offload(service.embeddings, await request.body())
        return Response(body, media_type="application/json", headers={MODEL_VERSION_HEADER: runtime.manifest.version})

    body = {"application/json": {"schema": schema_ref(EmbeddingsRequest)}}
    return [
        HotRoute(
            "/v1/embeddings",
            embeddings,
            "Create embeddings",
            _TAG,
            body,
            EmbeddingsResponse,
            INFERENCE_ERRORS,
            models=(EmbeddingsRequest,),
        )
    ]


def openai_router(service: OpenAIService, peers: Peers | None = None) -> APIRouter:
    from fastapi import APIRouter

    router = APIRouter(prefix="/v1", tags=[_TAG])

    @router.get("/models", response_model=ModelList, summary="List models", responses=responses(*KEYED))
    async def models(request: Request) -> ModelList:
        listed = service.models()
        if peers is None:
            return listed
        # The front function on AWS: every other domain's callable models too.
        cards = listed.data + await run_in_threadpool(peers.cards, request.state.request_id)
        return ModelList(data=sorted(cards, key=lambda card: card.id))

    return router
