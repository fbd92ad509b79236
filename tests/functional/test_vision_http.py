"""The vision domain over HTTP, against the tiny colour classifier: V2 inference and the classify task."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from aimass.store.manifest import TensorSpec
from tests.tiny_vision import LABELS, PREPROCESSING, TINY_VISION, build_tiny_vision, image_bytes, reference_logits

INFER = f"/v2/models/{TINY_VISION}/infer"
CLASSIFY = "/v1/vision/classify"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(scope="module")
def vision_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("vision-store")
    build_tiny_vision(store)
    build_tiny_vision(store, "tiny-vision-unlabelled", labels=("red", "green"))  # 3 outputs, 2 labels
    build_tiny_vision(store, "tiny-vision-wrong-size", preprocessing={**PREPROCESSING, "image_size": 64})
    return store


@pytest.fixture(scope="module")
def client(vision_store: Path) -> Iterator[TestClient]:
    settings = Settings(model_store=vision_store, domains=("vision",), max_body_bytes=256 * 1024, max_batch_items=8)
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_input(data: list[str], **extra: object) -> dict[str, object]:
    return {"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data, **extra}


def test_model_metadata_describes_the_served_tensors(client: TestClient) -> None:
    meta = client.get(f"/v2/models/{TINY_VISION}").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["parameters"] == {"domain": "vision", "task": "classification", "serving_version": "1"}


def test_json_infer_takes_base64_images_and_returns_logits(client: TestClient) -> None:
    # GIVEN a red PNG and a green one, base64-encoded because V2 JSON carries BYTES as strings
    images = [b64(image_bytes(RED)), b64(image_bytes(GREEN, size=(17, 90)))]
    # WHEN they are inferred
    response = client.post(INFER, json={"id": "v-1", "inputs": [image_input(images)]})
    # THEN the logits are the tiny model's for those colours, and the images are counted
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "v-1" and body["parameters"] == {"images": 2}
    (output,) = body["outputs"]
    assert output["name"] == "logits" and output["shape"] == [2, 3]
    got = np.array(output["data"], dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, np.stack([reference_logits(RED), reference_logits(GREEN)]), atol=1e-5)


def test_binary_infer_takes_raw_image_bytes(client: TestClient) -> None:
    # GIVEN raw JPEG and WebP bytes in the binary tensor extension (what tritonclient sends by default)
    images = [image_bytes(BLUE, fmt="JPEG", quality=95), image_bytes(RED, fmt="WEBP", lossless=True)]
    blob = b"".join(len(data).to_bytes(4, "little") + data for data in images)
    document = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(blob)}}],
        "parameters": {"binary_data_output": True},
    }
    header = json.dumps(document).encode()
    # WHEN they are inferred with binary output
    response = client.post(INFER, content=header + blob, headers={"Inference-Header-Content-Length": str(len(header))})
    # THEN the logits come back as little-endian float32 and rank the right colour first
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    logits = np.frombuffer(response.content[size:], dtype="<f4").reshape(2, 3)
    assert logits.argmax(axis=1).tolist() == [2, 0]
    np.testing.assert_allclose(logits[1], reference_logits(RED), atol=1e-5)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([image_input([""])], "image[0] is empty; expected the bytes of a JPEG, PNG, WebP or GIF image"),
        ([image_input(["hello world"])], "image[0] is not an image this server reads"),
        ([image_input([b64(image_bytes()), b64(b"%PDF-1.7\n")])], "image[1] is not an image this server reads"),
        ([image_input([b64(image_bytes()[:70])])], "image[0] is a damaged PNG image"),
        ([image_input([b64(bytes(20_001))])], "image[0] is 20001 bytes; at most 20000 are accepted"),
        ([image_input([b64(image_bytes(size=(600, 500)))])], "image[0] is 600x500 = 300000 pixels; at most 250000"),
        ([image_input(["AAAA"], datatype="UINT8")], "'image' must have datatype BYTES, got UINT8"),
        ([image_input(["AAAA"], shape=[1, 1])], "'image' has shape [1, 1]; expected [-1]"),
        ([{"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 1, 3], "data": [1, 2, 3]}], "not an input"),
    ],
)
def test_bad_images_get_a_400_that_names_the_image(client: TestClient, inputs: list[object], expected: str) -> None:
    response = client.post(INFER, json={"inputs": inputs})
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_classify_answers_each_images_classes_by_probability(client: TestClient) -> None:
    # GIVEN three images of the three colours the tiny model knows
    images = [b64(image_bytes(colour)) for colour in (RED, GREEN, BLUE)]
    # WHEN they are classified with the default top_k (5, more than the model's 3 classes)
    response = client.post(CLASSIFY, json={"images": images})
    # THEN each gets every class, most probable first, with softmax scores, in the task envelope
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["model_version"], body["usage"]) == (TINY_VISION, "1", {"images": 3})
    assert body["request_id"] == response.headers["x-request-id"]
    assert [answer[0]["label"] for answer in body["outputs"]] == list(LABELS)
    for answer, colour in zip(body["outputs"], (RED, GREEN, BLUE), strict=True):
        scores = [entry["score"] for entry in answer]
        assert len(answer) == 3 and scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0)
        logits = reference_logits(colour)
        expected = np.exp(logits) / np.exp(logits).sum()
        for entry in answer:
            assert entry["label"] == LABELS[entry["index"]]
            assert entry["score"] == pytest.approx(float(expected[entry["index"]]), abs=1e-6)


def test_classify_takes_a_multipart_form(client: TestClient) -> None:
    files = [("images", ("b.gif", image_bytes(BLUE, fmt="GIF"))), ("images", ("g.png", image_bytes(GREEN)))]
    response = client.post(CLASSIFY, data={"top_k": "1", "model": TINY_VISION}, files=files)
    assert response.status_code == 200, response.text
    assert [[entry["label"] for entry in answer] for answer in response.json()["outputs"]] == [["blue"], ["green"]]


@pytest.mark.parametrize(
    ("body", "param", "expected"),
    [
        ({"images": []}, "images", "List should have at least 1 item"),
        ({"images": ["***"]}, "images.0", "not valid base64"),
        ({"images": [b64(image_bytes()), b64(image_bytes()[:70])]}, "images[1]", "images[1] is a damaged PNG image"),
        ({"images": [b64(b"")]}, "images[0]", "images[0] is empty"),
        ({"images": [b64(image_bytes())], "top_k": 0}, "top_k", "greater than or equal to 1"),
        ({"images": [b64(image_bytes())], "top_k": 1001}, "top_k", "less than or equal to 1000"),
        ({"images": [b64(image_bytes())], "threshold": 0.5}, "threshold", "Extra inputs are not permitted"),
    ],
)
def test_bad_classify_requests_name_the_field(
    client: TestClient, body: dict[str, object], param: str, expected: str
) -> None:
    response = client.post(CLASSIFY, json={"model": TINY_VISION, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and expected in error["message"]


def test_more_images_than_a_request_may_carry_is_413_saying_how_to_send_a_batch(client: TestClient) -> None:
    # GIVEN more images than V2 (max_batch_items, 8 here) or the classify task (32) answers at once
    over_v2 = client.post(INFER, json={"inputs": [image_input(["AAAA"] * 9)]})
    over_task = client.post(CLASSIFY, json={"model": TINY_VISION, "images": [b64(image_bytes(size=(8, 8)))] * 33})
    # THEN each is a 413 naming the limit and how to run it as a batch, before any image is decoded
    assert over_v2.status_code == 413, over_v2.text
    assert "inputs[0] 'image' has 9 items; at most 8" in over_v2.json()["error"]
    assert over_task.status_code == 413, over_task.text
    error = over_task.json()["error"]
    assert error["param"] == "images" and "33 images; at most 32" in error["message"]
    assert "Prefer: respond-async" in error["message"]


def test_classify_is_documented_with_its_request_model(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][CLASSIFY]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ClassifyRequest"
    }
    assert "multipart/form-data" in operation["requestBody"]["content"]


def test_models_whose_graph_and_manifest_disagree_are_not_served(client: TestClient) -> None:
    states = {entry["name"]: entry for entry in client.post("/v2/repository/index", json={}).json()}
    assert states[TINY_VISION]["state"] == "READY"
    assert "one manifest label per class" in states["tiny-vision-unlabelled"]["reason"]
    assert "FP32 [-1, 3, 64, 64] graph input" in states["tiny-vision-wrong-size"]["reason"]


def test_decoded_pixels_are_served_beside_encoded_images_over_http(tmp_path: Path) -> None:
    # GIVEN a manifest that serves encoded images or decoded UINT8 [n, H, W, 3] pixels, both optional
    pixels_spec = TensorSpec(name="pixels", datatype="UINT8", shape=(-1, -1, -1, 3), optional=True)
    image_spec = TensorSpec(name="image", datatype="BYTES", shape=(-1,), optional=True)
    build_tiny_vision(tmp_path, inputs=(image_spec, pixels_spec))
    with TestClient(build_app(Settings(model_store=tmp_path))) as pixels_client:
        # WHEN decoded pixels are sent THEN they are cropped, resized and classified like a decoded image
        pixels = np.zeros((2, 20, 30, 3), dtype=np.uint8)
        pixels[0, ..., 1] = 255
        pixels[1, ..., 2] = 255
        tensor = {"name": "pixels", "datatype": "UINT8", "shape": [2, 20, 30, 3], "data": pixels.ravel().tolist()}
        response = pixels_client.post(f"/v2/models/{TINY_VISION}/infer", json={"inputs": [tensor]})
        assert response.status_code == 200, response.text
        logits = np.array(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, -1)
        np.testing.assert_allclose(logits, np.stack([reference_logits(GREEN), reference_logits(BLUE)]), atol=1e-5)
        # AND a request that sends both kinds, or neither, is refused naming the inputs
        both = [tensor, image_input([b64(image_bytes())])]
        for inputs in (both, []):
            refused = pixels_client.post(f"/v2/models/{TINY_VISION}/infer", json={"inputs": inputs})
            assert refused.status_code == 400
        refused = pixels_client.post(f"/v2/models/{TINY_VISION}/infer", json={"inputs": both})
        assert "send exactly one of the inputs ['image', 'pixels']" in refused.json()["error"]
