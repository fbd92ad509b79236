"""The OpenAPI document (``/openapi.json``): FastAPI's, with the hot routes, and the errors as they are answered.

FastAPI documents a 422 on every route that has parameters. This API never answers one: its validation
errors are 400s (``aimass.http.errors``), which each route documents with the rest of its errors
(``aimass.http.error_docs``). So the 422s and their schemas are dropped, and the document says what a
client really gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from aimass.http.hot_routes import HotRoute

_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_document(app: FastAPI, hot: Sequence[HotRoute], *, deferred: bool = False) -> None:
    """``deferred``: the hot routes may answer 202 and run a request as a batch (``aimass.http.hot_routes``)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for route in hot:
                for model in route.schemas():
                    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                    for name, component in {**schema.pop("$defs", {}), model.__name__: schema}.items():
                        # Components are named by class: two models of one name would document one as both.
                        if schemas.setdefault(name, component) != component:
                            raise RuntimeError(f"two models named {name!r} describe different schemas: rename one")
                document["paths"].setdefault(route.path, {})["post"] = route.operation(deferred=deferred)
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in _FRAMEWORK_SCHEMAS:
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
