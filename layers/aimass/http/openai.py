"""OpenAI-shaped routes, so the official OpenAI SDKs work against the base URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request  # FastAPI's Request: its routes read their annotations from here

from aimass.http.error_docs import KEYED, responses
from aimass.http.inference_routes import TAG
from aimass.protocol.openai import ModelList, OpenAIService

if TYPE_CHECKING:  # imported where the router is built: the Lambda path builds it on first need
    from fastapi import APIRouter

    from aimass.http.peers import Peers


def openai_router(service: OpenAIService, peers: Peers | None = None) -> APIRouter:
    from fastapi import APIRouter

    router = APIRouter(prefix="/v1", tags=[TAG])

    @router.get("/models", response_model=ModelList, summary="List models", responses=responses(*KEYED))
    async def models(request: Request) -> ModelList:
        listed = service.models()
        if peers is None:
            return listed
        # The front function on AWS: every other domain's callable models too.
        from starlette.concurrency import run_in_threadpool

        cards = listed.data + await run_in_threadpool(peers.cards, request.state.request_id)
        return ModelList(data=sorted(cards, key=lambda card: card.id))

    return router
