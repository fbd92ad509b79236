"""Hot routes: the inference endpoints, served by plain Starlette routes and documented from one declaration.

FastAPI's APIRoute checks path parameters and solves dependencies on every call. On the Lambda path that
costs about 0.2 ms a request, as much as the rest of the adapter together (bench/), and the inference
routes gain nothing from it: they read their body raw (JSON or binary tensors) and validate it themselves
with errors that name the field. Everything else (middleware, the error renderer) is shared with the
FastAPI routes. A hot route reads its body only in the media types it documents (``aimass.http.media``).

A request too large to answer now (``aimass.serving.cost.OverSyncBudget``, a 413) sent with ``Prefer:
respond-async`` (RFC 7240) is run as a batch of one line instead where the Batch API is on: the answer is
``202 Accepted``, the batch object, and its ``Location``. The line's body is the request's JSON body, or what
the route's ``line`` makes of a form.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel

from aimass.errors import UnsupportedMediaType
from aimass.http.answers import Call, Handler, request_id_of
from aimass.http.error_docs import Responses, operation_responses
from aimass.http.media import JSON, accepted_type
from aimass.protocol.v2_dataplane import HEADER_LENGTH
from aimass.serving.cost import OverSyncBudget

if TYPE_CHECKING:  # the web stack is imported where a Route is built: a function's direct path never builds one
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from aimass.batches.service import BatchService
    from aimass.http.offload import Offload

Endpoint = Callable[["Request"], Awaitable["Response"]]
# The JSON body a batch line carries for the request; None where it cannot be one (binary tensors).
LineBody = Callable[["Request"], Awaitable[dict[str, Any] | None]]
_PARAM = re.compile(r"{(\w+)}")
RESPOND_ASYNC = "respond-async"
BATCH_OBJECT = "BatchObject"  # aimass.http.batches, documented with the Batch API's routes


def prefers_async(request: Request) -> bool:
    """Whether a ``Prefer`` header (RFC 7240: preferences separated by commas, each with ``;`` parameters, in
    one header or several) asks for ``respond-async``."""
    for header in request.headers.getlist("prefer"):
        for preference in header.split(","):
            if preference.split(";")[0].split("=")[0].strip().lower() == RESPOND_ASYNC:
                return True
    return False


async def json_line(request: Request) -> dict[str, Any] | None:
    """The request's JSON body; None for a binary one (V2's binary tensor extension has no JSON line)."""
    try:
        accepted_type(request, (JSON,))
    except UnsupportedMediaType:
        return None
    if HEADER_LENGTH in request.headers:
        return None
    try:
        document = pydantic_core.from_json(await request.body())  # read by the route already: kept by Starlette
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def calling(handler: Handler, offload: Offload) -> Endpoint:
    """The endpoint of a route whose handler is a plain function of the request (``aimass.http.answers``): the
    ASGI apps call it through this, a function's direct Lambda path calls it as it is."""

    async def endpoint(request: Request) -> Response:
        from starlette.responses import Response

        scope = request.scope
        body = await request.body()
        call = Call(request.method, scope["path"], request.path_params, request.headers, body, request_id_of(scope))
        answer = await offload(handler, call)
        return Response(answer.body, answer.status, headers=dict(answer.headers), media_type=answer.media_type)

    return endpoint


def path_pattern(path: str) -> re.Pattern[str]:
    """The template's regular expression, as Starlette compiles it: a ``{name}`` is one path segment."""
    return re.compile("^" + _PARAM.sub(lambda found: f"(?P<{found[1]}>[^/]+)", path) + "$")


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


@dataclass(frozen=True)
class HotRoute:
    path: str
    endpoint: Endpoint
    summary: str
    tag: str
    body: dict[str, Any]  # the OpenAPI requestBody content, by media type: the types the route reads
    response: type[BaseModel]
    errors: Responses  # aimass.http.error_docs.responses(...)
    models: tuple[type[BaseModel], ...] = ()  # schemas the body refers to
    line: LineBody = json_line
    media_type: str = "application/json"  # of a successful answer: a stream's is text/event-stream
    # The handler ``endpoint`` calls (``calling``), where the route has one: a function's direct Lambda path
    # answers the route with it, without the web stack (aimass.http.lambda_direct).
    call: Handler | None = None

    def route(self, batches: BatchService | None = None) -> Route:
        from starlette.routing import Route

        return Route(self.path, self.handler(batches), methods=["POST"], name=self.summary)

    def handler(self, batches: BatchService | None = None) -> Endpoint:
        """The endpoint its Route calls: the media type checked, and too large a request run as a batch."""
        endpoint, accepted = self.endpoint, tuple(self.body)

        async def checked(request: Request) -> Response:
            accepted_type(request, accepted)
            if batches is None:
                return await endpoint(request)
            try:
                return await endpoint(request)
            except OverSyncBudget:
                deferred = await self._deferred(request, batches) if prefers_async(request) else None
                if deferred is None:
                    raise
                return deferred

        return checked

    async def _deferred(self, request: Request, batches: BatchService) -> Response | None:
        """The request submitted as a batch of one line: 202 and the batch; None where it cannot be one."""
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        from aimass.metering.keys import Caller  # only a function with keys and batches gets here

        caller = getattr(request.state, "caller", None)
        body = await self.line(request)
        if not isinstance(caller, Caller) or body is None:
            return None
        endpoint = self.path.format(**request.path_params)
        record = await run_in_threadpool(batches.submit_request, caller, endpoint, body)
        headers = {"Location": f"/v1/batches/{record.id}", "Preference-Applied": RESPOND_ASYNC}
        return JSONResponse(record.to_object(), status_code=202, headers=headers)

    def schemas(self) -> list[type[BaseModel]]:
        return [self.response, *self.models, *operation_responses(self.errors)[1]]

    def operation(self, *, deferred: bool = False) -> dict[str, Any]:
        """The OpenAPI operation; ``deferred`` where a request may be answered 202 and run as a batch."""
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(self.path)
        ]
        ok = {
            "description": "Successful Response",
            "content": {self.media_type: {"schema": schema_ref(self.response)}},
        }
        answers: dict[str, Any] = {"200": ok}
        if deferred:
            parameters.append(_PREFER)
            answers["202"] = _ACCEPTED
        return {
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": re.sub(r"\W+", "_", f"{self.summary} {self.path}").strip("_").lower(),
            "parameters": parameters,
            "requestBody": {"required": True, "content": self.body},
            "responses": {**answers, **operation_responses(self.errors)[0]},
        }


_PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "respond-async (RFC 7240): a request too large to answer now (a 413 payload_too_large that says "
    "so) is run as a batch instead, answered 202 with the batch",
}
_ACCEPTED = {
    "description": "Accepted (Prefer: respond-async, and too large to answer now): the request runs as a batch of one "
    "line; poll GET /v1/batches/{id} (the Location header), then read its output file's one line",
    "headers": {
        "Location": {"schema": {"type": "string"}, "description": "/v1/batches/<id>"},
        "Preference-Applied": {"schema": {"type": "string", "enum": [RESPOND_ASYNC]}},
    },
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{BATCH_OBJECT}"}}},
}


@dataclass(frozen=True)
class LazyRoutes:
    """Hot routes whose module (its protocol's pydantic models above all) is imported on their first request.

    A function's cold start imports only the routes its first request is likely to take; the others' paths
    and summaries are known without their module, so their Routes are in the table from the start. ``load``
    returns the HotRoutes of ``paths``, in that order; it is called once, on the first request to one of them
    or when the OpenAPI document is written.
    """

    paths: tuple[tuple[str, str], ...]  # (path, summary) of each route
    load: Callable[[], Sequence[HotRoute]]


class _Loaded:
    """A LazyRoutes' HotRoutes and their handlers, loaded on first need (a function answers one request at a
    time, and a second load on a threaded server would build the same routes: no lock)."""

    def __init__(self, lazy: LazyRoutes, batches: BatchService | None) -> None:
        self._lazy, self._batches = lazy, batches
        self._loaded: tuple[tuple[HotRoute, ...], tuple[Endpoint, ...]] | None = None

    def get(self) -> tuple[tuple[HotRoute, ...], tuple[Endpoint, ...]]:
        if self._loaded is None:
            declared = tuple(self._lazy.load())
            found = tuple((route.path, route.summary) for route in declared)
            if found != self._lazy.paths:
                raise RuntimeError(f"lazy hot routes declared {self._lazy.paths}, loaded {found}")
            self._loaded = declared, tuple(route.handler(self._batches) for route in declared)
        return self._loaded

    @property
    def paths(self) -> tuple[tuple[str, str], ...]:
        return self._lazy.paths

    def declared(self, index: int) -> Callable[[], HotRoute]:
        return lambda: self.get()[0][index]

    def route(self, index: int) -> Route:
        from starlette.routing import Route

        path, summary = self._lazy.paths[index]

        async def endpoint(request: Request) -> Response:
            return await self.get()[1][index](request)

        return Route(path, endpoint, methods=["POST"], name=summary)


class HotTable:
    """The hot routes, declared and built once: the Lambda app and the FastAPI app serve these same Routes."""

    def __init__(self, entries: Sequence[HotRoute | LazyRoutes], *, batches: BatchService | None) -> None:
        self._entries: list[HotRoute | _Loaded] = [
            entry if isinstance(entry, HotRoute) else _Loaded(entry, batches) for entry in entries
        ]
        self._batches = batches
        self.deferred = batches is not None  # whether a request may be answered 202 and run as a batch
        # Every route, for the direct Lambda path: its pattern, and how to get its declaration (a lazy one's loads
        # its module on the first request that matches), in table order.
        direct: list[tuple[re.Pattern[str], Callable[[], HotRoute]]] = []
        for entry in self._entries:
            if isinstance(entry, HotRoute):
                direct.append((path_pattern(entry.path), _constant(entry)))
            else:
                direct += [(path_pattern(path), entry.declared(index)) for index, (path, _) in enumerate(entry.paths)]
        self.direct = tuple(direct)

    @cached_property
    def routes(self) -> tuple[Route, ...]:
        """The Starlette routes, built once on first need (the ASGI apps'), each app holding the same objects."""
        routes: list[Route] = []
        for entry in self._entries:
            if isinstance(entry, HotRoute):
                routes.append(entry.route(self._batches))
            else:
                routes += [entry.route(index) for index in range(len(entry.paths))]
        return tuple(routes)

    @property
    def declared(self) -> tuple[HotRoute, ...]:
        """Every hot route's declaration, in table order (every lazy one loaded): what the document is written from."""
        declared: list[HotRoute] = []
        for entry in self._entries:
            declared += [entry] if isinstance(entry, HotRoute) else entry.get()[0]
        return tuple(declared)


def _constant(route: HotRoute) -> Callable[[], HotRoute]:
    return lambda: route


def hot_table(declared: Sequence[HotRoute | LazyRoutes], *, batches: BatchService | None = None) -> HotTable:
    """With ``batches``, a request too large to answer now that prefers ``respond-async`` runs as a batch."""
    return HotTable(declared, batches=batches)


def install_hot_routes(app: Starlette, table: HotTable) -> None:
    """Put the routes first: they are tried before any other (aimass.http.document puts them in the document)."""
    app.router.routes[0:0] = table.routes
