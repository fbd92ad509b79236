"""Build API Gateway events as API Gateway sends them to Lambda: the one builder of AI Mass's events.

``http_api_v2`` (HTTP API, payload format 2.0), ``rest_v1`` (REST API proxy integration, payload 1.0) and
``authorizer_request`` (a REST ``REQUEST`` Lambda authorizer) take what a client sent (method, path, query,
headers, body) and add what API Gateway adds: the ``Host``, ``X-Amzn-Trace-Id`` and ``X-Forwarded-*``
headers, the request context (ids, stage, times, source IP), the base64 encoding of binary bodies. The
repository's events (``tests/events/specs.py``, ``python -m tests.events``) and the events ``aimass new-domain``
writes for a scaffolded domain (its requests file, ``tests/events/requests/<domain>.json``) both come from here,
so both are framed alike and both regenerate to the same bytes.

Nothing is random: ids and times are derived from the event's ``name``, so each event has its own request id
and time and regenerating gives the same bytes. How each field is made, and why:

- time: ``EPOCH`` plus a millisecond offset from the name (within ``WINDOW_MS``); ``time``/``requestTime`` is
  that instant in the access-log format, ``timeEpoch``/``requestTimeEpoch`` in milliseconds, and the trace
  id's first field is the same instant in seconds (hex), as X-Ray writes it.
- request ids: an HTTP API ``requestId`` (and a REST ``extendedRequestId``) is 11 bytes in standard base64,
  "JkK1VgWBIAMEbTA="; a REST ``requestId`` is a UUID.
- bodies: HTTP APIs base64-encode every body whose media type is not text (``is_text``); REST APIs encode
  the media types in the API's binary media types, ``*/*`` for AI Mass (infra/constructs/api.py), so
  every REST body arrives base64-encoded. ``content-length`` is the body's byte length before encoding;
  an HTTP API always passes it, a REST API drops it from bodies it treats as binary.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import inspect
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

Event = dict[str, Any]
Query = Mapping[str, str | Sequence[str]]

ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"
HTTP_API_ID = "x7k2m9p4q1"
REST_API_ID = "abc123defg"
CLIENT_IP = "203.0.113.10"  # TEST-NET-3 (RFC 5737): no real caller's address
EPOCH = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
WINDOW_MS = 4 * 3600 * 1000
# infra/constructs/api.py: the REST API treats every media type as binary, so Lambda gets bytes unchanged.
REST_BINARY_MEDIA_TYPES = ("*/*",)
# API Gateway's default when a request names no media type.
DEFAULT_CONTENT_TYPE = "application/json"
# A checkout's requests files: one per domain that `aimass new-domain` scaffolded, read by tests/events/specs.py.
REQUESTS = Path("tests", "events", "requests")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _digest(name: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{name}".encode()).digest()


def time_epoch_ms(name: str) -> int:
    """The instant API Gateway received the request ``name``, in milliseconds since 1970."""
    offset = int.from_bytes(_digest(name, "time")[:8], "big") % WINDOW_MS
    return int((EPOCH + timedelta(milliseconds=offset)).timestamp() * 1000)


def access_log_time(epoch_ms: int) -> str:
    """``28/Nov/2026:16:21:09 +0000``: the format of ``time`` and ``requestTime`` (English month, any locale)."""
    at = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return f"{at.day:02d}/{_MONTHS[at.month - 1]}/{at.year}:{at:%H:%M:%S} +0000"


def trace_id(name: str, epoch_ms: int) -> str:
    """An X-Ray root trace id: version 1, the request's second in hex, 96 bits of id."""
    return f"Root=1-{epoch_ms // 1000:08x}-{_digest(name, 'trace')[:12].hex()}"


def short_request_id(name: str) -> str:
    """An HTTP API ``requestId`` or REST ``extendedRequestId``: 11 bytes, base64 (16 characters)."""
    return base64.b64encode(_digest(name, "request")[:11]).decode()


def rest_request_id(name: str) -> str:
    return str(uuid.UUID(bytes=_digest(name, "request")[:16], version=4))


def resource_id(resource: str) -> str:
    """A REST resource's id: fixed per resource path, as API Gateway's is per resource."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[byte % len(alphabet)] for byte in _digest(resource, "resource")[:6])


def media_type(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return DEFAULT_CONTENT_TYPE


def is_text(content_type: str) -> bool:
    """Whether an HTTP API passes a body of this media type as text (anything else is base64-encoded)."""
    text = ("application/json", "application/xml", "application/javascript")
    return content_type.startswith("text/") or content_type in text or content_type.endswith(("+json", "+xml"))


def is_rest_binary(content_type: str, binary_media_types: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern.lower()) for pattern in binary_media_types)


def _encoded(body: bytes | str | None, binary: bool) -> tuple[str | None, bool, int | None]:
    """(the event's body, isBase64Encoded, the byte length a Content-Length would state)."""
    if body is None:
        return None, False, None
    raw = body.encode() if isinstance(body, str) else body
    if binary:
        return base64.b64encode(raw).decode(), True, len(raw)
    return raw.decode(), False, len(raw)


def _query_lists(query: Query) -> dict[str, list[str]]:
    return {key: [value] if isinstance(value, str) else list(value) for key, value in query.items()}


def path_parameters(resource: str, path: str) -> dict[str, str] | None:
    """The values of a resource's ``{name}`` and greedy ``{name+}`` variables in ``path``."""
    found: dict[str, str] = {}
    parts, segments = resource.strip("/").split("/"), path.strip("/").split("/")
    for index, part in enumerate(parts):
        if index >= len(segments):
            raise ValueError(f"path '{path}' does not match resource '{resource}'")
        if part.startswith("{") and part.endswith("+}"):
            found[part[1:-2]] = "/".join(segments[index:])
            return found
        if part.startswith("{") and part.endswith("}"):
            found[part[1:-1]] = segments[index]
        elif segments[index] != part:
            raise ValueError(f"path '{path}' does not match resource '{resource}'")
    if len(segments) != len(parts):
        raise ValueError(f"path '{path}' does not match resource '{resource}'")
    return found or None


def http_api_v2(
    name: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    query: Query | None = None,
    route_key: str = "$default",
    user_agent: str = "python-httpx/0.28.1",
) -> Event:
    """An HTTP API event (payload 2.0, ``$default`` stage): headers lower-cased, one value each."""
    epoch_ms = time_epoch_ms(name)
    host = f"{HTTP_API_ID}.execute-api.{REGION}.amazonaws.com"
    sent = {"accept": "*/*", "user-agent": user_agent} | {k.lower(): v for k, v in (headers or {}).items()}
    content, encoded, length = _encoded(body, not is_text(media_type(sent)))
    added = {
        "host": host,
        "x-amzn-trace-id": trace_id(name, epoch_ms),
        "x-forwarded-for": CLIENT_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if length is not None:
        added["content-length"] = str(length)
    all_headers = sent | added
    lists = _query_lists(query or {})
    event: Event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode([(k, v) for k, values in lists.items() for v in values]),
        "headers": dict(sorted(all_headers.items())),
    }
    if lists:
        event["queryStringParameters"] = {k: ",".join(values) for k, values in lists.items()}
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": HTTP_API_ID,
        "domainName": host,
        "domainPrefix": HTTP_API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": CLIENT_IP,
            "userAgent": all_headers["user-agent"],
        },
        "requestId": short_request_id(name),
        "routeKey": route_key,
        "stage": "$default",
        "time": access_log_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    if content is not None:
        event["body"] = content
    event["isBase64Encoded"] = encoded
    return event


def _rest_request(
    name: str,
    *,
    method: str,
    path: str,
    resource: str,
    headers: Mapping[str, str] | None,
    body: bytes | str | None,
    query: Query | None,
    stage: str,
    user_agent: str,
    binary_media_types: Sequence[str],
) -> Event:
    epoch_ms = time_epoch_ms(name)
    host = f"{REST_API_ID}.execute-api.{REGION}.amazonaws.com"
    sent = {"Accept": "*/*", "User-Agent": user_agent} | dict(headers or {})
    binary = is_rest_binary(media_type(sent), binary_media_types)
    content, encoded, length = _encoded(body, binary)
    added = {
        "Host": host,
        "X-Amzn-Trace-Id": trace_id(name, epoch_ms),
        "X-Forwarded-For": CLIENT_IP,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if length is not None and not binary:
        added["Content-Length"] = str(length)
    all_headers = dict(sorted((sent | added).items(), key=lambda item: item[0].lower()))
    lists = _query_lists(query) if query is not None else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {key: [value] for key, value in all_headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in lists.items()} if lists else None,
        "multiValueQueryStringParameters": lists or None,
        "pathParameters": path_parameters(resource, path),
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource_id(resource),
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": short_request_id(name),
            "requestTime": access_log_time(epoch_ms),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": REST_API_ID,
            "requestTimeEpoch": epoch_ms,
            "requestId": rest_request_id(name),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": CLIENT_IP,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": all_headers["User-Agent"],
                "user": None,
            },
            "domainName": host,
            "apiId": REST_API_ID,
        },
        "body": content,
        "isBase64Encoded": encoded,
    }


def rest_v1(
    name: str,
    *,
    method: str,
    path: str,
    resource: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    query: Query | None = None,
    stage: str = "prod",
    user_agent: str = "curl/8.5.0",
    binary_media_types: Sequence[str] = REST_BINARY_MEDIA_TYPES,
) -> Event:
    """A REST API proxy event (payload 1.0): headers as the client spelled them, in both header maps."""
    return _rest_request(
        name, method=method, path=path, resource=resource, headers=headers, body=body, query=query,
        stage=stage, user_agent=user_agent, binary_media_types=binary_media_types,
    )  # fmt: skip


def authorizer_request(
    name: str,
    *,
    method: str,
    path: str,
    resource: str,
    headers: Mapping[str, str] | None = None,
    query: Query | None = None,
    stage: str = "prod",
    user_agent: str = "curl/8.5.0",
) -> Event:
    """A REST API ``REQUEST`` authorizer event: the request without its body, with the method's ARN.
    Absent query strings, path and stage variables are empty maps here, not null as in a proxy event."""
    request = _rest_request(
        name, method=method, path=path, resource=resource, headers=headers, body=None, query=query,
        stage=stage, user_agent=user_agent, binary_media_types=REST_BINARY_MEDIA_TYPES,
    )  # fmt: skip
    arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{REST_API_ID}/{stage}/{method}{path}"
    event: Event = {"type": "REQUEST", "methodArn": arn}
    for key in ("resource", "path", "httpMethod", "headers", "multiValueHeaders"):
        event[key] = request[key]
    for key in ("queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "stageVariables"):
        event[key] = request[key] or {}
    event["requestContext"] = request["requestContext"]
    return event


# --- requests files: a domain's events as JSON ---------------------------------------------------------------

BUILDERS: dict[str, Callable[..., Event]] = {
    "http_api_v2": http_api_v2,
    "rest_v1": rest_v1,
    "authorizer_request": authorizer_request,
}
Request = Mapping[str, Any]


class EventRequestError(ValueError):
    """A requests file's entry names no builder, or arguments its builder does not take."""


def from_request(name: str, request: Request) -> Event:
    """The event ``name`` for one entry of a requests file: ``builder`` (a key of ``BUILDERS``) and that
    builder's keyword arguments as JSON gives them (a text ``body``; ``headers`` and ``query`` as objects)."""
    arguments = dict(request)
    named = arguments.pop("builder", None)
    builder = BUILDERS.get(str(named))
    if builder is None:
        raise EventRequestError(f"event '{name}': builder must be one of {', '.join(BUILDERS)}, got {named!r}")
    try:
        inspect.signature(builder).bind(name, **arguments)
    except TypeError as exc:
        raise EventRequestError(f"event '{name}': {exc} (the arguments of {builder.__name__})") from None
    return builder(name, **arguments)


def read_requests(path: Path) -> dict[str, Request]:
    """A requests file: a JSON object of event name -> request (``from_request``)."""
    requests = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(requests, dict) or not all(isinstance(value, dict) for value in requests.values()):
        raise EventRequestError(f"{path}: expected a JSON object of event name -> request object")
    return requests


def requests_text(requests: Mapping[str, Request]) -> str:
    """A requests file's text, as ``aimass new-domain`` writes it (two-space JSON, one final newline)."""
    return json.dumps(requests, indent=2) + "\n"


def event_text(event: Event) -> str:
    """An event file's text: two-space JSON, keys in the order API Gateway writes them, one final newline."""
    return json.dumps(event, indent=2) + "\n"
