"""What AI Mass reads from an API Gateway proxy event, and the listing events it makes (``aimass.http.gateway``)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Scope

from aimass.http import gateway
from tests.conftest import load_event


def _scope(event: Any) -> Scope:
    return {"type": "http", "path": "/v1/models", "aws.event": event}


@pytest.mark.parametrize("name", ["apigw_rest_v1_models", "apigw_http_v2_text_infer"])
def test_an_api_gateway_event_carries_its_request_id_and_no_peer_marker(name: str) -> None:
    event = load_event(name)
    scope = _scope(event)
    assert gateway.request_id(scope) == event["requestContext"]["requestId"]
    assert not gateway.from_peer(scope)


def test_a_listing_event_is_a_peers() -> None:
    event = gateway.listing_event("POST", "/v2/repository/index", "r-1")
    scope = _scope(event)
    assert gateway.request_id(scope) == "r-1"
    assert gateway.from_peer(scope)
    assert (event["httpMethod"], event["path"], event["body"]) == ("POST", "/v2/repository/index", "{}")
    assert gateway.listing_event("GET", "/v1/models", "r-2")["body"] is None


def test_outside_api_gateway_there_is_nothing_to_read() -> None:
    for scope in ({"type": "http"}, _scope(None), _scope({"requestContext": "text"}), _scope({"requestContext": {}})):
        assert gateway.request_context(scope) == {}
        assert gateway.request_id(scope) is None
        assert not gateway.from_peer(scope)


def test_only_the_marker_itself_makes_a_peer() -> None:
    # A truthy value that is not True (a string a client could have put anywhere else) is not the marker.
    assert not gateway.from_peer(_scope({"requestContext": {gateway.PEER_MARKER: "true"}}))
    assert gateway.request_id(_scope({"requestContext": {"requestId": ""}})) is None
