"""The vision function's Lambda entrypoint, driven by generated API Gateway REST (v1) and HTTP API (v2) events.

The events name the real model, efficientnet-lite0, and carry small plain-colour images; here they are
retargeted at the tiny colour classifier. Its answers are held to what the tiny model computes for each
image's colour without ONNX Runtime (a plain image stays plain through cropping and resizing, and the model
pools it to that colour), read from the images the event carries, and to the app's answer to the same
request over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings
from tests.conftest import import_handler, load_event, response_body
from tests.gateway_requests import ask_app, assert_same_answer, http_request
from tests.tiny_vision import LABELS, TINY_VISION, build_tiny_vision, reference_logits

REAL_MODEL = "efficientnet-lite0"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("vision-lambda-store")
    build_tiny_vision(store)
    return store


@pytest.fixture(scope="module")
def handler_module(store: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(store, monkeypatch, "vision")


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=store, domains=("vision",))), raise_server_exceptions=False) as app:
        yield app


def invoke(module: ModuleType, name: str, context: LocalLambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(load_event(name, model=TINY_VISION, recorded=REAL_MODEL), context)
    assert response["statusCode"] == 200, response
    return response


def sent_images(name: str) -> list[bytes]:
    """The image files an event's client sent, read from its body as each protocol defines it."""
    request = http_request(load_event(name))
    media_type = dict((k.lower(), v) for k, v in request.headers)["content-type"]
    if media_type.startswith("multipart/form-data"):
        form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {media_type}\r\n\r\n".encode() + request.body)
        parts = [part for part in form.iter_parts() if part.get_param("name", header="content-disposition") == "images"]
        return [bytes(part.get_payload(decode=True)) for part in parts]
    if media_type == "application/octet-stream":  # V2's binary extension: the JSON header, length-prefixed items
        size = int(dict((k.lower(), v) for k, v in request.headers)["inference-header-content-length"])
        images, offset = [], size
        while offset < len(request.body):
            (length,) = struct.unpack_from("<I", request.body, offset)
            images.append(request.body[offset + 4 : offset + 4 + length])
            offset += 4 + length
        return images
    document = json.loads(request.body)
    encoded = document["inputs"][0]["data"] if "inputs" in document else document["images"]
    return [base64.b64decode(item) for item in encoded]


def expected_logits(images: list[bytes]) -> npt.NDArray[np.float32]:
    """The tiny model's logits for plain-colour images, from each image's one colour."""
    rows = []
    for data in images:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1, 3)
        assert (pixels == pixels[0]).all(), "the oracle holds for plain-colour images only"
        red, green, blue = (int(value) for value in pixels[0])
        rows.append(reference_logits((red, green, blue)))
    return np.stack(rows)


def expected_classes(images: list[bytes], top_k: int) -> list[list[tuple[str, float]]]:
    """Each image's top ``top_k`` labels with their softmax scores, best first."""
    answers = []
    for logits in expected_logits(images).astype(np.float64):
        scores = np.exp(logits - logits.max())
        scores /= scores.sum()
        order = np.argsort(-scores)[:top_k]
        answers.append([(LABELS[i], float(scores[i])) for i in order])
    return answers


def assert_classified(body: dict[str, Any], expected: list[list[tuple[str, float]]]) -> None:
    answered = [[(entry["label"], entry["score"]) for entry in answer] for answer in body["outputs"]]
    assert [[label for label, _ in answer] for answer in answered] == [[label for label, _ in a] for a in expected]
    for answer, wanted in zip(answered, expected, strict=True):
        np.testing.assert_allclose([score for _, score in answer], [score for _, score in wanted], rtol=1e-5)


def test_the_events_carry_a_red_and_a_green_image() -> None:
    for name in ("apigw_rest_v1_vision_infer", "apigw_http_v2_vision_infer_binary"):
        assert expected_logits(sent_images(name)).argmax(axis=1).tolist() == [0, 1]
    assert expected_logits(sent_images("apigw_http_v2_vision_classify")).argmax(axis=1).tolist() == [0]


def test_v2_json_infer_through_the_rest_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    # GIVEN a V2 JSON request with plain-colour PNGs, base64-encoded WHEN the handler answers it
    body = json.loads(response_body(invoke(handler_module, "apigw_rest_v1_vision_infer", lambda_context)))
    # THEN each image's logits are the model's for its colour
    (output,) = body["outputs"]
    images = sent_images("apigw_rest_v1_vision_infer")
    assert body["id"] == "req-1" and body["parameters"] == {"images": len(images)}
    assert output["shape"] == [len(images), len(LABELS)]
    logits = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    np.testing.assert_allclose(logits, expected_logits(images), atol=1e-5)


def test_v2_binary_infer_through_the_http_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    # GIVEN raw PNG bytes in the binary tensor extension, base64-encoded by API Gateway
    response = invoke(handler_module, "apigw_http_v2_vision_infer_binary", lambda_context)
    # THEN the binary logits come back base64-encoded, as API Gateway requires, and are the model's
    assert response["isBase64Encoded"] is True
    raw = response_body(response)
    size = int({k.lower(): v for k, v in response["headers"].items()}["inference-header-content-length"])
    images = sent_images("apigw_http_v2_vision_infer_binary")
    (output,) = json.loads(raw[:size])["outputs"]
    assert output["parameters"] == {"binary_data_size": len(images) * len(LABELS) * 4}
    logits = np.frombuffer(raw[size:], dtype="<f4").reshape(len(images), len(LABELS))
    np.testing.assert_allclose(logits, expected_logits(images), atol=1e-5)


def test_classify_json_through_the_http_api(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    body = json.loads(response_body(invoke(handler_module, "apigw_http_v2_vision_classify", lambda_context)))
    assert body["model"] == TINY_VISION and body["usage"] == {"images": 1}
    expected = expected_classes(sent_images("apigw_http_v2_vision_classify"), top_k=2)
    assert_classified(body, expected)


def test_classify_multipart_through_the_rest_api(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN a multipart form (two image parts and top_k 3), which API Gateway passes on base64-encoded
    name = "apigw_rest_v1_vision_classify_multipart"
    body = json.loads(response_body(invoke(handler_module, name, lambda_context)))
    # THEN both images are classified, all three classes each, under the gateway's request id
    assert body["request_id"] == load_event(name)["requestContext"]["requestId"]
    expected = expected_classes(sent_images(name), top_k=3)
    assert_classified(body, expected)


@pytest.mark.parametrize(
    "event",
    [
        "apigw_rest_v1_vision_infer", "apigw_http_v2_vision_infer_binary", "apigw_http_v2_vision_classify",
        "apigw_rest_v1_vision_classify_multipart",
    ],
)  # fmt: skip
def test_each_event_is_answered_as_the_app_answers_the_same_request_over_http(
    handler_module: ModuleType, lambda_context: LocalLambdaContext, client: TestClient, event: str
) -> None:
    # GIVEN a recorded event WHEN the function answers it and the app (over the same store) the request it carries,
    # read from the event without Mangum
    recorded = load_event(event, model=TINY_VISION, recorded=REAL_MODEL)
    response = handler_module.handler(recorded, lambda_context)
    # THEN both answer the same status, media type and body
    assert_same_answer(response, ask_app(client, recorded))


def test_a_text_file_is_a_400_naming_the_image(handler_module: ModuleType, lambda_context: LocalLambdaContext) -> None:
    event = load_event("apigw_http_v2_vision_classify", model=TINY_VISION, recorded=REAL_MODEL)
    event["body"] = json.dumps({"images": [base64.b64encode(b"not an image\n").decode()]})
    response = handler_module.handler(event, lambda_context)
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["param"] == "images[0]" and "images[0] is not an image this server reads" in error["message"]
