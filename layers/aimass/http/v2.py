"""Open Inference Protocol (KServe V2) REST routes: parse, call the data plane, answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from aimass import __version__
from aimass.errors import InvalidInput, ModelNotReady
from aimass.http.offload import Offload
from aimass.protocol.v2_dataplane import HEADER_LENGTH, DataPlane, describe, validation_message
from aimass.protocol.v2_types import (
    ErrorResponse,
    InferenceResponse,
    ModelMetadata,
    RepositoryIndexRequest,
    RepositoryModel,
    ServerMetadata,
)

EXTENSIONS = ["binary_tensor_data", "model_repository"]
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 404, 413, 503)}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "binary tensor extension: JSON header of Inference-Header-Content-Length "
                "bytes, then the tensors' bytes in input order",
            },
        },
    }
}


def v2_router(plane: DataPlane, offload: Offload) -> APIRouter:
    registry = plane.registry
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"], responses=_ERRORS)

    @router.get("", response_model=ServerMetadata, summary="Server metadata")
    async def server_metadata() -> ServerMetadata:
        return ServerMetadata(name="aimass", version=__version__, extensions=EXTENSIONS)

    @router.get("/health/live", summary="Server liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready", summary="Server readiness: every model loaded")
    async def ready() -> dict[str, bool]:
        if not registry.ready:
            failed = [f"{s.name}: {s.reason}" for s in registry.states() if s.state != "READY"]
            raise ModelNotReady("not ready: " + ("; ".join(failed) or "no models are loaded"))
        return {"ready": True}

    @router.post("/repository/index", response_model=list[RepositoryModel], summary="Model repository index")
    async def index(request: Request) -> list[RepositoryModel]:
        body = await request.body()
        try:
            query = RepositoryIndexRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            raise InvalidInput(f"invalid index request: {validation_message(exc)}") from None
        return [
            RepositoryModel(name=s.name, version=s.version, state=s.state, reason=s.reason)
            for s in registry.states()
            if s.state == "READY" or not query.ready
        ]

    def metadata(name: str, version: str | None = None) -> ModelMetadata:
        runtime = registry.get(name, version)
        return describe(runtime.manifest, [runtime.manifest.version])

    def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
        registry.get(name, version)
        return {"name": name, "ready": True}

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        body = await request.body()
        answer = await offload(plane.infer, name, version, body, request.headers.get(HEADER_LENGTH))
        return Response(answer.body, media_type=answer.media_type, headers=answer.headers)

    _versioned(router, "GET", "", metadata, "Model metadata", response_model=ModelMetadata)
    _versioned(router, "GET", "/ready", model_ready, "Model readiness")
    _versioned(
        router, "POST", "/infer", infer, "Inference",
        response_model=InferenceResponse, openapi_extra=INFER_BODY, response_class=JSONResponse,
    )  # fmt: skip
    return router


def _versioned(
    router: APIRouter, method: str, suffix: str, endpoint: Callable[..., Any], summary: str, **kwargs: Any
) -> None:
    """Register a model route twice: for the served version and for a pinned one."""
    for path, label in (
        (f"/models/{{name}}{suffix}", summary),
        (f"/models/{{name}}/versions/{{version}}{suffix}", f"{summary} (pinned version)"),
    ):
        router.add_api_route(path, endpoint, methods=[method], summary=label, name=f"{label} {method}", **kwargs)
