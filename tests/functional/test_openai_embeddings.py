"""The OpenAI-compatible routes over HTTP, against the tiny text model."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.tiny_models import DIM, TINY_TEXT, reference_embedding


def test_a_single_string_gets_one_embedding(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "the red car", "model": TINY_TEXT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == TINY_TEXT
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    (item,) = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    np.testing.assert_allclose(item["embedding"], reference_embedding("the red car"), atol=1e-6)
    assert response.headers["x-model-version"] == "1"


def test_a_list_keeps_its_order_and_base64_matches_float(client: TestClient) -> None:
    texts = ["sun", "the moon", "a green tree"]
    floats = client.post("/v1/embeddings", json={"input": texts, "model": TINY_TEXT}).json()
    packed = client.post(
        "/v1/embeddings", json={"input": texts, "model": TINY_TEXT, "encoding_format": "base64"}
    ).json()
    for text, f, b in zip(texts, floats["data"], packed["data"], strict=True):
        vector = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        assert vector.shape == (DIM,)
        np.testing.assert_array_equal(vector, np.array(f["embedding"], dtype=np.float32))
        np.testing.assert_allclose(vector, reference_embedding(text), atol=1e-6)


def test_dimensions_equal_to_the_models_size_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "sky", "model": TINY_TEXT, "dimensions": DIM})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": "sky", "model": TINY_TEXT, "dimensions": 4}, "dimensions", "cannot shorten them"),
        ({"input": 42, "model": TINY_TEXT}, "input", "must be a string or a list of strings, got int"),
        ({"input": [], "model": TINY_TEXT}, "input", "must not be an empty list"),
        ({"input": ["ok", ""], "model": TINY_TEXT}, "input", "input[1] is empty"),
        ({"input": [[1, 2, 3]], "model": TINY_TEXT}, "input", "token arrays are not accepted"),
        ({"input": "sky"}, "model", "Field required"),
        ({"input": "sky", "model": TINY_TEXT, "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "sky", "model": TINY_TEXT, "temperature": 1}, "temperature", "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_name_the_field(client: TestClient, body: dict[str, object], param: str, message: str) -> None:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_input"
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_more_strings_than_a_request_may_carry_is_413_saying_how_to_send_a_batch(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": ["x"] * 33, "model": TINY_TEXT})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["param"] == "input" and error["code"] == "payload_too_large"
    assert "33 strings; at most 32" in error["message"] and "Prefer: respond-async" in error["message"]


def test_unknown_model_is_404(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "sky", "model": "gpt-4"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"model 'gpt-4' not found; models served here: {TINY_TEXT}"


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/embeddings", content=b'{"input": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"


def test_model_list(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in body["data"]] == [(TINY_TEXT, "model", "aimass")]


def test_wrong_method_and_unknown_route_use_the_error_shape(client: TestClient) -> None:
    wrong = client.get("/v1/embeddings")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    # RFC 9110: a 405 names the methods the path allows.
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["error"]["message"] == "GET is not allowed on /v1/embeddings; allowed: POST"
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and "no route for GET /v1/nothing" in missing.json()["error"]["message"]


def test_openapi_document_and_docs_are_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "/v1/embeddings" in document["paths"]
    assert "/v2/models/{name}/versions/{version}/infer" in document["paths"]
    assert "InferenceRequest" in document["components"]["schemas"]
    assert client.get("/docs").status_code == 200


# --- strict types and media types at the wire ------------------------------------------------------------


@pytest.mark.parametrize("dimensions", [str(DIM), float(DIM), True], ids=["string", "float", "boolean"])
def test_dimensions_is_a_json_integer(client: TestClient, dimensions: object) -> None:
    response = client.post("/v1/embeddings", json={"input": "sky", "model": TINY_TEXT, "dimensions": dimensions})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "dimensions" and "Input should be a valid integer" in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "image/png", "application/x-www-form-urlencoded"])
def test_a_json_body_in_another_media_type_is_415(client: TestClient, content_type: str) -> None:
    body = b'{"input": "sky", "model": "tiny-text"}'
    response = client.post("/v1/embeddings", content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == {
        "message": f"POST /v1/embeddings reads application/json (JSON as UTF-8), got '{content_type}'",
        "type": "invalid_request_error",
        "code": "unsupported_media_type",
        "param": "Content-Type",
    }
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_the_document_describes_the_errors_as_answered(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    responses = document["paths"]["/v1/embeddings"]["post"]["responses"]
    assert {"400", "401", "403", "404", "408", "413", "415", "429", "503"} <= set(responses) and "422" not in responses
    assert responses["415"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
    error = document["components"]["schemas"]["ApiError"]
    assert error["required"] == ["error", "request_id"]
    assert document["components"]["schemas"]["ErrorDetail"]["required"] == ["message", "type", "code", "param"]
    assert set(document["paths"]["/v1/models"]["get"]["responses"]) == {"200", "401", "403", "429", "503"}
