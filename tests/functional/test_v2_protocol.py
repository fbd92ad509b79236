"""The Open Inference Protocol (V2) REST API over HTTP, against the tiny text model."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.tiny_models import DIM, TINY_TEXT, reference_embedding

INFER = f"/v2/models/{TINY_TEXT}/infer"


def text_input(texts: list[str], **extra: object) -> dict[str, object]:
    return {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts, **extra}


def binary_request(texts: list[str], *, outputs_binary: bool) -> tuple[bytes, dict[str, str]]:
    blob = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    document = {
        "inputs": [
            {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "parameters": {"binary_data_size": len(blob)}}
        ],
        "parameters": {"binary_data_output": outputs_binary},
    }
    header = json.dumps(document).encode()
    return header + blob, {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def test_server_metadata_and_health(client: TestClient) -> None:
    meta = client.get("/v2").json()
    assert meta["name"] == "aimass" and "binary_tensor_data" in meta["extensions"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("suffix", ["", "/versions/1"])
def test_model_metadata_and_readiness(client: TestClient, suffix: str) -> None:
    meta = client.get(f"/v2/models/{TINY_TEXT}{suffix}").json()
    assert meta["name"] == TINY_TEXT and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, DIM]}]
    assert client.get(f"/v2/models/{TINY_TEXT}{suffix}/ready").json() == {"name": TINY_TEXT, "ready": True}


def test_repository_index_lists_served_models(client: TestClient) -> None:
    index = client.post("/v2/repository/index", json={}).json()
    assert index == [{"name": TINY_TEXT, "version": "1", "state": "READY", "reason": ""}]


@pytest.mark.parametrize("suffix", ["", "/versions/1"])
def test_json_infer_returns_the_models_embeddings(client: TestClient, suffix: str) -> None:
    texts = ["the cat sat on the mat", "blue sky"]
    response = client.post(f"/v2/models/{TINY_TEXT}{suffix}/infer", json={"id": "abc", "inputs": [text_input(texts)]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == TINY_TEXT and body["model_version"] == "1" and body["id"] == "abc"
    assert body["parameters"]["prompt_tokens"] == 8
    (output,) = body["outputs"]
    assert output["name"] == "embedding" and output["datatype"] == "FP32" and output["shape"] == [2, DIM]
    got = np.array(output["data"], dtype=np.float32).reshape(2, DIM)
    np.testing.assert_allclose(got, np.stack([reference_embedding(t) for t in texts]), atol=1e-6)


@pytest.mark.parametrize("data", [[["the cat"], ["a dog"]], [["the cat", "a dog"]]])
def test_nested_data_is_read_in_row_major_order(client: TestClient, data: list[list[str]]) -> None:
    nested = {"name": "text", "shape": [2], "datatype": "BYTES", "data": data}
    response = client.post(INFER, json={"inputs": [nested]})
    assert response.status_code == 200, response.text
    got = np.array(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, DIM)
    np.testing.assert_allclose(got[1], reference_embedding("a dog"), atol=1e-6)


def test_ragged_nested_data_is_400(client: TestClient) -> None:
    ragged = {"name": "text", "shape": [3], "datatype": "BYTES", "data": [["a", "b"], ["c"]]}
    response = client.post(INFER, json={"inputs": [ragged]})
    assert response.status_code == 400 and "ragged" in response.json()["error"]


def test_binary_request_and_binary_response(client: TestClient) -> None:
    texts = ["red car", "green tree", "the sun"]
    body, headers = binary_request(texts, outputs_binary=True)
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers["inference-header-content-length"])
    document = json.loads(response.content[:size])
    (output,) = document["outputs"]
    assert output["parameters"] == {"binary_data_size": 3 * DIM * 4}
    got = np.frombuffer(response.content[size:], dtype="<f4").reshape(3, DIM)
    np.testing.assert_allclose(got, np.stack([reference_embedding(t) for t in texts]), atol=1e-6)


def test_binary_request_with_json_response(client: TestClient) -> None:
    body, headers = binary_request(["red car"], outputs_binary=False)
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200
    assert len(response.json()["outputs"][0]["data"]) == DIM


def test_per_output_binary_flag(client: TestClient) -> None:
    request = {"inputs": [text_input(["sky"])], "outputs": [{"name": "embedding", "parameters": {"binary_data": True}}]}
    response = client.post(INFER, json=request)
    assert response.status_code == 200
    assert "inference-header-content-length" in response.headers


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({"inputs": [text_input(["a"], datatype="FP32")]}, "must have datatype BYTES, got FP32"),
        ({"inputs": [text_input(["a"], datatype="FLOAT")]}, "must have datatype BYTES, got FLOAT"),
        ({"inputs": [text_input(["a"], shape=[1, 1])]}, "has shape [1, 1]; expected [-1]"),
        ({"inputs": [text_input(["a", "b"], shape=[3])]}, "has 2 elements but shape [3] needs 3"),
        ({"inputs": [text_input([], shape=[0])]}, "is empty (shape [0])"),
        ({"inputs": [text_input(["a"], name="words")]}, "'words' is not an input of model"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [5]}]}, "must hold strings"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES"}]}, "has no 'data'"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": [text_input(["a"])], "outputs": [{"name": "logits"}]}, "'logits' is not an output"),
        ({"inputs": [text_input(["   "])]}, "is an empty string"),
        ({"inputs": [text_input(["x"] * 33)]}, "at most 32 are accepted"),
        ({"input": []}, "inputs: Field required"),
    ],
)
def test_bad_requests_get_a_400_that_names_the_problem(
    client: TestClient, request_body: dict[str, object], expected: str
) -> None:
    response = client.post(INFER, json=request_body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"{not json", {}, "request body is not valid JSON"),
        (b"", {}, "the request body is empty"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, "Inference-Header-Content-Length"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "abc"}, "Inference-Header-Content-Length"),
    ],
)
def test_malformed_bodies(client: TestClient, body: bytes, headers: dict[str, str], expected: str) -> None:
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 400
    assert expected in response.json()["error"]


def test_binary_size_mismatches_are_400(client: TestClient) -> None:
    body, headers = binary_request(["red car"], outputs_binary=False)
    assert client.post(INFER, content=body + b"xx", headers=headers).status_code == 400
    short = client.post(INFER, content=body[:-2], headers=headers)
    assert short.status_code == 400 and "runs past the end" in short.json()["error"]


def test_unknown_model_and_version_are_404(client: TestClient) -> None:
    missing = client.post("/v2/models/nope/infer", json={"inputs": [text_input(["a"])]})
    assert missing.status_code == 404 and "model 'nope' not found" in missing.json()["error"]
    version = client.get(f"/v2/models/{TINY_TEXT}/versions/7")
    assert version.status_code == 404 and "no version '7'" in version.json()["error"]


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    big = {"inputs": [text_input(["cat " * 20000])]}
    response = client.post(INFER, json=big)
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.json()["error"]
    assert response.headers["x-request-id"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/v2", headers={"x-request-id": "trace-42"}).headers["x-request-id"] == "trace-42"
    made = client.get("/v2", headers={"x-request-id": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32
