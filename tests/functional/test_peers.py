"""One namespace on AWS: the front function's listings include every other domain function's models.

The peers here are the real vision and rl handlers (functions/<domain>/handler.py over their real models),
invoked in-process with the events the front function sends them; a third peer fails, as a function that
times out or is throttled would. The last test goes the whole way: the text handler, configured as the CDK
app configures the front function, calls a peer through boto3 over HTTP (moto's server stands in for Lambda).
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mangum import Mangum

from aimass.http import offload
from aimass.http.app import create_app
from aimass.http.gateway import listing_event
from aimass.http.peers import Peers
from aimass.lambda_context import LocalLambdaContext
from aimass.serving.boot import load_models
from aimass.settings import PeerSpec, Settings
from tests.conftest import build_domain_models, import_handler, load_event, response_body
from tests.moto_server import MotoServer

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
SPEECH_MODEL = "speech-commands"


@pytest.fixture(scope="module")
def store() -> Path:
    for domain in ("text", "vision", "rl"):
        store = build_domain_models(domain)
    return store


class Functions:
    """Stands in for the Lambda service: invokes the peer handlers by function name and counts the calls."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.events: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append((function, event))
        if function not in self.handlers:
            raise TimeoutError(f"{function} timed out")
        # A real peer runs in its own process; here it runs on the front's worker thread, which has no
        # event loop for Mangum until it is given one.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return self.handlers[function](event, LocalLambdaContext())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


PEERS = (
    PeerSpec(domain="vision", function="aimass-vision", models=("efficientnet-lite0",)),
    PeerSpec(domain="rl", function="aimass-rl", models=("cartpole-ppo",)),
    PeerSpec(domain="speech", function="aimass-speech", models=(SPEECH_MODEL,)),
)


@pytest.fixture
def functions(store: Path, monkeypatch: pytest.MonkeyPatch) -> Functions:
    handlers = {f"aimass-{d}": import_handler(store, monkeypatch, d).handler for d in ("vision", "rl")}
    return Functions(handlers)


def front(store: Path, functions: Functions, clock: Clock) -> Handler:
    settings = Settings(model_store=store, domains=("text",))
    peers = Peers(PEERS, functions.invoke, ttl_s=10.0, clock=clock)
    handler: Handler = Mangum(
        create_app(load_models(settings), settings, offload=offload.inline, peers=peers), lifespan="off"
    )
    return handler


def call(handler: Handler, event: str) -> tuple[int, Any]:
    response = handler(load_event(event), LocalLambdaContext())
    return response["statusCode"], json.loads(response_body(response))


def test_the_index_lists_every_domain_functions_models(store: Path, functions: Functions) -> None:
    status, index = call(front(store, functions, Clock()), "apigw_rest_v1_repository_index")

    assert status == 200
    assert [entry["name"] for entry in index] == sorted(
        ["all-minilm-l6-v2", "cartpole-ppo", "efficientnet-lite0", SPEECH_MODEL]
    )
    by_name = {entry["name"]: entry for entry in index}
    for name in ("all-minilm-l6-v2", "cartpole-ppo", "efficientnet-lite0"):
        assert by_name[name]["state"] == "READY" and by_name[name]["version"], by_name[name]
    # The speech function did not answer: its model is listed, unavailable, with the reason.
    assert by_name[SPEECH_MODEL]["state"] == "UNAVAILABLE"
    assert "domain function 'speech' did not answer: TimeoutError" in by_name[SPEECH_MODEL]["reason"]
    # Each peer was asked once, through its own V2 route, with the client's request id passed on.
    assert sorted(function for function, _ in functions.events) == ["aimass-rl", "aimass-speech", "aimass-vision"]
    sent = load_event("apigw_rest_v1_repository_index")["requestContext"]["requestId"]
    for _, event in functions.events:
        assert (event["httpMethod"], event["path"]) == ("POST", "/v2/repository/index")
        assert event["requestContext"]["requestId"] == sent


def test_models_lists_what_can_be_called(store: Path, functions: Functions) -> None:
    status, listing = call(front(store, functions, Clock()), "apigw_rest_v1_models")

    assert status == 200 and listing["object"] == "list"
    assert [card["id"] for card in listing["data"]] == ["all-minilm-l6-v2", "cartpole-ppo", "efficientnet-lite0"]
    assert all(card["object"] == "model" and card["created"] > 0 for card in listing["data"])


def test_listings_are_cached_for_the_configured_time(store: Path, functions: Functions) -> None:
    clock = Clock()
    handler = front(store, functions, clock)

    call(handler, "apigw_rest_v1_repository_index")
    clock.now = 9.9
    call(handler, "apigw_rest_v1_repository_index")
    assert len(functions.events) == len(PEERS)

    clock.now = 10.0
    call(handler, "apigw_rest_v1_repository_index")
    assert len(functions.events) == 2 * len(PEERS)


def test_a_peer_answering_an_error_is_reported(store: Path, functions: Functions) -> None:
    broken = Functions({"aimass-vision": lambda event, context: {"statusCode": 503, "body": '{"error": "x"}'}})
    status, index = call(front(store, broken, Clock()), "apigw_rest_v1_repository_index")

    assert status == 200
    by_name = {entry["name"]: entry for entry in index}
    assert by_name["efficientnet-lite0"]["state"] == "UNAVAILABLE"
    assert "domain function 'vision' did not answer: status 503" in by_name["efficientnet-lite0"]["reason"]
    assert by_name["all-minilm-l6-v2"]["state"] == "READY"


def test_the_front_handler_asks_its_peers_through_lambda(
    store: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The peer "function" on moto's server answers what the real rl handler answers the front's event.
    rl = import_handler(store, monkeypatch, "rl").handler
    answer = rl(listing_event("POST", "/v2/repository/index", "r-1"), LocalLambdaContext())
    moto.control("config", {"lambda": {"use_docker": False}})
    role = moto.client("iam").create_role(RoleName="peer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "")
    moto.client("lambda").create_function(
        FunctionName="aimass-rl", Role=role, Code={"ZipFile": package.getvalue()}, Runtime="python3.11", Handler="h"
    )
    moto.control("static/lambda-simple/response", {"results": [json.dumps(answer)], "region": "us-east-1"})

    for key, value in moto.environment().items():
        monkeypatch.setenv(key, value)
    peers = [{"domain": "rl", "function": "aimass-rl", "models": ["cartpole-ppo"]}]
    monkeypatch.setenv("AIMASS_PEERS", json.dumps(peers))
    status, index = call(import_handler(store, monkeypatch, "text").handler, "apigw_rest_v1_repository_index")

    assert status == 200
    assert [(entry["name"], entry["state"]) for entry in index] == [
        ("all-minilm-l6-v2", "READY"),
        ("cartpole-ppo", "READY"),
    ]
