"""The Open Inference Protocol (V2) REST API over HTTP, against the tiny text model."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

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
        ({"input": []}, "inputs: Field required"),
    ],
)
def test_bad_requests_get_a_400_that_names_the_problem(
    client: TestClient, request_body: dict[str, object], expected: str
) -> None:
    response = client.post(INFER, json=request_body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_more_rows_than_a_request_may_carry_is_413_saying_how_to_send_a_batch(client: TestClient) -> None:
    response = client.post(INFER, json={"inputs": [text_input(["x"] * 33)]})
    assert response.status_code == 413, response.text
    message = response.json()["error"]
    assert "inputs[0] 'text' has 33 items; at most 32" in message and "Prefer: respond-async" in message


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


# --- strict types and media types at the wire ------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [lambda n: "_".join(str(n)), lambda n: f"+{n}", lambda n: f"{n} ", lambda n: f"0{n}.0", hex, lambda n: "1" * 5000],
    ids=["underscores", "plus", "space", "decimal point", "hex", "5000 digits"],
)
def test_inference_header_content_length_is_decimal_digits_only(
    client: TestClient, spelling: Callable[[int], str]
) -> None:
    # GIVEN a binary request, its header length spelled another way (Python's int() reads the first three)
    body, headers = binary_request(["red car"], outputs_binary=False)
    written = spelling(int(headers["Inference-Header-Content-Length"]))
    # WHEN it is sent so
    response = client.post(INFER, content=body, headers={**headers, "Inference-Header-Content-Length": written})
    # THEN it is refused, naming the header and what it must be
    assert response.status_code == 400, response.text
    assert "Inference-Header-Content-Length must be decimal digits" in response.json()["error"]


@pytest.mark.parametrize("element", ["1", 1.0, True], ids=["string", "float", "boolean"])
def test_a_shape_element_is_a_json_integer(client: TestClient, element: object) -> None:
    response = client.post(INFER, json={"inputs": [text_input(["a"], shape=[element])]})
    assert response.status_code == 400, response.text
    assert "inputs.0.shape.0: Input should be a valid integer" in response.json()["error"]


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        (
            {"inputs": [text_input(["a"])], "parameters": {"binary_data_output": "false"}},
            "parameters.binary_data_output must be true or false, got 'false'",
        ),
        (
            {"inputs": [text_input(["a"])], "parameters": {"binary_data_output": 1}},
            "parameters.binary_data_output must be true or false, got 1",
        ),
        (
            {"inputs": [text_input(["a"])], "outputs": [{"name": "embedding", "parameters": {"binary_data": 0}}]},
            "outputs[0].parameters.binary_data must be true or false, got 0",
        ),
        (
            {"inputs": [text_input(["a"], parameters={"binary_data_size": "5"})]},
            "inputs[0].parameters.binary_data_size must be a non-negative integer, got '5'",
        ),
        ({"id": 7, "inputs": [text_input(["a"])]}, "id: Input should be a valid string"),
    ],
)
def test_flags_are_json_booleans_and_sizes_json_integers(
    client: TestClient, request_body: dict[str, object], expected: str
) -> None:
    response = client.post(INFER, json=request_body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


@pytest.mark.parametrize("ready", ["true", 1, "yes"])
def test_repository_index_ready_is_a_json_boolean(client: TestClient, ready: object) -> None:
    response = client.post("/v2/repository/index", json={"ready": ready})
    assert response.status_code == 400 and "ready: Input should be a valid boolean" in response.json()["error"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.kserve+json", None]
)
def test_json_infer_is_read_in_json_media_types_or_none(client: TestClient, content_type: str | None) -> None:
    body = json.dumps({"inputs": [text_input(["sky"])]}).encode()
    headers = {"content-type": content_type} if content_type else {}
    assert client.post(INFER, content=body, headers=headers).status_code == 200


@pytest.mark.parametrize("content_type", ["application/octet-stream", None])
def test_binary_infer_is_read_as_octet_stream_or_without_a_type(client: TestClient, content_type: str | None) -> None:
    # tritonclient's HTTP client sends binary requests with no Content-Type at all.
    body, headers = binary_request(["red car"], outputs_binary=False)
    del headers["Content-Type"]
    if content_type:
        headers["content-type"] = content_type
    assert client.post(INFER, content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (INFER, "text/plain"),
        (INFER, "image/png"),
        (INFER, "application/x-www-form-urlencoded"),
        (INFER, "application/json; charset=utf-16"),
        (INFER, "multipart/form-data; boundary=x"),
        ("/v2/repository/index", "text/plain"),
    ],
)
def test_other_media_types_are_415_in_the_protocols_shape(client: TestClient, path: str, content_type: str) -> None:
    body = json.dumps({"inputs": [text_input(["sky"])]} if path == INFER else {}).encode()
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    accepted = "application/json or application/octet-stream" if path == INFER else "application/json"
    assert response.json() == {"error": f"POST {path} reads {accepted} (JSON as UTF-8), got '{content_type}'"}


def test_the_document_says_400_where_fastapi_says_422(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert '"422"' not in json.dumps(document) and "HTTPValidationError" not in json.dumps(document)
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    infer = "/v2/models/{name}/infer"
    for path, status in [(infer, "415"), (infer, "400"), ("/v2/repository/index", "415")]:
        assert document["paths"][path]["post"]["responses"][status]["content"]["application/json"]["schema"] == error
    metadata = document["paths"]["/v2/models/{name}"]["get"]["responses"]
    assert set(metadata) >= {"200", "401", "403", "404", "429", "503"} and "400" not in metadata
