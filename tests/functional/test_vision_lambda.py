"""The vision function's Lambda entrypoint, driven by recorded API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model, efficientnet-lite0, and carry small plain-colour images; here they are
retargeted at the tiny colour classifier, which must see red as red.
"""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from aimass.lambda_context import LocalLambdaContext
from tests.conftest import import_handler, load_event, response_body
from tests.tiny_vision import TINY_VISION, build_tiny_vision

REAL_MODEL = "efficientnet-lite0"


@pytest.fixture(scope="module")
def handler_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    store = tmp_path_factory.mktemp("vision-lambda-store")
    build_tiny_vision(store)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "vision")


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(load_event(name, model=TINY_VISION, recorded=REAL_MODEL), context)
    assert response["statusCode"] == 200, response
    return response


def test_v2_json_infer_through_the_rest_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    # GIVEN a recorded V2 JSON request with a red and a green PNG, base64-encoded WHEN the handler answers it
    body = json.loads(response_body(invoke(handler_module, "apigw_rest_v1_vision_infer", lambda_context)))
    # THEN each image's logits rank its own colour first
    (output,) = body["outputs"]
    assert body["id"] == "req-1" and body["parameters"] == {"images": 2} and output["shape"] == [2, 3]
    assert np.array(output["data"]).reshape(2, 3).argmax(axis=1).tolist() == [0, 1]


def test_v2_binary_infer_through_the_http_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    # GIVEN raw PNG bytes in the binary tensor extension, base64-encoded by API Gateway
    response = invoke(handler_module, "apigw_http_v2_vision_infer_binary", lambda_context)
    # THEN the binary logits come back base64-encoded, as API Gateway requires
    assert response["isBase64Encoded"] is True
    raw = response_body(response)
    size = int({k.lower(): v for k, v in response["headers"].items()}["inference-header-content-length"])
    (output,) = json.loads(raw[:size])["outputs"]
    assert output["parameters"] == {"binary_data_size": 2 * 3 * 4}
    assert np.frombuffer(raw[size:], dtype="<f4").reshape(2, 3).argmax(axis=1).tolist() == [0, 1]


def test_classify_json_through_the_http_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    body = json.loads(response_body(invoke(handler_module, "apigw_http_v2_vision_classify", lambda_context)))
    assert body["model"] == TINY_VISION and body["usage"] == {"images": 1}
    assert [entry["label"] for entry in body["outputs"][0]] == ["red", "green"]  # top_k 2


def test_classify_multipart_through_the_rest_api(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN a multipart form (two image parts and top_k), which API Gateway passes on base64-encoded
    body = json.loads(response_body(invoke(handler_module, "apigw_rest_v1_vision_classify_multipart", lambda_context)))
    # THEN both images are classified, all three classes each, under the gateway's request id
    assert body["request_id"] == "7e2f8a1b-9c3d-4e5f-8a6b-7c8d9e0f1a2b"
    assert [answer[0]["label"] for answer in body["outputs"]] == ["red", "green"]
    assert [len(answer) for answer in body["outputs"]] == [3, 3]


def test_a_text_file_is_a_400_naming_the_image(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    event = load_event("apigw_http_v2_vision_classify", model=TINY_VISION, recorded=REAL_MODEL)
    event["body"] = json.dumps({"images": [base64.b64encode(b"not an image\n").decode()]})
    response = handler_module.handler(event, lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["param"] == "images[0]" and "images[0] is not an image this server reads" in error["message"]
