"""The V2 generate extension's routes: ``generate`` answers whole, ``generate_stream`` as server-sent events.

Each is served for the serving version and for a pinned one, as ``infer`` is (``aimass.http.v2``). Errors are
rendered in the V2 shape, as on every ``/v2`` path (``aimass.http.errors``).
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from aimass.errors import ModelNotReady, NotFound
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.hot_routes import Endpoint, HotRoute, schema_ref
from aimass.http.offload import Offload
from aimass.http.sse import MEDIA_TYPE, sse_response
from aimass.protocol.v2_generate import (
    GenerateOutcome,
    GenerateParameters,
    GenerateRequest,
    GenerateResponse,
    GenerateService,
    GenerateStreamEvent,
)

_TAG = "Open Inference Protocol (V2)"
_BODY = {"application/json": {"schema": schema_ref(GenerateRequest)}}
_ERRORS = responses(*BODY, NotFound, ModelNotReady, *KEYED, v2=True)
_MODELS = (GenerateRequest, GenerateParameters, GenerateOutcome)


def v2_generate_hot_routes(service: GenerateService, offload: Offload) -> list[HotRoute]:
    async def generate(request: Request) -> Response:
        call = await offload(service.prepare, *_model(request), await request.body())
        return Response(await offload(service.complete, call), media_type="application/json")

    async def generate_stream(request: Request) -> Response:
        call = await offload(service.prepare, *_model(request), await request.body())
        return sse_response(request, await offload(service.stream, call), offload, {})

    routes: list[HotRoute] = []
    for suffix, label in (("", ""), ("/versions/{version}", " (pinned version)")):
        base = f"/v2/models/{{name}}{suffix}"
        routes += [
            _route(f"{base}/generate", generate, f"Generate{label}", GenerateResponse, "application/json"),
            _route(
                f"{base}/generate_stream", generate_stream, f"Generate stream{label}", GenerateStreamEvent, MEDIA_TYPE
            ),
        ]
    return routes


def _model(request: Request) -> tuple[str, str | None]:
    return request.path_params["name"], request.path_params.get("version")


def _route(path: str, endpoint: Endpoint, summary: str, response: type[BaseModel], media_type: str) -> HotRoute:
    return HotRoute(path, endpoint, summary, _TAG, _BODY, response, _ERRORS, models=_MODELS, media_type=media_type)
