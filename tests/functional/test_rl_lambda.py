"""The rl function's Lambda entrypoint, driven by generated API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model, cartpole-ppo; here they are retargeted at the tiny linear policy, whose
answers are known exactly; every answer is also held to the app's answer to the same request over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings
from tests.conftest import import_handler, load_event, response_body
from tests.gateway_requests import ask_app, assert_same_answer
from tests.tiny_rl import TINY_RL, build_tiny_rl, reference_logits, reference_probabilities

REAL_MODEL = "cartpole-ppo"
# The two observations every rl event in tests/events carries.
OBSERVATIONS = [[0.0123, -0.0456, 0.0312, 0.0871], [-0.4021, 0.3377, -0.0614, -0.5123]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("rl-lambda-store")
    build_tiny_rl(store)
    return store


@pytest.fixture(scope="module")
def handler_module(store: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "rl")


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=store, domains=("rl",))), raise_server_exceptions=False) as app:
        yield app


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(load_event(name, model=TINY_RL, recorded=REAL_MODEL), context)
    return response


@pytest.mark.parametrize("event", ["apigw_rest_v1_rl_infer", "apigw_http_v2_rl_infer"])
def test_v2_json_infer_through_both_gateway_kinds(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    # GIVEN a V2 JSON event with two observations WHEN the handler answers it
    response = invoke(handler_module, event, lambda_context)
    # THEN it is the V2 response with the policy's logits and probabilities for each
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["model_name"] == TINY_RL and body["id"] == "req-rl-1" and body["parameters"] == {"observations": 2}
    outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in body["outputs"]}
    np.testing.assert_allclose(outputs["logits"], reference_logits(OBSERVATIONS), atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"], reference_probabilities(OBSERVATIONS), atol=1e-6)


@pytest.mark.parametrize("event", ["apigw_rest_v1_rl_infer_binary", "apigw_http_v2_rl_infer_binary"])
def test_v2_binary_infer_round_trips_base64_bodies(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    response = invoke(handler_module, event, lambda_context)
    assert response["statusCode"] == 200, response
    # Binary responses go back base64-encoded, as API Gateway requires.
    assert response["isBase64Encoded"] is True
    raw = response_body(response)
    headers = {key.lower(): value for key, value in response["headers"].items()}
    size = int(headers["inference-header-content-length"])
    logits_doc, probabilities_doc = json.loads(raw[:size])["outputs"]
    assert logits_doc["parameters"] == probabilities_doc["parameters"] == {"binary_data_size": 16}
    tensors = np.frombuffer(raw[size:], dtype="<f4").reshape(2, 2, 2)
    np.testing.assert_allclose(tensors[0], reference_logits(OBSERVATIONS), atol=1e-6)
    np.testing.assert_allclose(tensors[1], reference_probabilities(OBSERVATIONS), atol=1e-6)


@pytest.mark.parametrize("event", ["apigw_rest_v1_rl_act", "apigw_http_v2_rl_act"])
def test_act_task_through_both_gateway_kinds(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    response = invoke(handler_module, event, lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert (body["model"], body["usage"]) == (TINY_RL, {"observations": 2})
    expected = reference_probabilities(OBSERVATIONS)
    assert body["outputs"]["actions"] == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(body["outputs"]["probabilities"], expected, atol=1e-6)


def test_rest_events_carry_the_gateway_request_id(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    response = invoke(handler_module, "apigw_rest_v1_rl_act", lambda_context)
    sent = load_event("apigw_rest_v1_rl_act")["requestContext"]["requestId"]
    assert json.loads(response_body(response))["request_id"] == sent


def test_a_nan_observation_is_a_400_naming_its_row(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN an event whose JSON body holds a NaN literal (Python's json writes them)
    response = invoke(handler_module, "apigw_http_v2_rl_act_bad_nan", lambda_context)
    # THEN the client learns which value of which row, and what was expected
    assert response["statusCode"] == 400, response
    error = json.loads(response_body(response))["error"]
    assert error["param"] == "observations[1]" and error["code"] == "invalid_input"
    assert error["message"] == (
        "observations[1][1] (cart_velocity) is nan; expected a finite number within the float32 range"
    )


def test_the_binary_event_holds_the_observations() -> None:
    event = load_event("apigw_rest_v1_rl_infer_binary")
    raw = base64.b64decode(event["body"])
    size = int(event["headers"]["Inference-Header-Content-Length"])
    np.testing.assert_array_equal(
        np.frombuffer(raw[size:], dtype="<f4").reshape(2, 4), np.asarray(OBSERVATIONS, dtype=np.float32)
    )


@pytest.mark.parametrize(
    "event",
    [
        "apigw_rest_v1_rl_infer", "apigw_http_v2_rl_infer", "apigw_rest_v1_rl_infer_binary",
        "apigw_http_v2_rl_infer_binary", "apigw_rest_v1_rl_act", "apigw_http_v2_rl_act", "apigw_http_v2_rl_act_bad_nan",
    ],
)  # fmt: skip
def test_each_event_is_answered_as_the_app_answers_the_same_request_over_http(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, client: TestClient, event: str
) -> None:
    # GIVEN a recorded event WHEN the function answers it and the app (over the same store) the request it carries,
    # read from the event without Mangum
    recorded = load_event(event, model=TINY_RL, recorded=REAL_MODEL)
    response = handler_module.handler(recorded, lambda_context)
    # THEN both answer the same status, media type and body
    assert_same_answer(response, ask_app(client, recorded))
