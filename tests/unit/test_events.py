"""The API Gateway events in tests/events/: each file is what tests/events/specs.py builds (a hand edit fails),
each passes the event models of Powertools for AWS Lambda's parser, and each is framed as API Gateway frames
it: content-length is the body's byte length, binary bodies are base64-encoded, the times and the trace id
name the same instant, request ids are unique, and a REST event's resource is the one AI Mass's route table
gives its path. The framing checks are written from API Gateway's behaviour, not from the builder's code."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import tomllib
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequest,
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from pydantic import BaseModel

from infra.routes import route_table
from models.catalogue import catalogue
from tests.events.__main__ import render
from tests.events.specs import SPECS

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
NAMES = sorted(path.stem for path in EVENTS.glob("*.json"))
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

Event = dict[str, Any]


def load(name: str) -> Event:
    event: Event = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return event


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


def expected_resource(path: str) -> str:
    """The REST resource API Gateway picks for ``path`` from AI Mass's route table (a literal before the
    longest greedy ``{proxy+}`` prefix), with cdk.json's front (text) and import (tensor) domains."""
    functions = sorted(p.parent for p in (ROOT / "functions").glob("*/Dockerfile") if p.parent.name != "authorizer")
    extra = {f.name: tuple(tomllib.loads((f / "function.toml").read_text())["routes"]) for f in functions}
    routes = [route.path for route in route_table(catalogue(), extra, "text", "tensor")]
    if path in routes:
        return path
    greedy = [route for route in routes if route.endswith("{proxy+}") and path.startswith(route[: -len("{proxy+}")])]
    return max(greedy, key=len)


@pytest.mark.parametrize("name", NAMES)
def test_each_file_is_what_the_builder_writes(name: str) -> None:
    assert name in SPECS, f"tests/events/{name}.json is not in tests/events/specs.py: add its request there"
    assert (EVENTS / f"{name}.json").read_text(encoding="utf-8") == render(name), (
        f"tests/events/{name}.json differs from what tests/events/specs.py builds: "
        "change the spec and run python -m tests.events"
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_event_validates_against_powertools_models(name: str) -> None:
    event = load(name)
    MODELS[kind(event)].model_validate(event)


@pytest.mark.parametrize("name", NAMES)
def test_each_event_is_framed_as_api_gateway_frames_it(name: str) -> None:
    assert framing_problems(load(name)) == []


def test_every_kind_of_event_is_there_and_no_id_repeats() -> None:
    events = {name: load(name) for name in NAMES}
    assert {kind(event) for event in events.values()} == set(MODELS)
    assert duplicates(events) == []


@pytest.mark.parametrize("name", [name for name in NAMES if not name.startswith("apigw_http_v2")])
def test_a_rest_events_resource_is_the_route_tables(name: str) -> None:
    event = load(name)
    assert event["resource"] == expected_resource(event["path"])


def test_the_checks_fail_on_hand_written_mistakes() -> None:
    # GIVEN generated events WHEN each gets a mistake the hand-written files had THEN the checks name it
    binary, rest = load("apigw_http_v2_text_infer_binary"), load("apigw_rest_v1_text_infer")
    wrong_length = copy.deepcopy(binary)
    wrong_length["headers"]["content-length"] = "320"
    assert framing_problems(wrong_length) == ["content-length 320 for a body of 240 bytes"]
    old_trace = copy.deepcopy(binary)
    old_trace["headers"]["x-amzn-trace-id"] = "Root=1-6748a1f2-7d8e9f0a1b2c3d4e5f6a7b8c"  # 2024, timeEpoch 2026
    assert framing_problems(old_trace)[0].startswith("trace id Root=1-6748a1f2")
    sample_id = copy.deepcopy(rest)
    sample_id["requestContext"]["requestId"] = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"  # a version 1 UUID
    assert duplicates({"a": sample_id, "b": copy.deepcopy(sample_id)}) == sorted(
        {
            "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            rest["requestContext"]["extendedRequestId"],
            rest["headers"]["X-Amzn-Trace-Id"],
        }
    )
    as_text = copy.deepcopy(rest)
    as_text["body"], as_text["isBase64Encoded"] = base64.b64decode(rest["body"]).decode(), False
    assert framing_problems(as_text) == ["the REST API (binary media types */*) base64-encodes every body"]
