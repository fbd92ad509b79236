"""The error answers of the OpenAPI document, declared once from the error classes.

A route names the errors it can answer (``responses(NotFound, *KEYED)``) and gets FastAPI's ``responses=``
entries: one per status, in the shape ``aimass.http.errors`` renders on its path, described by the error
codes a client may see there. Hot routes take the same entries (``aimass.http.hot_routes``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from aimass.errors import (
    AimassError,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from aimass.protocol.v2_types import ErrorResponse
from aimass.schema import Schema

Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(Schema):
    message: str
    type: str
    code: str
    param: str | None


class ApiError(Schema):
    """An error outside ``/v2``, in the shape OpenAI clients parse."""

    error: ErrorDetail
    request_id: str


# What the metering middleware answers on every route that needs a key (aimass.http.middleware.metering).
KEYED: tuple[type[AimassError], ...] = (Unauthorized, Forbidden, RateLimited, QuotaExceeded, ServiceUnavailable)
# What reading a request body can answer: its size limit, its media type, the local server's deadline for it,
# and the route's own validation.
BODY: tuple[type[AimassError], ...] = (InvalidInput, PayloadTooLarge, UnsupportedMediaType, RequestTimeout)


def responses(*errors: type[AimassError], v2: bool = False) -> Responses:
    """FastAPI ``responses=`` entries for ``errors``; ``v2`` for the Open Inference Protocol's ``{"error"}``."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        seen = codes.setdefault(error.status_code, [])
        if error.code not in seen:
            seen.append(error.code)
    model = ErrorResponse if v2 else ApiError
    return {
        status: {"model": model, "description": f"{HTTPStatus(status).phrase}: {', '.join(codes[status])}"}
        for status in sorted(codes)
    }


def operation_responses(entries: Responses) -> tuple[dict[str, Any], list[type[BaseModel]]]:
    """The same entries as an OpenAPI operation's ``responses``, and the schemas they refer to."""
    documented: dict[str, Any] = {}
    models: list[type[BaseModel]] = []
    for status, entry in entries.items():
        model: type[BaseModel] = entry["model"]
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        documented[str(status)] = {
            "description": entry["description"],
            "content": {"application/json": {"schema": ref}},
        }
        models.append(model)
    return documented, models
