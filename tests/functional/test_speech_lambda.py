"""The speech function's Lambda entrypoint, driven by generated API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model, speech-commands, and carry espeak-ng speech by speakers the model never
heard in training (recorded with models/speech/commands/synth.py); here they are retargeted at the tiny tone
model, which cannot recognise speech but must still be handed every word of it. The V2 answer is held to what
the tiny model computes for the event's waveform without ONNX Runtime; every answer to the app's answer to the
same request over HTTP.
"""

from __future__ import annotations

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
from tests.gateway_requests import ask_app, assert_same_answer, http_request
from tests.tiny_speech import CLIP, LABELS, TINY_SPEECH, build_tiny_speech, reference_probabilities

REAL_MODEL = "speech-commands"


def request_id(response: dict[str, Any]) -> str:
    # HTTP API (v2) responses carry single-valued headers, REST (v1) responses multi-valued ones.
    single = (response.get("headers") or {}).get("x-request-id")
    return str(single or (response.get("multiValueHeaders") or {})["x-request-id"][0])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("speech-lambda-store")
    build_tiny_speech(store)
    return store


@pytest.fixture(scope="module")
def handler_module(store: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "speech")


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=store, domains=("speech",))), raise_server_exceptions=False) as app:
        yield app


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(load_event(name, model=TINY_SPEECH, recorded=REAL_MODEL), context)
    return response


@pytest.mark.parametrize(
    ("event", "spoken"),
    [("apigw_http_v2_speech_transcribe", 4), ("apigw_rest_v1_speech_transcribe_multipart", 3)],
)
def test_transcribe_events_through_both_gateway_kinds(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str, spoken: int
) -> None:
    # GIVEN a transcription request event (JSON with a WAV; a multipart form with a FLAC file)
    # WHEN the handler answers it
    response = invoke(handler_module, event, lambda_context)
    # THEN it is the task envelope, with every spoken word cut out and given one of the model's labels
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["model"] == TINY_SPEECH and body["model_version"] == "1"
    outputs = body["outputs"]
    assert len(outputs["words"]) == spoken and {w["word"] for w in outputs["words"]} <= set(LABELS)
    assert outputs["duration"] > 1.0
    assert body["usage"]["seconds"] >= 2
    assert body["request_id"] == request_id(response)


def test_v2_binary_infer_event(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    name = "apigw_rest_v1_speech_infer_binary"
    response = invoke(handler_module, name, lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["id"] == "req-7" and body["model_name"] == TINY_SPEECH
    # THEN the probabilities are the model's for the waveform the event carries (its binary FP32 tensor)
    sent = http_request(load_event(name))
    size = int(dict((k.lower(), v) for k, v in sent.headers)["inference-header-content-length"])
    waveform = np.frombuffer(sent.body[size:], dtype="<f4").reshape(-1, CLIP)
    (output,) = body["outputs"]
    assert output["shape"] == [len(waveform), len(LABELS)]
    probabilities = np.array(output["data"]).reshape(output["shape"])
    np.testing.assert_allclose(probabilities, reference_probabilities(waveform), rtol=1e-4, atol=1e-7)
    assert body["parameters"] == {"seconds": 1}
    # The request id is API Gateway's own, so that logs on both sides line up.
    assert request_id(response) == load_event(name)["requestContext"]["requestId"]


@pytest.mark.parametrize(
    "event",
    [
        "apigw_http_v2_speech_transcribe", "apigw_rest_v1_speech_transcribe_multipart",
        "apigw_rest_v1_speech_infer_binary", "apigw_http_v2_speech_transcribe_bad_file",
    ],
)  # fmt: skip
def test_each_event_is_answered_as_the_app_answers_the_same_request_over_http(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, client: TestClient, event: str
) -> None:
    # GIVEN a recorded event WHEN the function answers it and the app (over the same store) the request it carries,
    # read from the event without Mangum
    recorded = load_event(event, model=TINY_SPEECH, recorded=REAL_MODEL)
    response = handler_module.handler(recorded, lambda_context)
    # THEN both answer the same status, media type and body
    assert_same_answer(response, ask_app(client, recorded))


def test_a_file_that_is_not_audio_is_a_400_naming_the_field(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    response = invoke(handler_module, "apigw_http_v2_speech_transcribe_bad_file", lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response_body(response))["error"]
    assert error["param"] == "file" and "is not a WAV, FLAC, OGG or MP3 file" in error["message"]
