"""An API Gateway proxy event read back as the HTTP request a client sent, to ask the app the same question.

A Lambda handler test holds the function's answer to an API Gateway event against the app's answer to the same
request over HTTP (a ``TestClient``): this module reads the event without Mangum, so a fault in the event to
ASGI translation shows as a difference instead of being shared by both sides. REST (v1) and HTTP API (v2)
events are read as API Gateway documents them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# Framing the client library writes itself for the body it sends.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str  # the path with its query string
    headers: list[tuple[str, str]]
    body: bytes


def http_request(event: dict[str, Any]) -> HttpRequest:
    """The request ``event`` carries, as its client sent it to API Gateway."""
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode()
    if event.get("version") == "2.0":
        http = event["requestContext"]["http"]
        query = event.get("rawQueryString") or ""
        headers = [(name, value) for name, value in (event.get("headers") or {}).items()]
        cookies = event.get("cookies") or []
        if cookies:
            headers.append(("cookie", "; ".join(cookies)))
        method, path = http["method"], event["rawPath"]
    else:
        multi_query: dict[str, list[str]] = event.get("multiValueQueryStringParameters") or {
            name: [value] for name, value in (event.get("queryStringParameters") or {}).items()
        }
        query = urlencode([(name, value) for name, values in multi_query.items() for value in values])
        multi_headers: dict[str, list[str]] = event.get("multiValueHeaders") or {
            name: [value] for name, value in (event.get("headers") or {}).items()
        }
        headers = [(name, value) for name, values in multi_headers.items() for value in values]
        method, path = event["httpMethod"], event["path"]
    kept = [(name, value) for name, value in headers if name.lower() not in _FRAMING]
    return HttpRequest(method, f"{path}?{query}" if query else path, kept, body)
