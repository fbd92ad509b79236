"""A function's cold path imports only what its first request needs. The rl handler, imported in a fresh
interpreter as a new Lambda container would, answers a V2 inference without importing FastAPI, the ASGI stack
(Mangum, Starlette's app, asyncio) or any module below (each one cost the cold start of every function before it
was made lazy); the first request no hot route takes (a
model's V2 metadata, the docs page) builds the FastAPI app then, and a chat request imports its protocol on first
need, each answered through the same handler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_event
from tests.events.specs import RL_MODEL
from tests.rl_cold_start import cold_start
from tests.tiny_rl import TINY_RL, build_tiny_rl

# Not on the cold path of a function without keys, peers or batches, whose first request is an inference.
OFF_THE_COLD_PATH = (
    "pydantic_settings",  # aimass.env_source reads the settings
    "fastapi",  # aimass.http.lean: built for the first request no hot route takes
    # aimass.http.lambda_direct answers an inference from the event: no ASGI, so none of the web stack
    "mangum",
    "asyncio",
    "anyio",
    "starlette.requests",
    "starlette.applications",
    "starlette.routing",
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "aimass.protocol.openai_chat",  # the lazy hot routes' protocols (aimass.http.hot_routes.LazyRoutes)
    "aimass.protocol.v2_generate",
    "aimass.protocol.generating",
    "aimass.protocol.tasks",
    "aimass.protocol.openai_audio",
    "aimass.http.sse",
    "aimass.http.peers",  # a front function's
    "aimass.metering.service",  # a function's with keys
    "aimass.metering.keys",
    "aimass.observability",
    "aimass.batches",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("lean-rl-store")
    build_tiny_rl(store)
    return store


def recorded(name: str) -> dict[str, Any]:
    event: dict[str, Any] = load_event(name, model=TINY_RL, recorded=RL_MODEL)
    return event


def at(name: str, path: str) -> dict[str, Any]:
    """The recorded REST event ``name``, sent to ``path`` instead."""
    event = recorded(name)
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    return event


def imported(answer: dict[str, Any], name: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for module in answer["modules"])


def run_handler(store: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return cold_start(store, events).answers


def test_hot_routes_answer_without_fastapi_and_the_rest_builds_it_on_first_need(store: Path) -> None:
    # GIVEN a fresh interpreter WHEN it imports the rl handler and answers an inference event, then the model's
    # V2 metadata and the docs page (FastAPI routes), then one more inference event
    metadata = at("apigw_rest_v1_models", f"/v2/models/{TINY_RL}")
    docs = at("apigw_rest_v1_models", "/docs")
    infer = recorded("apigw_rest_v1_rl_infer")
    loaded, first, described, page, again = run_handler(store, [infer, metadata, docs, infer])
    # THEN FastAPI is not imported until the first request that needs it, and each answer is the right one
    assert not imported(loaded, "fastapi")
    assert not imported(first, "fastapi") and first["response"]["statusCode"] == 200, first
    assert json.loads(first["response"]["body"])["model_name"] == TINY_RL
    assert imported(described, "fastapi") and described["response"]["statusCode"] == 200, described
    body = json.loads(described["response"]["body"])
    assert body["name"] == TINY_RL and body["platform"] and body["inputs"][0]["name"] == "observation"
    assert page["response"]["statusCode"] == 200 and "swagger" in page["response"]["body"].lower(), page
    assert again["response"]["body"] == first["response"]["body"]


def test_the_first_inference_imports_nothing_it_does_not_need(store: Path) -> None:
    # GIVEN a fresh interpreter WHEN it imports the rl handler and answers a V2 inference, then a chat request
    infer = recorded("apigw_rest_v1_rl_infer")
    chat = at("apigw_rest_v1_rl_infer", "/v1/chat/completions")
    chat["body"] = json.dumps({"model": TINY_RL, "messages": [{"role": "user", "content": "hi"}]})
    _, first, chatted = run_handler(store, [infer, chat])
    # THEN the inference is answered with none of them imported
    assert first["response"]["statusCode"] == 200
    assert [name for name in OFF_THE_COLD_PATH if imported(first, name)] == []
    # AND the chat route imports its protocol on its first request, which it answers (an rl model does not chat)
    assert imported(chatted, "aimass.protocol.openai_chat")
    assert 400 <= chatted["response"]["statusCode"] < 500
