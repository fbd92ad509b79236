"""The real all-MiniLM-L6-v2 model through the real entry points: HTTP and the Lambda handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.settings import Settings
from tests.conftest import REAL_MODEL, import_handler, load_event

pytestmark = pytest.mark.real_model
EVAL = Path(__file__).resolve().parents[2] / "models/text/minilm/eval.json"


@pytest.fixture(scope="module")
def real_client(real_model_store: Path) -> Iterator[TestClient]:
    settings = Settings(model_store=real_model_store, domains=("text",))
    with TestClient(build_app(settings)) as client:
        yield client


def embed(client: TestClient, texts: list[str]) -> np.ndarray:
    response = client.post("/v1/embeddings", json={"model": REAL_MODEL, "input": texts})
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)


def test_served_embeddings_match_the_pytorch_reference(real_client: TestClient, real_model_store: Path) -> None:
    # samples.json holds PyTorch (sentence-transformers) embeddings written by the build.
    samples = json.loads((real_model_store / REAL_MODEL / "1" / "samples.json").read_text())
    texts = samples["inputs"]["text"]
    reference = np.array(samples["outputs"]["embedding"], dtype=np.float32)
    response = real_client.post(
        f"/v2/models/{REAL_MODEL}/infer",
        json={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]},
    )
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["shape"] == [len(texts), 384]
    served = np.array(output["data"], dtype=np.float32).reshape(len(texts), 384)
    cosine = np.sum(served * reference, axis=1) / (np.linalg.norm(served, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= samples["tolerance"]["cosine"]


def test_paraphrases_score_above_unrelated_pairs(real_client: TestClient) -> None:
    data = json.loads(EVAL.read_text())

    def scores(pairs: list[list[str]]) -> np.ndarray:
        left = embed(real_client, [a for a, _ in pairs])
        right = embed(real_client, [b for _, b in pairs])
        return np.asarray(np.sum(left * right, axis=1))

    paraphrase, unrelated = scores(data["paraphrase_pairs"]), scores(data["unrelated_pairs"])
    assert paraphrase.mean() > unrelated.mean() + 0.4
    assert paraphrase.min() > unrelated.max()


def test_dynamic_padding_and_token_counts(real_client: TestClient) -> None:
    short, long = "Hi", "word " * 400
    alone = embed(real_client, [short])[0]
    batched = embed(real_client, [short, long])
    # A short string padded beside a long one embeds as it does alone.
    np.testing.assert_allclose(batched[0], alone, atol=1e-5)
    usage = real_client.post("/v1/embeddings", json={"model": REAL_MODEL, "input": [short, long]}).json()["usage"]
    # [CLS] Hi [SEP] = 3; the long one is truncated at the model's 256 tokens.
    assert usage["prompt_tokens"] == 3 + 256


def test_lambda_handler_answers_with_the_real_model(
    real_model_store: Path, monkeypatch: pytest.MonkeyPatch, lambda_context: LocalLambdaContext
) -> None:
    module: ModuleType = import_handler(real_model_store, monkeypatch)
    response = module.handler(load_event("apigw_http_v2_text_embeddings"), lambda_context)
    assert response["statusCode"] == 200, response
    data = json.loads(response["body"])["data"]
    first, second = (np.array(item["embedding"]) for item in data)
    assert first.shape == (384,)
    # "A man is playing a guitar." vs "Someone plays an instrument.": related sentences.
    assert float(first @ second) > 0.3
