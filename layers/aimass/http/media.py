"""Request bodies are read only in the media types a route documents; any other ``Content-Type`` is a 415.

JSON is ``application/json`` or any ``application/*+json`` type, with no parameter but a UTF-8 ``charset``
(JSON on the wire is UTF-8). A request without a ``Content-Type`` is read as JSON where the route takes
JSON: the Triton HTTP client sends binary tensor requests with none, and JSON is what every such route
reads first. Where a route takes no JSON (a multipart-only upload), a missing type is refused like a wrong one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aimass.errors import UnsupportedMediaType

if TYPE_CHECKING:
    from starlette.requests import Request

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/form-data"
_UTF8 = ("utf-8", "utf8")


def accepted_type(request: Request, accepted: Sequence[str]) -> str:
    """Which of ``accepted`` the request's body is in; UnsupportedMediaType if none."""
    return accepted_media(request.headers.get("content-type"), accepted, request.method, request.scope["path"])


def accepted_media(header: str | None, accepted: Sequence[str], method: str, path: str) -> str:
    """``accepted_type`` of a request's ``Content-Type`` value (None: none sent), method and path."""
    if header is None and JSON in accepted:
        return JSON
    essence, _, parameters = (header or "").partition(";")
    essence = essence.strip().lower()
    if _is_json(essence) and JSON in accepted and _utf8(parameters):
        return JSON
    if essence in accepted and essence != JSON:
        return essence
    received = f"'{header}'" if header is not None else "no Content-Type"
    utf8 = " (JSON as UTF-8)" if JSON in accepted else ""
    raise UnsupportedMediaType(
        f"{method} {path} reads {' or '.join(accepted)}{utf8}, got {received}",
        param="Content-Type",
    )


def _is_json(essence: str) -> bool:
    kind, _, subtype = essence.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _utf8(parameters: str) -> bool:
    for parameter in filter(None, (p.strip() for p in parameters.split(";"))):
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in _UTF8:
            return False
    return True
