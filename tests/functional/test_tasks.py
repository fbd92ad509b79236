"""Task endpoints and OpenAI audio transcription, for any domain that declares tasks on its runtime.

The 'shout' domain is a test double on the public interface: a task over uploaded files (`count`) and a
`transcribe` task that "hears" the uploaded bytes as text.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from aimass.http.app import build_app
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import Base64File, TaskResult, TaskSpec
from aimass.settings import Settings
from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry, write_manifest


class CountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[Base64File] = Field(min_length=1, max_length=4)
    scale: int = Field(default=1, ge=1, le=10)


class HearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: Base64File
    language: str | None = None


class ShoutRuntime(ModelRuntime):
    def load(self) -> None:
        self.specs = {
            "count": TaskSpec(CountRequest, self.count, file_field="files", summary="Count bytes"),
            "transcribe": TaskSpec(HearRequest, self.hear, file_field="file", summary="Hear"),
        }

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        return Prediction(outputs={"y": np.asarray(inputs["x"])})

    def tasks(self) -> dict[str, TaskSpec]:
        return self.specs

    def count(self, request: CountRequest) -> TaskResult:
        sizes = [len(data) * request.scale for data in request.files]
        return TaskResult(outputs={"sizes": sizes}, usage={"files": len(sizes)})

    def hear(self, request: HearRequest) -> TaskResult:
        text = request.file.decode()
        words = [{"word": w, "start": float(i), "end": i + 0.5, "confidence": 0.9} for i, w in enumerate(text.split())]
        return TaskResult(
            outputs={"text": text, "duration": float(len(words)), "words": words, "language": request.language or "en"},
            usage={"seconds": len(words)},
        )


def write_shout_model(store: Path, name: str) -> None:
    directory = store / name / "1"
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(b"unused")
    spec = (TensorSpec(name="x", datatype="FP32", shape=(-1,)),)
    manifest = ModelManifest(
        name=name,
        version="1",
        domain="shout",
        task="test",
        files=(file_entry(directory, "model.onnx"),),
        engine=EngineSpec(file="model.onnx", inputs=(), outputs=()),
        inputs=spec,
        outputs=(TensorSpec(name="y", datatype="FP32", shape=(-1,)),),
    )
    write_manifest(directory, manifest)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_store: Path) -> Iterator[TestClient]:
    module = ModuleType("aimass_shout")
    module.Runtime = ShoutRuntime  # type: ignore[attr-defined]
    sys.modules["aimass_shout"] = module
    store = tmp_path_factory.mktemp("shout-store")
    write_shout_model(store, "shout-a")
    write_shout_model(store, "shout-b")
    (store / "tiny-text").symlink_to(tiny_store / "tiny-text")
    with TestClient(build_app(Settings(model_store=store)), raise_server_exceptions=False) as test_client:
        yield test_client
    del sys.modules["aimass_shout"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_task_answers_in_the_envelope(client: TestClient) -> None:
    response = client.post("/v1/shout/count", json={"files": [b64(b"abc"), b64(b"de")], "scale": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "request_id": response.headers["x-request-id"],
        "model": "shout-a",
        "model_version": "1",
        "outputs": {"sizes": [6, 4]},
        "usage": {"files": 2},
    }


def test_multipart_task_validates_like_json(client: TestClient) -> None:
    files = [("files", ("a.bin", b"abcd")), ("files", ("b.bin", b"x"))]
    response = client.post("/v1/shout/count", data={"scale": "3", "model": "shout-b"}, files=files)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "shout-b"
    assert response.json()["outputs"] == {"sizes": [12, 3]}


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"json": {"files": []}}, "files", "List should have at least 1 item"),
        ({"json": {"files": ["***"]}}, "files.0", "not valid base64"),
        ({"json": {"files": [7]}}, "files.0", "expected a base64 string, got int"),
        ({"json": {"files": [b64(b"a")], "scale": 11}}, "scale", "less than or equal to 10"),
        ({"json": {"files": [b64(b"a")], "shout": 1}}, "shout", "Extra inputs are not permitted"),
        ({"json": {"files": [b64(b"a")], "model": "tiny-text"}}, "model", "does not offer shout/count"),
        ({"json": {"files": [b64(b"a")], "model": ""}}, "model", "non-empty string"),
        ({"json": ["files"]}, "body", "must be a JSON object, got list"),
        ({"content": b"{oops"}, "body", "not valid JSON"),
        ({"content": b""}, "body", "the request body is empty"),
        ({"files": [("other", ("a", b"x"))]}, "other", "unexpected file field(s) ['other']; expected 'files'"),
        ({"data": {"scale": "many"}, "files": [("files", ("a", b"x"))]}, "scale", "valid integer"),
    ],
)
def test_bad_task_requests_name_the_field(
    client: TestClient, kwargs: dict[str, object], param: str, message: str
) -> None:
    response = client.post("/v1/shout/count", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"]


def test_unknown_model_for_a_task_is_404(client: TestClient) -> None:
    response = client.post("/v1/shout/count", json={"files": [b64(b"a")], "model": "nope"})
    assert response.status_code == 404 and "model 'nope' not found" in response.json()["error"]["message"]


def test_each_task_is_documented_with_its_request_model(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/shout/count"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CountRequest"
    }
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert "TaskEnvelope" in document["components"]["schemas"]
    assert "/v1/audio/transcriptions" in document["paths"]


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ("json", {"text": "up up left stop", "usage": {"type": "duration", "seconds": 4}}),
        ("text", "up up left stop\n"),
    ],
)
def test_openai_transcriptions(client: TestClient, response_format: str, expected: object) -> None:
    response = client.post(
        "/v1/audio/transcriptions",
        data={"model": "shout-a", "response_format": response_format, "temperature": "0"},
        files={"file": ("speech.wav", b"up up left stop")},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "1"
    assert (response.text if response_format == "text" else response.json()) == expected


def test_openai_verbose_transcription_has_words(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/transcriptions",
        data={
            "model": "shout-a",
            "response_format": "verbose_json",
            "language": "de",
            "timestamp_granularities[]": "word",
        },
        files={"file": ("speech.wav", b"go stop")},
    )
    body = response.json()
    assert (body["task"], body["language"], body["duration"], body["text"]) == ("transcribe", "de", 2.0, "go stop")
    assert [w["word"] for w in body["words"]] == ["go", "stop"]


@pytest.mark.parametrize(
    ("data", "files", "param", "message"),
    [
        ({"response_format": "json"}, {"file": ("a.wav", b"x")}, "model", "model is required"),
        ({"model": "shout-a", "response_format": "xml"}, {"file": ("a.wav", b"x")}, "response_format", "xml"),
        (
            {"model": "shout-a", "timestamp_granularities[]": "phoneme"},
            {"file": ("a.wav", b"x")},
            "timestamp_granularities[]",
            "'phoneme' is not supported",
        ),
        ({"model": "tiny-text"}, {"file": ("a.wav", b"x")}, "model", "does not transcribe audio"),
    ],
)
def test_openai_transcription_errors(
    client: TestClient, data: dict[str, str], files: dict[str, tuple[str, bytes]] | None, param: str, message: str
) -> None:
    response = client.post("/v1/audio/transcriptions", data=data, files=files)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"]


def test_a_transcription_form_needs_a_file_part(client: TestClient) -> None:
    form = b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nshout-a\r\n--b--\r\n'
    headers = {"content-type": "multipart/form-data; boundary=b"}
    response = client.post("/v1/audio/transcriptions", content=form, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "file" and "file is required" in error["message"]


@pytest.mark.parametrize(
    "body",
    [{"json": {"model": "shout-a"}}, {"data": {"model": "shout-a"}}, {"content": b"model=shout-a"}],
    ids=["json", "urlencoded", "no content type"],
)
def test_transcription_reads_only_a_multipart_form(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/audio/transcriptions", **body)
    assert response.status_code == 415
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_media_type", "Content-Type")
    assert "POST /v1/audio/transcriptions reads multipart/form-data, got " in error["message"]


# --- strict types and media types at the wire ------------------------------------------------------------


@pytest.mark.parametrize("scale", ["2", 2.0, True, [2]], ids=["string", "float", "boolean", "list"])
def test_a_json_count_is_a_json_integer(client: TestClient, scale: object) -> None:
    response = client.post("/v1/shout/count", json={"files": [b64(b"abc")], "scale": scale})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "scale" and "scale: Input should be a valid integer" in error["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8", "application/x+json"],
)
def test_json_bodies_are_read_in_json_media_types(client: TestClient, content_type: str) -> None:
    body = f'{{"files": ["{b64(b"abc")}"]}}'.encode()
    response = client.post("/v1/shout/count", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_a_body_without_content_type_is_read_as_json(client: TestClient) -> None:
    body = f'{{"files": ["{b64(b"abc")}"]}}'.encode()
    assert client.post("/v1/shout/count", content=body).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "image/png", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "json"],
)
def test_other_media_types_are_415_naming_both(client: TestClient, content_type: str) -> None:
    body = f'{{"files": ["{b64(b"abc")}"]}}'.encode()
    response = client.post("/v1/shout/count", content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "unsupported_media_type", "invalid_request_error", "Content-Type"
    )  # fmt: skip
    assert error["message"] == (
        f"POST /v1/shout/count reads application/json or multipart/form-data (JSON as UTF-8), got '{content_type}'"
    )
