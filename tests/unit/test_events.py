"""The API Gateway events in tests/events/: each file is what tests/events/specs.py builds (a hand edit fails),
each passes the event models of Powertools for AWS Lambda's parser, and each is framed as API Gateway frames
it: content-length is the body's byte length, binary bodies are base64-encoded, the times and the trace id
name the same instant, request ids are unique, and a REST event's resource is the one AI Mass's route table
gives its path. The framing checks (tests/events/checks.py) are written from API Gateway's behaviour, not from
the builder's code. A domain `aimass new-domain` scaffolded has its requests in tests/events/requests/<domain>.json,
which specs.py reads, so its events are held to all of this too."""

from __future__ import annotations

import base64
import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aimass_tools.events import REQUESTS, EventRequestError, from_request, read_requests
from infra.routes import route_table
from models.catalogue import catalogue
from tests.events.__main__ import render
from tests.events.checks import MODELS, duplicates, framing_problems, kind
from tests.events.specs import SPECS

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
NAMES = sorted(path.stem for path in EVENTS.glob("*.json"))

Event = dict[str, Any]


def load(name: str) -> Event:
    event: Event = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return event


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
    assert name in SPECS, (
        f"tests/events/{name}.json is in neither tests/events/specs.py nor tests/events/requests/: add its request"
    )
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


def test_a_requests_file_holds_its_own_domains_events() -> None:
    # The file's name is the domain's, and its events' names say so (apigw_<kind>_<domain>_<what>), as
    # aimass new-domain writes them and as the payload test finds a domain's events.
    for path in sorted((ROOT / REQUESTS).glob("*.json")):
        assert all(re.fullmatch(rf"apigw_(http_v2|rest_v1)_{path.stem}_\w+", name) for name in read_requests(path))


def test_a_request_naming_no_builder_or_an_unknown_argument_is_refused() -> None:
    with pytest.raises(EventRequestError, match="builder must be one of http_api_v2, rest_v1, authorizer_request"):
        from_request("apigw_http_v2_x_infer", {"builder": "http_api", "method": "POST", "path": "/"})
    # a REST resource on an HTTP API event
    with pytest.raises(EventRequestError, match=r"unexpected keyword argument 'resource'.*http_api_v2"):
        from_request("apigw_http_v2_x_infer", {"builder": "http_api_v2", "method": "GET", "path": "/", "resource": "/"})


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
