"""The V2 generate extension's routes: ``generate`` answers whole, ``generate_stream`` as server-sent events.

Each is served for the serving version and for a pinned one, as ``infer`` is (``aimass.http.v2``). Errors are
rendered in the V2 shape, as on every ``/v2`` path (``aimass.http.errors``). The routes are lazy
(``aimass.http.hot_routes.LazyRoutes``): their protocol is imported by the first request to one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aimass.errors import ModelNotReady, NotFound
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.http.hot_routes import Endpoint, HotRoute, LazyRoutes, schema_ref
from aimass.http.offload import Offload
from aimass.serving.cost import Schedule

if TYPE_CHECKING:
    from pydantic import BaseModel
    from starlette.requests import Request
    from starlette.responses import Response

    from aimass.protocol.v2_generate import GenerateService
    from aimass.serving.registry import ModelRegistry
    from aimass.settings import Settings

_TAG = "Open Inference Protocol (V2)"
_ERRORS = responses(*BODY, NotFound, ModelNotReady, *KEYED, v2=True)
_VERSIONS = (("", ""), ("/versions/{version}", " (pinned version)"))
PATHS = tuple(
    (f"/v2/models/{{name}}{suffix}/{operation}", f"{summary}{label}")
    for suffix, label in _VERSIONS
    for operation, summary in (("generate", "Generate"), ("generate_stream", "Generate stream"))
)


def lazy_v2_generate_routes(registry: ModelRegistry, settings: Settings, offload: Offload) -> LazyRoutes:
    def load() -> list[HotRoute]:
        from aimass.protocol.v2_generate import GenerateService

        return v2_generate_hot_routes(GenerateService(registry, Schedule(settings)), offload)

    return LazyRoutes(PATHS, load)


def v2_generate_hot_routes(service: GenerateService, offload: Offload) -> list[HotRoute]:
    from starlette.responses import Response

    from aimass.http.sse import MEDIA_TYPE, sse_response
    from aimass.protocol.v2_generate import GenerateResponse, GenerateStreamEvent

    async def generate(request: Request) -> Response:
        call = await offload(service.prepare, *_model(request), await request.body())
        return Response(await offload(service.complete, call), media_type="application/json")

    async def generate_stream(request: Request) -> Response:
        call = await offload(service.prepare, *_model(request), await request.body())
        return sse_response(request, await offload(service.stream, call), offload, {})

    routes: list[HotRoute] = []
    for suffix, label in _VERSIONS:
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
    from aimass.protocol.v2_generate import GenerateOutcome, GenerateParameters, GenerateRequest

    body = {"application/json": {"schema": schema_ref(GenerateRequest)}}
    models = (GenerateRequest, GenerateParameters, GenerateOutcome)
    return HotRoute(path, endpoint, summary, _TAG, body, response, _ERRORS, models=models, media_type=media_type)
