"""One namespace on AWS: the front function's listings include every other domain function's models.

The front function is the real text handler (functions/text/handler.py), configured as the CDK app configures
it (AIMASS_PEERS). It asks its peers through its own boto3 Lambda client, pointed at a local Lambda Invoke
endpoint (tests/lambda_invoke_api.py) whose functions are the real vision and rl handlers over their models:
each peer handler answers, over real HTTP, the exact payload the front function sent. The front's listing is
held to what the peers answered. Another peer fails as a function that runs past its timeout does, another
answers an error status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimass.http.gateway import PEER_MARKER, PEER_TENANT
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import PeerSpec
from tests.conftest import import_handler, load_event, response_body
from tests.lambda_invoke_api import Handler, Invocation, LambdaService, lambda_service
from tests.tiny_models import TINY_TEXT, build_tiny_text
from tests.tiny_rl import TINY_RL, build_tiny_rl
from tests.tiny_vision import TINY_VISION, build_tiny_vision

TINY_SPEECH = "tiny-speech"  # catalogued for the speech peer, which never answers here
PEERS = (
    PeerSpec(domain="vision", function="aimass-vision", models=(TINY_VISION,)),
    PeerSpec(domain="rl", function="aimass-rl", models=(TINY_RL,)),
    PeerSpec(domain="speech", function="aimass-speech", models=(TINY_SPEECH,)),
)
INDEX = "apigw_rest_v1_repository_index"
MODELS = "apigw_rest_v1_models"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("peers-store")
    build_tiny_text(store)
    build_tiny_vision(store)
    build_tiny_rl(store)
    return store


@pytest.fixture(scope="module")
def peer_handlers(store: Path) -> dict[str, Handler]:
    """The vision and rl functions' real handlers, each over its own domain's models."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {f"aimass-{domain}": import_handler(store, monkeypatch, domain).handler for domain in ("vision", "rl")}


def timed_out(event: dict[str, Any], context: Any) -> Any:
    raise TimeoutError(f"RequestId: {context.aws_request_id} Error: Task timed out after 3.00 seconds")


@pytest.fixture
def service(peer_handlers: dict[str, Handler]) -> Iterator[LambdaService]:
    with lambda_service({**peer_handlers, "aimass-speech": timed_out}) as running:
        yield running


def front(store: Path, service: LambdaService, monkeypatch: pytest.MonkeyPatch, cache_s: float = 10.0) -> Handler:
    """The text function's handler as a new container imports it, configured as the front function."""
    for variable, value in service.environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AIMASS_PEERS", json.dumps([peer.model_dump() for peer in PEERS]))
    monkeypatch.setenv("AIMASS_PEER_CACHE_S", str(cache_s))
    handler: Handler = import_handler(store, monkeypatch, "text").handler
    return handler


def call(handler: Handler, event: str) -> tuple[int, Any]:
    response = handler(load_event(event), LocalLambdaContext())
    return response["statusCode"], json.loads(response_body(response))


def answered(invocation: Invocation) -> Any:
    """The JSON body of what a peer's handler answered."""
    assert invocation.answer["statusCode"] == 200, invocation.answer
    return json.loads(response_body(invocation.answer))


def assert_listing_event(event: dict[str, Any], method: str, path: str, request_id: str) -> None:
    """A REST proxy event of the client's listing call, marked as the front function's, under its request id."""
    assert (event["httpMethod"], event["path"], event["resource"]) == (method, path, path)
    context = event["requestContext"]
    assert (context["httpMethod"], context["path"], context["requestId"]) == (method, path, request_id)
    assert context[PEER_MARKER] is True and PEER_TENANT not in context  # metering off: no caller's tenant
    assert (event["body"], event["isBase64Encoded"]) == ("{}" if method == "POST" else None, False)


def test_the_index_lists_every_domain_functions_models_as_each_peer_answered(
    store: Path, service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the front function with three peers WHEN a client asks for the repository index
    status, index = call(front(store, service, monkeypatch), INDEX)
    assert status == 200
    assert [entry["name"] for entry in index] == sorted([TINY_TEXT, TINY_RL, TINY_VISION, TINY_SPEECH])
    by_name = {entry["name"]: entry for entry in index}
    # THEN each peer was invoked once, with the client's listing as a peer's REST event under its request id
    client_id = load_event(INDEX)["requestContext"]["requestId"]
    for function in ("aimass-vision", "aimass-rl", "aimass-speech"):
        (invocation,) = service.of(function)
        assert_listing_event(invocation.event, "POST", "/v2/repository/index", client_id)
    # AND the peers' models are listed exactly as the peers' handlers answered that event
    for function, model in (("aimass-vision", TINY_VISION), ("aimass-rl", TINY_RL)):
        (invocation,) = service.of(function)
        (entry,) = answered(invocation)
        assert entry == by_name[model] and (entry["state"], entry["version"]) == ("READY", "1")
    assert (by_name[TINY_TEXT]["state"], by_name[TINY_TEXT]["version"]) == ("READY", "1")
    # AND the peer that timed out is listed unavailable, with the reason
    assert by_name[TINY_SPEECH]["state"] == "UNAVAILABLE"
    assert by_name[TINY_SPEECH]["reason"] == "domain function 'speech' did not answer: PeerError"


def test_models_lists_what_can_be_called_as_each_peer_answered(
    store: Path, service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, listing = call(front(store, service, monkeypatch), MODELS)

    assert status == 200 and listing["object"] == "list"
    assert [card["id"] for card in listing["data"]] == [TINY_RL, TINY_TEXT, TINY_VISION]
    cards = {card["id"]: card for card in listing["data"]}
    client_id = load_event(MODELS)["requestContext"]["requestId"]
    for function, model in (("aimass-vision", TINY_VISION), ("aimass-rl", TINY_RL)):
        (invocation,) = service.of(function)
        assert_listing_event(invocation.event, "GET", "/v1/models", client_id)
        (card,) = answered(invocation)["data"]
        assert card == cards[model]
    assert all(card["object"] == "model" and card["created"] > 0 for card in listing["data"])


@pytest.mark.parametrize(("cache_s", "asked"), [(3600.0, 1), (0.0, 2)])
def test_listings_are_cached_for_the_configured_time(
    store: Path, service: LambdaService, monkeypatch: pytest.MonkeyPatch, cache_s: float, asked: int
) -> None:
    handler = front(store, service, monkeypatch, cache_s=cache_s)
    call(handler, INDEX)
    call(handler, INDEX)
    assert len(service.invocations) == asked * len(PEERS)


def test_a_peer_answering_an_error_is_reported(
    store: Path, peer_handlers: dict[str, Handler], monkeypatch: pytest.MonkeyPatch
) -> None:
    def overloaded(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 503, "headers": {"content-type": "application/json"}, "body": '{"error": "x"}'}

    # GIVEN a vision function answering 503, and no function of the speech peer's name at all
    with lambda_service({"aimass-vision": overloaded, "aimass-rl": peer_handlers["aimass-rl"]}) as service:
        status, index = call(front(store, service, monkeypatch), INDEX)

    assert status == 200
    by_name = {entry["name"]: entry for entry in index}
    assert by_name[TINY_VISION]["state"] == "UNAVAILABLE"
    assert by_name[TINY_VISION]["reason"] == "domain function 'vision' did not answer: status 503"
    assert by_name[TINY_SPEECH]["reason"] == "domain function 'speech' did not answer: ResourceNotFoundException"
    assert by_name[TINY_RL]["state"] == by_name[TINY_TEXT]["state"] == "READY"
