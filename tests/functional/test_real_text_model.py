"""The real all-MiniLM-L6-v2 model through the real entry points: HTTP and the Lambda handler."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.serving.domains import checkout_domains
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


def _long_texts() -> dict[str, str]:
    """Strings far over the character cut (256 tokens x 16 = 4,096 characters), of every kind a client sends."""
    root = Path(__file__).resolve().parents[2]
    noise = np.random.default_rng(0).integers(0, 256, 6_000, dtype=np.uint8).tobytes()
    return {
        "English prose": (root / "README.md").read_text(),
        "Python source": Path(__file__).read_text(),
        "JSON": "\n".join(path.read_text() for path in sorted((root / "tests" / "events").glob("*.json"))),
        "one word repeated": "word " * 2_000,
        "long words": " ".join(["antidisestablishmentarianism", "pneumonoultramicroscopic"] * 400),
        "base64, no whitespace": base64.b64encode(noise).decode(),
        "one 10,000-letter word": "x" * 10_000,
        "Chinese, no whitespace": "自然语言处理是人工智能的一个分支" * 600,
        "accents and emoji": "Crème brûlée 🍮, naïve café. " * 400,
    }


@pytest.mark.parametrize("kind", list(_long_texts()))
def test_cutting_a_long_string_before_tokenising_keeps_its_tokens(real_model_store: Path, kind: str) -> None:
    # GIVEN the real tokenizer as the runtime sets it up (truncation at 256 tokens), and a long string
    checkout_domains()
    from aimass_text.runtime import CHARS_PER_TOKEN, head

    tokenizer = Tokenizer.from_file(str(real_model_store / REAL_MODEL / "1" / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    text = _long_texts()[kind]
    assert len(text) > 256 * CHARS_PER_TOKEN
    # WHEN it is cut at the character bound THEN its tokens are the whole string's
    assert tokenizer.encode(head(text, 256 * CHARS_PER_TOKEN)).ids == tokenizer.encode(text).ids


def test_a_string_of_megabytes_is_embedded_as_its_start(real_client: TestClient) -> None:
    # GIVEN a 5.9 MB string (it took 4.5 s when it was tokenised whole) and its first 5,000 characters
    text = ("A man is playing a guitar on the corner of a busy street. " * 102_000)[:5_900_000]
    # WHEN both are embedded
    response = real_client.post("/v1/embeddings", json={"model": REAL_MODEL, "input": [text, text[:5_000]]})
    # THEN each is its first 256 tokens: the same embedding, and 256 tokens billed for each
    assert response.status_code == 200, response.text
    whole, start = (np.array(item["embedding"], dtype=np.float32) for item in response.json()["data"])
    np.testing.assert_array_equal(whole, start)
    assert response.json()["usage"]["prompt_tokens"] == 2 * 256
