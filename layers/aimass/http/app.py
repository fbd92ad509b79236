"""The ASGI application: one for the local server and for every Lambda function."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from aimass import __version__
from aimass.http import offload as offloads
from aimass.http.errors import install_error_handlers
from aimass.http.middleware import RequestContextMiddleware
from aimass.http.openai import openai_router
from aimass.http.v2 import v2_router
from aimass.protocol.openai import OpenAIService
from aimass.protocol.v2_dataplane import DataPlane
from aimass.protocol.v2_types import InferenceRequest
from aimass.registry import ModelRegistry
from aimass.session import SessionFactory
from aimass.settings import Settings, get_settings
from aimass.store import LocalModelStore

DESCRIPTION = """Trained models behind one API.

* **Open Inference Protocol (KServe V2)** under `/v2`, JSON and binary tensors, for every model.
* **OpenAI-compatible** `/v1/embeddings` and `/v1/models`.

Every response carries an `x-request-id` header. Errors answer `{"error": "..."}` on `/v2` routes and
`{"error": {"message", "type", "code", "param"}, "request_id"}` elsewhere.
"""


def create_app(registry: ModelRegistry, settings: Settings, *, offload: offloads.Offload) -> FastAPI:
    app = FastAPI(title="AI Mass", version=__version__, description=DESCRIPTION)
    app.include_router(v2_router(DataPlane(registry, settings), offload))
    app.include_router(openai_router(OpenAIService(registry, settings), offload))
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    _document_raw_bodies(app)
    return app


def build_app(settings: Settings | None = None, *, in_lambda: bool = False) -> FastAPI:
    """Composition root: load every model this process serves, then build the app around them."""
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    registry = ModelRegistry(LocalModelStore(settings.model_store), SessionFactory(settings), domains=settings.domains)
    registry.load_all()
    return create_app(registry, settings, offload=offloads.inline if in_lambda else offloads.threaded)


def _document_raw_bodies(app: FastAPI) -> None:
    """The infer routes read their body raw (JSON or binary); publish the JSON body's schema anyway."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain()
            schema = InferenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(schema.pop("$defs", {}))
            schemas["InferenceRequest"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
