"""Every error a client sees is rendered here, in one of two shapes.

V2 routes keep the Open Inference Protocol's ``{"error": "<message>"}``. Every other route answers
``{"error": {"message", "type", "code", "param"}, "request_id"}``, the shape OpenAI clients parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from aimass.errors import AimassError, HTTPRefusal, InvalidInput, NotFound, error_document
from aimass.http.answers import REQUEST_ID_HEADER, client_error, error_body, request_id_of

if TYPE_CHECKING:  # FastAPI is for the routes the Lambda path builds on first need (aimass.http.lean)
    from fastapi import FastAPI
    from starlette.applications import Starlette

_LOCATIONS = ("body", "query", "path", "header", "cookie")
_STATUS_CODES = {405: "method_not_allowed", 404: "not_found", 413: "payload_too_large"}


class BodyReadError(HTTPException):
    """An error raised while a request body is received (by a middleware's ``receive``).

    FastAPI's body parser makes its own 400 of any error but an HTTPException, so such an error travels as
    this one, and is rendered as the error it carries.
    """

    def __init__(self, error: AimassError) -> None:
        super().__init__(error.status_code, error.message)
        self.error = error


def document(scope: Scope, error: AimassError) -> dict[str, object]:
    """The error's JSON document in the shape of the route's protocol."""
    return error_document(error, request_id_of(scope), v2=scope.get("path", "").startswith("/v2"))


def render(scope: Scope, error: AimassError, *, id_header: bool = False) -> Response:
    """The error response; ``id_header`` where no RequestContextMiddleware wraps the sender."""
    request_id = request_id_of(scope)
    headers = dict(error.headers)
    if id_header and request_id:
        headers[REQUEST_ID_HEADER] = request_id
    body = error_body(error, request_id, scope.get("path", ""))
    return Response(body, status_code=error.status_code, headers=headers or None, media_type="application/json")


async def _aimass_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AimassError)
    return render(request.scope, as_aimass_error(request.scope, exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    from fastapi.exceptions import RequestValidationError  # only a FastAPI route raises one: FastAPI is loaded

    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(err["type"] == "json_invalid" for err in errors):
        detail = errors[0].get("ctx", {}).get("error", "")
        return render(request.scope, InvalidInput(f"request body is not valid JSON: {detail}", param="body"))
    parts = [f"{_field(err['loc']) or 'body'}: {err['msg']}" for err in errors]
    param = _field(errors[0]["loc"]) if errors else ""
    return render(request.scope, InvalidInput("; ".join(parts), param=param or None))


def _field(loc: Sequence[object]) -> str:
    # FastAPI puts where a value came from first ("query", "body"); the client named only the field.
    inner = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    return ".".join(str(part) for part in inner)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: AimassError
    if isinstance(exc, BodyReadError):
        error = exc.error
    elif exc.status_code == 404:
        error = NotFound(f"no route for {request.method} {request.url.path}; see /docs for the API")
    else:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        error = HTTPRefusal(str(exc.detail), status_code=exc.status_code, code=code)
        error.headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = ", ".join(_allowed_methods(request, error.headers.get("Allow", "")))
            error.message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
            error.headers["Allow"] = allowed  # RFC 9110: a 405 names what the path allows
    return render(request.scope, error)


def _allowed_methods(request: Request, starlette_allows: str) -> list[str]:
    """Starlette's Allow names the methods of the first route on the path; a path here can have one route per
    method (GET and POST /v1/admin/keys), so the document's methods for the path are added."""
    methods = {method.strip() for method in starlette_allows.split(",") if method.strip()}
    app: FastAPI = request.app
    for template, operations in app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(request.url.path):
            methods.update(method.upper() for method in operations)
            methods.update(("HEAD",) if "get" in operations else ())
    return sorted(methods)


def as_aimass_error(scope: Scope, exc: Exception) -> AimassError:
    """``exc`` as the error a client is told of (``aimass.http.answers.client_error``)."""
    return client_error(str(scope.get("method")), str(scope.get("path")), exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette runs this handler outside every middleware, so the request id header is set here.
    return render(request.scope, as_aimass_error(request.scope, exc), id_header=True)


def install_error_handlers(app: Starlette) -> None:
    app.add_exception_handler(AimassError, _aimass_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def install_validation_handler(app: FastAPI) -> None:
    """The 400 for what FastAPI's validation refuses (its routes only: hot routes check their own bodies)."""
    from fastapi.exceptions import RequestValidationError

    app.add_exception_handler(RequestValidationError, _validation_error)
