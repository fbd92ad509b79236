"""OpenAI-shaped routes, so the official OpenAI SDKs work against the base URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from aimass.http.offload import Offload
from aimass.protocol.openai import EmbeddingsRequest, EmbeddingsResponse, ModelList, OpenAIService

MODEL_VERSION_HEADER = "x-model-version"
_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "example": {
                "error": {"message": "...", "type": "invalid_request_error", "code": "invalid_input", "param": None},
                "request_id": "...",
            }
        }
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {code: _ERROR for code in (400, 404, 413, 503)}


def openai_router(service: OpenAIService, offload: Offload) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], responses=_ERRORS)

    @router.post("/embeddings", response_model=EmbeddingsResponse, summary="Create embeddings")
    async def embeddings(request: EmbeddingsRequest) -> Response:
        answer, runtime = await offload(service.embeddings, request)
        return Response(
            answer.model_dump_json(),
            media_type="application/json",
            headers={MODEL_VERSION_HEADER: runtime.manifest.version},
        )

    @router.get("/models", response_model=ModelList, summary="List models")
    async def models() -> ModelList:
        return service.models()

    return router
