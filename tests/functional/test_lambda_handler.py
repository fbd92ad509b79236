"""The text function's Lambda entrypoint, driven by generated API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model; here they are retargeted at the tiny text model. What the handler answers is
held to the same model run directly (its tokenizer and ONNX Runtime, without AI Mass) on the strings the
event carries, and to the app's answer to the same request over HTTP.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from aimass.lambda_context import LocalLambdaContext
from tests.conftest import import_handler, load_event, response_body
from tests.gateway_requests import ask_app, assert_same_answer
from tests.tiny_models import DIM, TINY_TEXT

TEXTS = ["A man is playing a guitar.", "Someone plays an instrument."]
MAX_LENGTH = 16  # the tiny model's manifest keeps a string's first 16 tokens


@pytest.fixture(scope="module")
def handler_module(tiny_store: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(tiny_store, monkeypatch)


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(load_event(name, model=TINY_TEXT), context)
    return response


def header(response: dict[str, Any], name: str) -> str | None:
    headers = response.get("headers") or {}
    assert isinstance(headers, dict)
    found = {k.lower(): v for k, v in headers.items()}.get(name)
    return None if found is None else str(found)


def sent_body(event: dict[str, Any]) -> tuple[str, bytes]:
    """An event's body as its client sent it, with its media type."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = str(event.get("body") or "")
    return headers.get("content-type", ""), base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()


def sent_texts(name: str) -> list[str]:
    """The strings an event's client sent, read from its body as the protocols define it."""
    event = load_event(name)
    media_type, body = sent_body(event)
    if media_type == "application/octet-stream":  # V2's binary extension: the JSON header, length-prefixed strings
        size = int({k.lower(): v for k, v in event["headers"].items()}["inference-header-content-length"])
        texts, offset = [], size
        while offset < len(body):
            (length,) = struct.unpack_from("<I", body, offset)
            texts.append(body[offset + 4 : offset + 4 + length].decode())
            offset += 4 + length
        return texts
    document = json.loads(body)
    found: list[str] = document["inputs"][0]["data"] if "inputs" in document else document["input"]
    return found


def direct_embeddings(store: Path, texts: list[str]) -> npt.NDArray[np.float32]:
    """The tiny model's embeddings of ``texts``, from its own files: its tokenizer, then ONNX Runtime."""
    directory = store / TINY_TEXT / "1"
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    ids = [tokenizer.encode(text).ids[:MAX_LENGTH] for text in texts]
    width = max(len(row) for row in ids)
    input_ids = np.array([row + [0] * (width - len(row)) for row in ids], dtype=np.int64)
    mask = np.array([[1] * len(row) + [0] * (width - len(row)) for row in ids], dtype=np.int64)
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    (vectors,) = session.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": mask})
    return np.asarray(vectors, dtype=np.float32)


def test_the_events_carry_the_sentences() -> None:
    # The oracle below reads the strings from each event itself; these are the ones the events were made with.
    for name in ("apigw_rest_v1_text_infer", "apigw_http_v2_text_infer", "apigw_http_v2_text_embeddings"):
        assert sent_texts(name) == TEXTS
    for name in ("apigw_rest_v1_text_infer_binary", "apigw_http_v2_text_infer_binary"):
        assert sent_texts(name) == TEXTS


@pytest.mark.parametrize("event", ["apigw_rest_v1_text_infer", "apigw_http_v2_text_infer"])
def test_v2_json_infer_through_both_gateway_kinds(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, tiny_store: Path, event: str
) -> None:
    # GIVEN a V2 JSON inference event WHEN the handler answers it
    response = invoke(handler_module, event, lambda_context)
    # THEN it is the V2 response with the model's embedding of each string, tagged with the request id
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert body["model_name"] == TINY_TEXT and body["model_version"] == "1" and body["id"] == "req-1"
    (output,) = body["outputs"]
    assert output["shape"] == [2, DIM] and output["datatype"] == "FP32"
    vectors = np.array(output["data"], dtype=np.float32).reshape(2, DIM)
    np.testing.assert_allclose(vectors, direct_embeddings(tiny_store, sent_texts(event)), atol=1e-6)
    assert header(response, "x-request-id")


@pytest.mark.parametrize("event", ["apigw_rest_v1_text_infer_binary", "apigw_http_v2_text_infer_binary"])
def test_v2_binary_infer_round_trips_base64_bodies(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, tiny_store: Path, event: str
) -> None:
    response = invoke(handler_module, event, lambda_context)
    assert response["statusCode"] == 200, response
    # Binary responses go back base64-encoded, as API Gateway requires.
    assert response["isBase64Encoded"] is True
    raw = response_body(response)
    size = int(header(response, "inference-header-content-length") or 0)
    document = json.loads(raw[:size])
    (output,) = document["outputs"]
    assert output["parameters"]["binary_data_size"] == 2 * DIM * 4 == len(raw) - size
    vectors = np.frombuffer(raw[size:], dtype="<f4").reshape(2, DIM)
    np.testing.assert_allclose(vectors, direct_embeddings(tiny_store, sent_texts(event)), atol=1e-6)


def test_openai_embeddings_event(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, tiny_store: Path
) -> None:
    response = invoke(handler_module, "apigw_http_v2_text_embeddings", lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    texts = sent_texts("apigw_http_v2_text_embeddings")
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    np.testing.assert_allclose(
        [item["embedding"] for item in body["data"]], direct_embeddings(tiny_store, texts), atol=1e-6
    )
    tokenizer = Tokenizer.from_file(str(tiny_store / TINY_TEXT / "1" / "tokenizer.json"))
    tokens = sum(min(len(tokenizer.encode(text).ids), MAX_LENGTH) for text in texts)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert header(response, "x-model-version") == "1"


@pytest.mark.parametrize(
    "event",
    [
        "apigw_rest_v1_text_infer", "apigw_http_v2_text_infer", "apigw_rest_v1_text_infer_binary",
        "apigw_http_v2_text_infer_binary", "apigw_http_v2_text_embeddings", "apigw_rest_v1_text_model_metadata",
        "apigw_http_v2_text_bad_json",
    ],
)  # fmt: skip
def test_each_event_is_answered_as_the_app_answers_the_same_request_over_http(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, client: TestClient, event: str
) -> None:
    # GIVEN a recorded event WHEN the function answers it and the app (over the same store) the request it carries,
    # read from the event without Mangum
    recorded = load_event(event, model=TINY_TEXT)
    response = handler_module.handler(recorded, lambda_context)
    # THEN both answer the same status, media type and body
    assert_same_answer(response, ask_app(client, recorded))


def test_metadata_event_uses_gateway_request_id(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    response = invoke(handler_module, "apigw_rest_v1_text_model_metadata", lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response_body(response))["inputs"][0]["datatype"] == "BYTES"
    # The request id is API Gateway's own, so that logs on both sides line up.
    gateway_id = load_event("apigw_rest_v1_text_model_metadata")["requestContext"]["requestId"]
    assert header(response, "x-request-id") == gateway_id


def test_malformed_json_event_is_a_400_naming_the_body(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    response = invoke(handler_module, "apigw_http_v2_text_bad_json", lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response_body(response))["error"]
    assert error["param"] == "body" and "not valid JSON" in error["message"]


def with_headers(event: dict[str, object], **changes: str | None) -> dict[str, object]:
    """The event with headers replaced (None: removed) in both of a REST event's header maps."""
    for field, wrap in (("headers", str), ("multiValueHeaders", lambda value: [value])):
        headers = event.get(field)
        if not isinstance(headers, dict):
            continue
        for name, value in changes.items():
            header = name.replace("_", "-")
            for key in [k for k in headers if k.lower() == header]:
                del headers[key]
            if value is not None:
                headers[header] = wrap(value)
    return event


@pytest.mark.parametrize(
    "event", ["apigw_rest_v1_text_infer", "apigw_http_v2_text_infer", "apigw_http_v2_text_embeddings"]
)
@pytest.mark.parametrize("content_type", ["text/plain", "image/png"])
def test_a_json_body_in_another_media_type_is_415_through_the_gateway(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str, content_type: str
) -> None:
    request = with_headers(load_event(event, model=TINY_TEXT), content_type=content_type)
    response = handler_module.handler(request, lambda_context)
    assert response["statusCode"] == 415, response
    body = json.loads(response_body(response))
    message = body["error"] if isinstance(body["error"], str) else body["error"]["message"]
    assert f"got '{content_type}'" in message


@pytest.mark.parametrize("event", ["apigw_rest_v1_text_infer_binary", "apigw_http_v2_text_infer_binary"])
def test_a_binary_event_without_content_type_is_served(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    request = with_headers(load_event(event, model=TINY_TEXT), content_type=None)
    assert handler_module.handler(request, lambda_context)["statusCode"] == 200


@pytest.mark.parametrize("written", ["+152", "1_52", "152 "])
def test_a_content_length_that_is_not_decimal_digits_is_400(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, written: str
) -> None:
    request = with_headers(load_event("apigw_http_v2_text_infer", model=TINY_TEXT), content_length=written)
    response = handler_module.handler(request, lambda_context)
    assert response["statusCode"] == 400, response
    body = json.loads(response_body(response))
    assert f"Content-Length must be decimal digits, got '{written}'" in body["error"]
