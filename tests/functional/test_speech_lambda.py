"""The speech function's Lambda entrypoint, driven by recorded API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model, speech-commands, and carry espeak-ng speech by speakers the model never
heard in training (recorded with models/speech/commands/synth.py); here they are retargeted at the tiny tone
model, which cannot recognise speech but must still be handed every word of it.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from aimass.lambda_context import LocalLambdaContext
from tests.conftest import import_handler, load_event, response_body
from tests.tiny_speech import LABELS, TINY_SPEECH, build_tiny_speech

REAL_MODEL = "speech-commands"


def request_id(response: dict[str, Any]) -> str:
    # HTTP API (v2) responses carry single-valued headers, REST (v1) responses multi-valued ones.
    single = (response.get("headers") or {}).get("x-request-id")
    return str(single or (response.get("multiValueHeaders") or {})["x-request-id"][0])


@pytest.fixture(scope="module")
def handler_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    store = tmp_path_factory.mktemp("speech-lambda-store")
    build_tiny_speech(store)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "speech")


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
    # GIVEN a recorded transcription request (JSON with a WAV; a multipart form with a FLAC file)
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
    response = invoke(handler_module, "apigw_rest_v1_speech_infer_binary", lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["id"] == "req-7" and body["model_name"] == TINY_SPEECH
    (output,) = body["outputs"]
    assert output["shape"] == [1, len(LABELS)]
    assert sum(output["data"]) == pytest.approx(1.0, abs=1e-5)
    assert body["parameters"] == {"seconds": 1}
    # The request id is API Gateway's own, so that logs on both sides line up.
    assert request_id(response) == load_event("apigw_rest_v1_speech_infer_binary")["requestContext"]["requestId"]


def test_a_file_that_is_not_audio_is_a_400_naming_the_field(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    response = invoke(handler_module, "apigw_http_v2_speech_transcribe_bad_file", lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response_body(response))["error"]
    assert error["param"] == "file" and "is not a WAV, FLAC, OGG or MP3 file" in error["message"]
