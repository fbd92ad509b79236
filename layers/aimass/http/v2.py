"""Open Inference Protocol (KServe V2) REST routes: parse, call the data plane, answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # FastAPI's Request: its routes read their annotations from here

from aimass import __version__
from aimass.errors import ModelNotReady, NotFound
from aimass.http.dependencies import json_body
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.protocol import wire
from aimass.protocol.v2_dataplane import DataPlane, describe
from aimass.protocol.v2_types import (
    ModelMetadata,
    RepositoryIndexRequest,
    RepositoryModel,
    ServerMetadata,
)
from aimass.serving.registry import ModelState

if TYPE_CHECKING:  # imported where the routers are built: the Lambda path builds them on first need
    from fastapi import APIRouter

    from aimass.http.peers import Peers

EXTENSIONS = ["binary_tensor_data", "model_repository", "generate"]
_MODEL_ERRORS = responses(NotFound, ModelNotReady, *KEYED, v2=True)


def v2_router(plane: DataPlane, peers: Peers | None = None) -> APIRouter:
    from fastapi import APIRouter, Depends

    registry = plane.registry
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"])
    index_query = RepositoryIndexRequest.model_json_schema()

    def metadata(name: str, version: str | None = None) -> ModelMetadata:
        serving, canary, percent = registry.serving(name)
        # Unpinned: the serving version's metadata (never the canary's, which only some requests get).
        runtime = registry.get(name, version or serving)
        described = describe(runtime.manifest, registry.loaded_versions(name))
        parameters: dict[str, Any] = {**(described.parameters or {}), "serving_version": serving or ""}
        if canary is not None:
            parameters.update(canary_version=canary, canary_percent=percent)
        rejected = registry.rejected(name)
        if rejected:  # why a published version is not serving: the operator's first question
            parameters["rejected"] = "; ".join(f"version {v}: {why}" for v, why in sorted(rejected.items()))
        return described.model_copy(update={"parameters": parameters})

    def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
        registry.get(name, version, wait=False)  # a readiness probe is told at once, not held while a model loads
        return {"name": name, "ready": True}

    _versioned(router, "GET", "", metadata, "Model metadata", response_model=ModelMetadata, responses=_MODEL_ERRORS)
    _versioned(router, "GET", "/ready", model_ready, "Model readiness", responses=_MODEL_ERRORS)

    @router.get("", response_model=ServerMetadata, summary="Server metadata")
    async def server_metadata() -> ServerMetadata:
        return ServerMetadata(name="aimass", version=__version__, extensions=EXTENSIONS)

    @router.get("/health/live", summary="Server liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get(
        "/health/ready", summary="Server readiness: every model loaded", responses=responses(ModelNotReady, v2=True)
    )
    async def ready() -> dict[str, bool]:
        if not registry.ready:
            failed = [f"{s.name}: {s.reason}" for s in registry.states() if s.state != "READY"]
            raise ModelNotReady("not ready: " + ("; ".join(failed) or "no models are loaded"))
        return {"ready": True}

    @router.post(
        "/repository/index",
        response_model=list[RepositoryModel],
        summary="Model repository index",
        dependencies=[Depends(json_body)],
        responses=responses(*BODY, *KEYED, v2=True),
        # The body is read raw (an empty one is {}), so FastAPI does not document it itself.
        openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": index_query}}}},
    )
    async def index(request: Request) -> list[RepositoryModel]:
        query = wire.parse(RepositoryIndexRequest, await request.body() or b"{}", "repository index request")
        states = registry.states()
        if peers is not None:  # the front function on AWS: every other domain's models too
            from starlette.concurrency import run_in_threadpool

            states = sorted(states + await run_in_threadpool(peers.states, request.state.request_id), key=_name)
        return [
            RepositoryModel(name=s.name, version=s.version, state=s.state, reason=s.reason)
            for s in states
            if s.state == "READY" or not query.ready
        ]

    return router


def _name(state: ModelState) -> str:
    return state.name


def _versioned(
    router: APIRouter, method: str, suffix: str, endpoint: Callable[..., Any], summary: str, **kwargs: Any
) -> None:
    """Register a model route twice: for the served version and for a pinned one."""
    for path, label in (
        (f"/models/{{name}}{suffix}", summary),
        (f"/models/{{name}}/versions/{{version}}{suffix}", f"{summary} (pinned version)"),
    ):
        router.add_api_route(path, endpoint, methods=[method], summary=label, name=f"{label} {method}", **kwargs)
