"""Hot routes: the inference endpoints, served by plain Starlette routes and documented from one declaration.

FastAPI's APIRoute checks path parameters and solves dependencies on every call. On the Lambda path that
costs about 0.2 ms a request, as much as the rest of the adapter together (bench/), and the inference
routes gain nothing from it: they read their body raw (JSON or binary tensors) and validate it themselves
with errors that name the field. Everything else (middleware, the error renderer) is shared with the
FastAPI routes. A hot route reads its body only in the media types it documents (``aimass.http.media``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aimass.http.error_docs import Responses, operation_responses
from aimass.http.media import accepted_type

Endpoint = Callable[[Request], Awaitable[Response]]
_PARAM = re.compile(r"{(\w+)}")


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

    def route(self) -> Route:
        endpoint, accepted = self.endpoint, tuple(self.body)

        async def checked(request: Request) -> Response:
            accepted_type(request, accepted)
            return await endpoint(request)

        return Route(self.path, checked, methods=["POST"], name=self.summary)

    def schemas(self) -> list[type[BaseModel]]:
        return [self.response, *self.models, *operation_responses(self.errors)[1]]

    def operation(self) -> dict[str, Any]:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(self.path)
        ]
        ok = {
            "description": "Successful Response",
            "content": {"application/json": {"schema": schema_ref(self.response)}},
        }
        return {
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": re.sub(r"\W+", "_", f"{self.summary} {self.path}").strip("_").lower(),
            "parameters": parameters,
            "requestBody": {"required": True, "content": self.body},
            "responses": {"200": ok, **operation_responses(self.errors)[0]},
        }


def install_hot_routes(app: FastAPI, routes: Sequence[HotRoute]) -> None:
    """Put the routes first: they are tried before any other (aimass.http.document puts them in the document)."""
    app.router.routes[0:0] = [route.route() for route in routes]
