"""Models the project has never seen, imported and answered: V2 for every one, the task its shape matched.

Each test builds its model from scratch (a scikit-learn pipeline, a PyTorch module, ONNX graphs), imports it as
``aimass models import`` and the management API do (``aimass.importing``), and calls it through the app, the
generated API Gateway events and the tensor function's Lambda handler. No domain code is written for any of them.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings
from aimass_tools.importing import from_sklearn, from_torch
from tests import tiny_imports as tiny
from tests.conftest import build_domain_models, import_handler, load_event, response_body
from tests.tiny_models import DIM, build_tiny_text, reference_embedding


def v2(name: str, inputs: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """A V2 JSON request of ``inputs``: name -> (datatype, nested list)."""
    return {
        "inputs": [
            {"name": key, "datatype": kind, "shape": list(np.asarray(data).shape), "data": data}
            for key, (kind, data) in inputs.items()
        ]
    }


def outputs(body: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    return {out["name"]: np.asarray(out["data"]).reshape(out["shape"]) for out in body["outputs"]}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def serve(store: Path, **settings: Any) -> TestClient:
    return TestClient(build_app(Settings(model_store=store, **settings)), raise_server_exceptions=False)


# --- from other frameworks ------------------------------------------------------------------------------


def test_a_scikit_learn_pipeline_answers_v2_and_classify_rows(store: Path) -> None:
    # GIVEN a pipeline trained here, converted by skl2onnx and imported
    from sklearn.datasets import make_classification  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    x, y = make_classification(n_samples=80, n_features=5, n_informative=3, n_classes=3, random_state=0)
    names = np.array(["cold", "mild", "hot"])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x.astype(np.float32), names[y])
    converted = from_sklearn(pipeline)
    manifest = tiny.import_into(store, converted.graph, "weather", labels=converted.labels)
    # THEN it was found to be a tabular classifier of the pipeline's classes
    assert manifest.task == "tabular-classification" and manifest.labels == ("cold", "hot", "mild")
    rows = x[:3].astype(np.float32)
    with serve(store) as client:
        # WHEN it is called over V2 THEN it answers scikit-learn's probabilities and labels
        answer = client.post("/v2/models/weather/infer", json=v2("weather", {"features": ("FP32", rows.tolist())}))
        assert answer.status_code == 200, answer.text
        got = outputs(answer.json())
        np.testing.assert_allclose(got["probabilities"], pipeline.predict_proba(rows), atol=1e-5)
        assert got["label"].tolist() == pipeline.predict(rows).tolist()
        # AND its task endpoint ranks each row's classes
        task = client.post("/v1/tensor/classify-rows", json={"model": "weather", "rows": rows.tolist(), "top_k": 3})
        assert task.status_code == 200, task.text
        ranked = task.json()["outputs"]
        assert [row[0]["label"] for row in ranked] == pipeline.predict(rows).tolist()
        assert task.json()["usage"] == {"rows": 3}


def test_a_torch_module_answers_v2_as_torch_computes_it(store: Path) -> None:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 2))
    graph = from_torch(module, (torch.zeros(1, 6),), inputs=["reading"], outputs=["forecast"])
    manifest = tiny.import_into(store, graph, "forecaster")
    assert manifest.task == "tensors"
    assert [(s.name, s.shape) for s in manifest.inputs] == [("reading", (-1, 6))]
    batch = torch.randn(5, 6)
    with serve(store) as client:
        answer = client.post(
            "/v2/models/forecaster/infer", json=v2("forecaster", {"reading": ("FP32", batch.tolist())})
        )
    assert answer.status_code == 200, answer.text
    with torch.no_grad():
        expected = module(batch).numpy()
    np.testing.assert_allclose(outputs(answer.json())["forecast"], expected, atol=1e-5)


# --- task endpoints from the shape -------------------------------------------------------------------


def png(colour: tuple[int, int, int], size: int = 20) -> bytes:
    stream = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(stream, format="PNG")
    return stream.getvalue()


def test_an_image_classifier_answers_classify_images_as_json_and_as_a_form(store: Path) -> None:
    labels = ("red", "green", "blue", "grey")
    tiny.import_into(store, tiny.image_classifier(4), "colours", labels=labels)
    images = [png((250, 10, 10)), png((10, 10, 250))]
    with serve(store) as client:
        as_json = client.post(
            "/v1/tensor/classify-images",
            json={"model": "colours", "images": [base64.b64encode(i).decode() for i in images], "top_k": 4},
        )
        as_form = client.post(
            "/v1/tensor/classify-images",
            data={"model": "colours", "top_k": "4"},
            files=[("images", (f"{n}.png", image, "image/png")) for n, image in enumerate(images)],
        )
        # The same pixels through V2: a solid colour scaled by 1/255, in the graph's NCHW layout.
        pixels = [
            np.broadcast_to(np.array(c, np.float32)[:, None, None] / 255, (3, 8, 8))
            for c in ((250, 10, 10), (10, 10, 250))
        ]
        raw = client.post(
            "/v2/models/colours/infer", json=v2("colours", {"pixels": ("FP32", np.stack(pixels).tolist())})
        )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["outputs"] == as_form.json()["outputs"]
    probabilities = outputs(raw.json())["probabilities"]
    for ranked, row in zip(as_json.json()["outputs"], probabilities, strict=True):
        assert ranked[0]["label"] == labels[int(row.argmax())]
        assert ranked[0]["score"] == pytest.approx(float(row.max()), abs=1e-3)  # PNG colours are exact, so is resizing


def test_an_image_that_is_not_one_is_a_400_naming_it(store: Path) -> None:
    tiny.import_into(store, tiny.image_classifier(4), "colours")
    with serve(store) as client:
        answer = client.post("/v1/tensor/classify-images", json={"model": "colours", "images": ["aGVsbG8="]})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "images[0]"


def test_a_text_encoder_with_its_tokenizer_answers_openai_embeddings(store: Path, tmp_path: Path) -> None:
    # GIVEN a token-id encoder and its tokenizer.json (not a text-domain model: imported as a bare graph)
    built = build_tiny_text(tmp_path / "built")
    manifest = tiny.import_into(
        store, (built / "model.onnx").read_bytes(), "encoder", tokenizer=(built / "tokenizer.json").read_bytes()
    )
    assert manifest.task == "embedding" and [s.name for s in manifest.inputs] == ["text"]
    texts = ["the cat sat on the mat", "a blue car"]
    with serve(store) as client:
        openai = client.post("/v1/embeddings", json={"model": "encoder", "input": texts})
        task = client.post("/v1/tensor/embed", json={"model": "encoder", "input": texts})
        raw = client.post("/v2/models/encoder/infer", json=v2("encoder", {"text": ("BYTES", texts)}))
    assert openai.status_code == 200, openai.text
    vectors = np.array([item["embedding"] for item in openai.json()["data"]])
    np.testing.assert_allclose(vectors, [reference_embedding(text) for text in texts], atol=1e-5)
    assert vectors.shape == (2, DIM) and openai.json()["usage"]["prompt_tokens"] == 9
    np.testing.assert_allclose(task.json()["outputs"]["embeddings"], vectors, atol=1e-6)
    np.testing.assert_allclose(outputs(raw.json())["embedding"], vectors, atol=1e-6)


def test_a_task_the_model_does_not_offer_is_a_400_naming_those_that_do(store: Path) -> None:
    tiny.import_into(store, tiny.mlp(), "plain")
    tiny.import_into(store, tiny.image_classifier(4), "colours")
    with serve(store) as client:
        answer = client.post("/v1/tensor/classify-images", json={"model": "plain", "images": ["aGVsbG8="]})
    assert answer.status_code == 400
    assert "['colours']" in answer.json()["error"]["message"]


# --- at once, and through the Lambda handler -----------------------------------------------------------------


def test_a_model_imported_while_the_server_runs_answers_without_a_restart(store: Path) -> None:
    # GIVEN a running server whose store has one imported model (its task routes exist before any such model)
    tiny.import_into(store, tiny.mlp(), "first")
    with serve(store, alias_check_s=0.1) as client:
        # WHEN another model is imported into its store
        tiny.import_into(store, tiny.image_classifier(3), "later", labels=("a", "b", "c"))
        deadline = time.monotonic() + 20
        answer = None
        while time.monotonic() < deadline:
            answer = client.post(
                "/v1/tensor/classify-images",
                json={"model": "later", "images": [base64.b64encode(png((1, 2, 3))).decode()]},
            )
            if answer.status_code == 200:
                break
            time.sleep(0.1)
        # THEN it answers its task, with no restart
        assert answer is not None and answer.status_code == 200, answer.text if answer else None
        assert answer.json()["model"] == "later"


@pytest.fixture
def tensor_handler(store: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    tiny.import_into(store, tiny.mlp(seed=5), "never-seen")
    return import_handler(store, monkeypatch, domain="tensor")


@pytest.mark.parametrize("event", ["apigw_http_v2_tensor_infer"])
def test_the_tensor_functions_handler_answers_a_model_it_never_saw(
    tensor_handler: ModuleType, lambda_context: LocalLambdaContext, event: str
) -> None:
    # GIVEN a generated API Gateway event, sent to an imported model the project has no code for
    recorded = load_event(event)
    rows = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0]]
    body = json.dumps(v2("never-seen", {"x": ("FP32", rows)}))
    recorded["rawPath"] = recorded["requestContext"]["http"]["path"] = "/v2/models/never-seen/infer"
    recorded["body"], recorded["headers"]["content-length"] = body, str(len(body))
    # WHEN the tensor function's handler answers it
    response = tensor_handler.handler(recorded, lambda_context)
    # THEN it is the model's V2 answer
    assert response["statusCode"] == 200, response
    answer = json.loads(response_body(response))
    assert answer["model_name"] == "never-seen" and outputs(answer)["y"].shape == (2, 3)


@pytest.fixture(scope="module")
def catalogued_handler() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield import_handler(build_domain_models("tensor"), monkeypatch, domain="tensor")


@pytest.mark.parametrize("event", ["apigw_http_v2_tensor_infer", "apigw_rest_v1_tensor_classify_rows"])
def test_the_events_reach_the_catalogued_import(catalogued_handler: ModuleType, event: str) -> None:
    # The two held-out wines the events carry: the first of cultivar class_2, the second of class_0.
    response = catalogued_handler.handler(load_event(event), LocalLambdaContext())
    assert response["statusCode"] == 200, response
    answer = json.loads(response_body(response))
    if event.endswith("classify_rows"):
        assert [row[0]["label"] for row in answer["outputs"]] == ["class_2", "class_0"]
    else:
        assert outputs(answer)["label"].tolist() == ["class_2", "class_0"]
