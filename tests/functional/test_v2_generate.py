"""V2's generate extension over the tiny decoder: held to its numpy reference, streamed, refused, metered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.serving.boot import load_models
from aimass.serving.registry import ModelRegistry
from aimass.settings import Plan, Settings
from tests.tiny_llm import (
    EOS_ID,
    TINY_LLM,
    VOCAB,
    build_tiny_llm,
    fault_at,
    post_and_leave,
    reference_greedy,
    words,
)
from tests.tiny_models import TINY_TEXT, build_tiny_text

GENERATE = f"/v2/models/{TINY_LLM}/generate"
STREAM = f"/v2/models/{TINY_LLM}/generate_stream"
TEXT = "the cat sat on"
PROMPT = [VOCAB.index(word) for word in TEXT.split()]
GREEDY: dict[str, Any] = {"temperature": 0}
PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generate-store")
    build_tiny_llm(root)
    build_tiny_text(root)
    return root


@pytest.fixture(scope="module")
def registry(store: Path) -> ModelRegistry:
    return load_models(Settings(model_store=store))


@pytest.fixture(scope="module")
def client(store: Path, registry: ModelRegistry) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=store), registry=registry), raise_server_exceptions=False) as test:
        yield test


def generate(client: TestClient, path: str = GENERATE, **parameters: Any) -> dict[str, Any]:
    response = client.post(path, json={"text_input": TEXT, "parameters": parameters})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stream_events(client: TestClient, **parameters: Any) -> list[dict[str, Any]]:
    response = client.post(STREAM, json={"text_input": TEXT, "parameters": parameters})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = response.text.split("\n\n")
    assert frames[-1] == "" and all(frame.startswith("data: ") for frame in frames[:-1])
    return [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]


def test_greedy_text_is_the_references_continuation_of_the_plain_text(client: TestClient) -> None:
    expected = reference_greedy(PROMPT, 10)
    body = generate(client, max_tokens=10, **GREEDY)
    finish = "stop" if expected[-1] == EOS_ID else "length"
    assert body == {
        "model_name": TINY_LLM,
        "model_version": "1",
        "text_output": words(expected),
        "parameters": {
            "finish_reason": finish,
            "prompt_tokens": len(PROMPT),
            "completion_tokens": len(expected),
            "tokens": len(PROMPT) + len(expected),
        },
    }


def test_a_pinned_version_answers_and_no_limit_writes_the_models_default(client: TestClient) -> None:
    body = generate(client, f"/v2/models/{TINY_LLM}/versions/1/generate", **GREEDY)
    assert body["model_version"] == "1"
    assert body["text_output"] == words(reference_greedy(PROMPT, 16))  # the manifest's default_max_tokens


def test_a_stop_sequence_ends_the_text_before_it(client: TestClient) -> None:
    full = generate(client, max_tokens=10, **GREEDY)["text_output"]
    stop = full.split()[3]
    body = generate(client, max_tokens=10, stop=[stop], **GREEDY)
    assert body["text_output"] == full[: full.index(stop)] and body["parameters"]["finish_reason"] == "stop"


def test_streamed_pieces_join_into_the_whole_answer(client: TestClient) -> None:
    for parameters in ({"max_tokens": 9, **GREEDY}, {"max_tokens": 12, "temperature": 1.5, "seed": 7, "top_p": 0.9}):
        whole = generate(client, **parameters)
        events = stream_events(client, **parameters)
        assert len(events) > 1
        assert all(e["model_name"] == TINY_LLM and e["model_version"] == "1" for e in events)
        assert "".join(e["text_output"] for e in events) == whole["text_output"]
        # Only the last event says why the text ended and what it counted.
        assert [e.get("parameters") for e in events[:-1]] == [None] * (len(events) - 1)
        assert events[-1]["parameters"] == whole["parameters"]


def test_a_seed_repeats_a_sampled_text_and_another_seed_differs(client: TestClient) -> None:
    first = generate(client, max_tokens=12, temperature=1.5, seed=7)["text_output"]
    assert generate(client, max_tokens=12, temperature=1.5, seed=7)["text_output"] == first
    assert generate(client, max_tokens=12, temperature=1.5, seed=8)["text_output"] != first


@pytest.mark.parametrize("path", [GENERATE, STREAM])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"text_input": TEXT, "parameters": {"max_tokens": 4, "top_k": 5, "beam_width": 2}}, ["top_k", "beam_width"]),
        ({"text_input": TEXT, "parameters": {"temperature": 3}}, ["parameters.temperature"]),
        ({"text_input": TEXT, "parameters": {"top_p": 0}}, ["parameters.top_p"]),
        ({"text_input": TEXT, "parameters": {"max_tokens": 0}}, ["parameters.max_tokens"]),
        ({"text_input": TEXT, "parameters": {"max_tokens": "4"}}, ["parameters.max_tokens"]),
        ({"text_input": TEXT, "parameters": {"max_tokens": 61}}, ["parameters.max_tokens=61", "4 tokens", "64 tokens"]),
        ({"text_input": TEXT, "parameters": {"stop": ["a", "b", "c", "d", "e"]}}, ["parameters.stop"]),
        ({"text_input": TEXT, "parameters": {"stop": [""]}}, ["parameters.stop"]),
        ({"text_input": TEXT, "stream": True}, ["stream"]),
        ({"parameters": {}}, ["text_input"]),
        ({"text_input": 5}, ["text_input"]),
        ({"text_input": "   "}, ["text_input"]),
        ({"text_input": "sky " * 70}, ["70 tokens", "context of 64 tokens"]),
    ],
)
def test_bad_requests_are_400s_naming_what_is_wrong_in_the_v2_shape(
    client: TestClient, path: str, body: dict[str, Any], named: list[str]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str)
    assert all(name in error["error"] for name in named), error


@pytest.mark.parametrize("route", ["generate", "generate_stream"])
def test_a_model_that_writes_no_text_is_a_400_naming_it(client: TestClient, route: str) -> None:
    response = client.post(f"/v2/models/{TINY_TEXT}/{route}", json={"text_input": TEXT})
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert f"model '{TINY_TEXT}'" in message and TINY_LLM in message


def test_unknown_models_and_versions_are_404s(client: TestClient) -> None:
    unknown = client.post("/v2/models/nope/generate", json={"text_input": TEXT})
    pinned = client.post(f"/v2/models/{TINY_LLM}/versions/9/generate_stream", json={"text_input": TEXT})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    assert pinned.status_code == 404 and "version '9'" in pinned.json()["error"]


def test_the_document_says_a_stream_is_server_sent_events(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        whole = paths[f"{prefix}/generate"]["post"]["responses"]["200"]["content"]
        streamed = paths[f"{prefix}/generate_stream"]["post"]["responses"]["200"]["content"]
        assert whole == {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateResponse"}}}
        assert streamed == {"text/event-stream": {"schema": {"$ref": "#/components/schemas/GenerateStreamEvent"}}}


def test_an_error_after_the_stream_started_is_its_last_event_in_the_v2_shape(
    client: TestClient, registry: ModelRegistry
) -> None:
    with fault_at(registry.get(TINY_LLM), 3):  # the prompt and a step (two tokens), then the fault
        response = client.post(STREAM, json={"text_input": TEXT, "parameters": {"max_tokens": 9, "temperature": 0}})
    assert response.status_code == 200
    events = [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [("text_output" in e) for e in events] == [True, True, False]
    assert events[-1] == {"error": "internal error; quote the request id when reporting it"}


# --- metering -------------------------------------------------------------------------------------


def test_whole_and_streamed_answers_are_each_billed_once(store: Path, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = Settings(model_store=store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS)
    issued = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    client = TestClient(build_app(settings, registry=registry))
    headers = {"Authorization": f"Bearer {issued.clear_text}"}
    body = {"text_input": TEXT, "parameters": {"max_tokens": 5, **GREEDY}}
    whole = client.post(GENERATE, json=body, headers=headers)
    streamed = client.post(STREAM, json=body, headers=headers)
    assert whole.status_code == 200 and streamed.status_code == 200, (whole.text, streamed.text)
    written = whole.json()["parameters"]["completion_tokens"]
    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    records = list(usage.query(now - timedelta(days=1), now + timedelta(days=1)))
    routes = ["POST /v2/models/{name}/generate", "POST /v2/models/{name}/generate_stream"]
    assert sorted(record.route for record in records) == routes
    for record in records:
        assert record.billed and record.status == 200 and record.model == TINY_LLM
        assert (record.unit, record.units) == ("tokens", len(PROMPT) + written)


# --- a client that leaves -------------------------------------------------------------------------


def test_a_client_that_leaves_stops_the_generation(registry: ModelRegistry, store: Path) -> None:
    runtime: Any = registry.get(TINY_LLM)
    steps: list[float] = []
    real_step = runtime.step

    def slow_step(*args: Any) -> Any:
        steps.append(time.perf_counter())
        time.sleep(0.02)
        return real_step(*args)

    app: FastAPI = build_app(Settings(model_store=store), registry=registry)
    body = json.dumps({"text_input": TEXT, "parameters": {"max_tokens": 50}}).encode()

    runtime.step = slow_step
    try:
        sent = post_and_leave(app, STREAM, body)
        time.sleep(0.1)  # a step in flight when the client left ends on its thread
    finally:
        del runtime.step
    assert sent[0]["status"] == 200
    assert 1 <= len(steps) < 10, len(steps)
