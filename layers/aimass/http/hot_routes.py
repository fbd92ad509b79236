"""Hot routes: the inference endpoints, served by plain Starlette routes and documented from one declaration.

FastAPI's APIRoute checks path parameters and solves dependencies on every call. On the Lambda path that
costs about 0.2 ms a request, as much as the rest of the adapter together (bench/), and the inference
routes gain nothing from it: they read their body raw (JSON or binary tensors) and validate it themselves
with errors that name the field. Everything else (middleware, the error renderer) is shared with the
FastAPI routes.
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
    body: dict[str, Any]  # the OpenAPI requestBody content, by media type
    response: type[BaseModel]
    errors: dict[str, Any]  # the OpenAPI error responses, by status
    models: tuple[type[BaseModel], ...] = ()  # schemas the body and errors refer to

    def route(self) -> Route:
        return Route(self.path, self.endpoint, methods=["POST"], name=self.summary)

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
            "responses": {"200": ok, **self.errors},
        }


def install_hot_routes(app: FastAPI, routes: Sequence[HotRoute]) -> None:
    """Put the routes first (they are tried before any other) and into the OpenAPI document."""
    app.router.routes[0:0] = [route.route() for route in routes]
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for route in routes:
                for model in (route.response, *route.models):
                    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                    schemas.update(schema.pop("$defs", {}))
                    schemas[model.__name__] = schema
                document["paths"].setdefault(route.path, {})["post"] = route.operation()
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
