"""An API Gateway proxy event read back as the HTTP request a client sent, to ask the app the same question.

A Lambda handler test holds the function's answer to an API Gateway event against the app's answer to the same
request over HTTP (a ``TestClient``): this module reads the event without Mangum, so a fault in the event to
ASGI translation shows as a difference instead of being shared by both sides. REST (v1) and HTTP API (v2)
events are read as API Gateway documents them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi.testclient import TestClient

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


class Answer(Protocol):
    """What a test client's response carries (httpx's, whichever package the test client takes it from)."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Any: ...

    def json(self) -> Any: ...


def ask_app(client: TestClient, event: dict[str, Any]) -> Answer:
    """The app's answer (through ``client``) to the request ``event`` carries."""
    request = http_request(event)
    return client.request(request.method, request.url, headers=request.headers, content=request.body)


def _without_request_ids(document: Any) -> Any:
    # Each side makes its own request id (a REST event carries API Gateway's): the rest must be equal.
    if isinstance(document, dict):
        return {k: _without_request_ids(v) for k, v in document.items() if k != "request_id"}
    if isinstance(document, list):
        return [_without_request_ids(item) for item in document]
    return document


def assert_same_answer(response: dict[str, Any], answer: Answer) -> None:
    """A Lambda proxy ``response`` says what the app's HTTP ``answer`` says: status, media type and body."""
    assert response["statusCode"] == answer.status_code, (response, answer.text)
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    multi = {name.lower(): values[0] for name, values in (response.get("multiValueHeaders") or {}).items()}
    media_type = headers.get("content-type") or multi.get("content-type")
    assert media_type == answer.headers["content-type"]
    raw = str(response.get("body") or "")
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    if media_type is not None and media_type.startswith("application/json"):
        assert _without_request_ids(json.loads(body)) == _without_request_ids(answer.json())
    else:
        assert body == answer.content
        for name in ("inference-header-content-length",):
            assert (headers.get(name) or multi.get(name)) == answer.headers.get(name)
