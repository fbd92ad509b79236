"""The text function's Lambda entrypoint, driven by recorded API Gateway REST (v1) and HTTP API (v2) events."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aimass.lambda_context import LocalLambdaContext
from tests.conftest import import_handler, load_event
from tests.tiny_models import DIM, TINY_TEXT

TEXTS = ["A man is playing a guitar.", "Someone plays an instrument."]


@pytest.fixture(scope="module")
def handler_module(tiny_store: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(tiny_store, monkeypatch)


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, object]:
    response: dict[str, object] = module.handler(load_event(name, model=TINY_TEXT), context)
    return response


def header(response: dict[str, object], name: str) -> str | None:
    headers = response.get("headers") or {}
    assert isinstance(headers, dict)
    found = {k.lower(): v for k, v in headers.items()}.get(name)
    return None if found is None else str(found)


@pytest.mark.parametrize("event", ["apigw_rest_v1_text_infer", "apigw_http_v2_text_infer"])
def test_v2_json_infer_through_both_gateway_kinds(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    # GIVEN a recorded V2 JSON inference event WHEN the handler answers it
    response = invoke(handler_module, event, lambda_context)
    # THEN it is the V2 response with one embedding per string, tagged with the request id
    assert response["statusCode"] == 200, response
    body = json.loads(str(response["body"]))
    assert body["model_name"] == TINY_TEXT and body["model_version"] == "1" and body["id"] == "req-1"
    (output,) = body["outputs"]
    assert output["shape"] == [2, DIM]
    assert header(response, "x-request-id")


@pytest.mark.parametrize("event", ["apigw_rest_v1_text_infer_binary", "apigw_http_v2_text_infer_binary"])
def test_v2_binary_infer_round_trips_base64_bodies(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    response = invoke(handler_module, event, lambda_context)
    assert response["statusCode"] == 200, response
    # Binary responses go back base64-encoded, as API Gateway requires.
    assert response["isBase64Encoded"] is True
    raw = base64.b64decode(str(response["body"]))
    size = int(header(response, "inference-header-content-length") or 0)
    document = json.loads(raw[:size])
    (output,) = document["outputs"]
    assert output["parameters"]["binary_data_size"] == 2 * DIM * 4
    vectors = np.frombuffer(raw[size:], dtype="<f4").reshape(2, DIM)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_openai_embeddings_event(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    response = invoke(handler_module, "apigw_http_v2_text_embeddings", lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(str(response["body"]))
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == DIM
    assert body["usage"]["prompt_tokens"] > 0
    assert header(response, "x-model-version") == "1"


def test_metadata_event_uses_gateway_request_id(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    response = invoke(handler_module, "apigw_rest_v1_text_model_metadata", lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(str(response["body"]))["inputs"][0]["datatype"] == "BYTES"
    assert header(response, "x-request-id") == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_malformed_json_event_is_a_400_naming_the_body(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    response = invoke(handler_module, "apigw_http_v2_text_bad_json", lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(str(response["body"]))["error"]
    assert error["param"] == "body" and "not valid JSON" in error["message"]


def test_binary_bytes_encoding_matches_the_protocol() -> None:
    # The recorded binary event carries the strings length-prefixed, little-endian, as V2 specifies.
    event = load_event("apigw_rest_v1_text_infer_binary")
    raw = base64.b64decode(event["body"])
    size = int(event["headers"]["Inference-Header-Content-Length"])
    (length,) = struct.unpack_from("<I", raw, size)
    assert raw[size + 4 : size + 4 + length].decode() == TEXTS[0]


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
    body = json.loads(str(response["body"]))
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
    body = json.loads(str(response["body"]))
    assert f"Content-Length must be decimal digits, got '{written}'" in body["error"]
