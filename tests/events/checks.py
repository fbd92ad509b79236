"""Whether an API Gateway event is framed as API Gateway frames it, written from API Gateway's behaviour and not
from the builder's code (``aimass_tools.events``), so a builder mistake shows: ``framing_problems`` for one
event, ``duplicates`` for ids that several share, ``MODELS`` for Powertools' event model of each ``kind``.

``tests/unit/test_events.py`` runs them over ``tests/events/``; ``tests/integration/test_new_domain.py`` over the
events of freshly scaffolded domains.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequest,
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from pydantic import BaseModel

Event = dict[str, Any]
MODELS: dict[str, type[BaseModel]] = {
    "http_v2": APIGatewayProxyEventV2Model,
    "rest_v1": APIGatewayProxyEventModel,
    "authorizer": ApiGatewayAuthorizerRequest,
}
SHORT_ID = re.compile(r"^[A-Za-z0-9+/]{15}=$")  # HTTP API requestId, REST extendedRequestId: "JkK1VgWBIAMEbTA="
TRACE = re.compile(r"^Root=1-(?P<seconds>[0-9a-f]{8})-[0-9a-f]{24}$")
# What an HTTP API passes as text; the media types AI Mass's clients send as bytes must arrive base64-encoded.
V2_TEXT = ("application/json", "text/")
V2_BINARY = ("application/octet-stream", "multipart/", "image/", "audio/")


def kind(event: Event) -> str:
    return "authorizer" if event.get("type") == "REQUEST" else "http_v2" if event.get("version") == "2.0" else "rest_v1"


def _instant(text: str) -> int:
    return int(datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp())


def framing_problems(event: Event) -> list[str]:
    """What in ``event`` API Gateway would not have written (empty: nothing)."""
    problems: list[str] = []
    headers = {name.lower(): value for name, value in event["headers"].items()}
    context, v2 = event["requestContext"], kind(event) == "http_v2"
    body, encoded = event.get("body"), bool(event.get("isBase64Encoded"))
    try:
        raw = None if body is None else base64.b64decode(body, validate=True) if encoded else body.encode()
    except binascii.Error:
        return [f"isBase64Encoded but the body is not base64: {str(body)[:40]!r}"]
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw is not None:
        if "content-length" in headers and headers["content-length"] != str(len(raw)):
            problems.append(f"content-length {headers['content-length']} for a body of {len(raw)} bytes")
        if v2 and "content-length" not in headers:
            problems.append("an HTTP API passes content-length with every body")
        if v2 and media.startswith(V2_BINARY) and not encoded:
            problems.append(f"an HTTP API base64-encodes a {media} body")
        if v2 and media.startswith(V2_TEXT) and encoded:
            problems.append(f"an HTTP API passes a {media} body as text")
        # infra/constructs/api.py: binary media types */*, so a REST API encodes every body, and drops its length.
        if not v2 and not encoded:
            problems.append("the REST API (binary media types */*) base64-encodes every body")
        if not v2 and "content-length" in headers:
            problems.append("a REST API drops Content-Length from a body it treats as binary")
        if "inference-header-content-length" in headers:
            size = int(headers["inference-header-content-length"])
            if size > len(raw) or not isinstance(json.loads(raw[:size]), dict):
                problems.append(f"Inference-Header-Content-Length {size} is not the JSON header's length")
        if media == "multipart/form-data":
            boundary = headers["content-type"].split("boundary=", 1)[1].encode()
            if not (raw.startswith(b"--" + boundary + b"\r\n") and raw.endswith(b"--" + boundary + b"--\r\n")):
                problems.append("the multipart body is not delimited by its content-type's boundary")
    epoch_ms = context["timeEpoch"] if v2 else context["requestTimeEpoch"]
    logged = context["time"] if v2 else context["requestTime"]
    if _instant(logged) != epoch_ms // 1000:
        problems.append(f"time {logged} is not epoch {epoch_ms} ms")
    trace = TRACE.match(headers.get("x-amzn-trace-id", ""))
    if trace is None or int(trace["seconds"], 16) != epoch_ms // 1000:
        problems.append(f"trace id {headers.get('x-amzn-trace-id')} does not carry the request's second")
    if headers["host"] != context["domainName"]:
        problems.append("host is not the API's domain name")
    return problems + (_v2_problems(event, headers) if v2 else _rest_problems(event))


def _v2_problems(event: Event, headers: dict[str, str]) -> list[str]:
    context, problems = event["requestContext"], []
    if not SHORT_ID.match(context["requestId"]):
        problems.append(f"requestId {context['requestId']} is not an HTTP API's (16 characters of base64)")
    if event["routeKey"] != context["routeKey"]:
        problems.append(f"routeKey {event['routeKey']} and the context's {context['routeKey']} differ")
    if event["rawPath"] != context["http"]["path"]:
        problems.append("rawPath is not requestContext.http.path")
    if (
        headers["x-forwarded-for"] != context["http"]["sourceIp"]
        or headers["user-agent"] != context["http"]["userAgent"]
    ):
        problems.append("x-forwarded-for and user-agent are not the context's sourceIp and userAgent")
    if any(name != name.lower() for name in event["headers"]):
        problems.append("an HTTP API lower-cases header names")
    return problems


def _rest_problems(event: Event) -> list[str]:
    context, problems = event["requestContext"], []
    if str(uuid.UUID(context["requestId"])) != context["requestId"]:
        problems.append(f"requestId {context['requestId']} is not a REST API's (a UUID)")
    if not SHORT_ID.match(context["extendedRequestId"]):
        problems.append(f"extendedRequestId {context['extendedRequestId']} is not 16 characters of base64")
    if context["path"] != f"/{context['stage']}{event['path']}" or context["httpMethod"] != event["httpMethod"]:
        problems.append("the context's path and method are not the request's")
    if context["resourcePath"] != event["resource"]:
        problems.append("resourcePath is not resource")
    if event["multiValueHeaders"] != {name: [value] for name, value in event["headers"].items()}:
        problems.append("multiValueHeaders does not hold the headers")
    if event["headers"]["X-Forwarded-For"] != context["identity"]["sourceIp"]:
        problems.append("X-Forwarded-For is not the identity's sourceIp")
    if kind(event) == "authorizer":
        arn = f"arn:aws:execute-api:eu-west-1:{context['accountId']}:{context['apiId']}/{context['stage']}/"
        if event["methodArn"] != f"{arn}{event['httpMethod']}{event['path']}":
            problems.append(f"methodArn {event['methodArn']} is not the request's method and path")
    return problems


def duplicates(events: dict[str, Event]) -> list[str]:
    """Request ids, extended request ids and trace ids that more than one event holds."""
    seen: Counter[str] = Counter()
    for event in events.values():
        context = event["requestContext"]
        trace = {name.lower(): value for name, value in event["headers"].items()}["x-amzn-trace-id"]
        seen.update({context["requestId"], context.get("extendedRequestId") or context["requestId"], trace})
    return sorted(value for value, count in seen.items() if count > 1)
