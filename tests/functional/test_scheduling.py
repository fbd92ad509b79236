"""Automatic scheduling over HTTP: the real app (build_app) with metering on SQLite, files kept locally, and the
local batch workers on, over tiny text, vision and speech models.

GIVEN a request more than a synchronous call answers (more items than its limit, or estimated past the time
budget), WHEN it is sent plainly, THEN it is a 413 that names the limit and says how to send it as a batch;
WHEN it is sent with ``Prefer: respond-async``, THEN it is a 202 with the batch, whose one output line holds
what the synchronous route answers for the same items sent in allowed sizes. Small requests and malformed
ones are answered as before; the 202 is recorded, and billed nothing.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Plan, Settings
from tests.tiny_models import TINY_TEXT, build_tiny_text
from tests.tiny_speech import TINY_SPEECH, build_tiny_speech, pcm_wav, utterance
from tests.tiny_vision import TINY_VISION, build_tiny_vision, image_bytes

PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000)}
PRICES = {"prompt_tokens": 1e-6, "images": 1e-4, "seconds": 1e-4, "requests": 0.0}
ASYNC = {"prefer": "respond-async"}
LIMIT = 4  # max_batch_items here
FINAL = ("completed", "failed", "expired", "cancelled")
TEXTS = [f"sentence number {n} about cats and dogs" for n in range(11)]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scheduling-store")
    build_tiny_text(root)
    build_tiny_vision(root)
    build_tiny_speech(root, max_seconds=5.0)
    return root


def make_settings(store: Path, state: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "model_store": store,
        "metering": "sqlite",
        "state_dir": state,
        "plans": PLANS,
        "prices": PRICES,
        "alias_check_s": 0,
        "max_body_bytes": 256 * 1024,
        "max_batch_items": LIMIT,
        "batch_workers": 1,
    }
    return Settings(**{**base, **changes})


@pytest.fixture
def settings(store: Path, tmp_path: Path) -> Settings:
    return make_settings(store, tmp_path / "state")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def secret(settings: Settings) -> str:
    issued = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    return issued.clear_text


def auth(secret: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}", **headers}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error(answer: Any) -> dict[str, Any]:
    detail: dict[str, Any] = answer.json()["error"]
    return detail


def finished(client: TestClient, secret: str, accepted: Any, timeout_s: float = 60) -> dict[str, Any]:
    """The batch a 202 started, once it ends (its Location polled), checked to have answered its one line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(accepted.headers["location"], headers=auth(secret)).json()
        if batch["status"] in FINAL:
            assert batch["status"] == "completed" and batch["request_counts"]["completed"] == 1, batch
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {accepted.headers['location']} did not end in {timeout_s} s")


def output_line(client: TestClient, secret: str, accepted: Any) -> dict[str, Any]:
    batch = finished(client, secret, accepted)
    content = client.get(f"/v1/files/{batch['output_file_id']}/content", headers=auth(secret))
    (line,) = content.text.splitlines()
    answer: dict[str, Any] = json.loads(line)
    assert answer["custom_id"] == "request" and answer["response"]["status_code"] == 200, answer
    return answer


def assert_accepted(answer: Any, endpoint: str) -> None:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["object"] == "batch" and body["endpoint"] == endpoint and body["metadata"] == {"from": "request"}
    assert answer.headers["location"] == f"/v1/batches/{body['id']}"
    assert answer.headers["preference-applied"] == "respond-async"


def in_sizes(items: list[Any], size: int = LIMIT) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# --- text: more strings than a synchronous request carries ------------------------------------------------


def test_too_many_texts_is_413_naming_the_limit_and_how_to_send_a_batch(client: TestClient, secret: str) -> None:
    answer = client.post("/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": TEXTS})
    assert answer.status_code == 413, answer.text
    detail = error(answer)
    assert detail["code"] == "payload_too_large" and detail["param"] == "input"
    assert (
        f"'input' has {len(TEXTS)} strings; at most {LIMIT} are answered per synchronous request" in detail["message"]
    )
    assert "Prefer: respond-async" in detail["message"] and "/v1/batches" in detail["message"]
    assert "preference-applied" not in answer.headers


def test_with_respond_async_it_is_202_and_its_batch_answers_as_the_synchronous_route(
    client: TestClient, secret: str
) -> None:
    body = {"model": TINY_TEXT, "input": TEXTS}
    accepted = client.post("/v1/embeddings", headers=auth(secret, **ASYNC), json=body)
    assert_accepted(accepted, "/v1/embeddings")

    response = output_line(client, secret, accepted)["response"]["body"]
    synchronous = [
        client.post("/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": part}).json()
        for part in in_sizes(TEXTS)
    ]
    expected = [row["embedding"] for part in synchronous for row in part["data"]]
    assert [row["index"] for row in response["data"]] == list(range(len(TEXTS)))
    np.testing.assert_allclose([row["embedding"] for row in response["data"]], expected, rtol=1e-6, atol=1e-7)
    assert response["usage"]["prompt_tokens"] == sum(part["usage"]["prompt_tokens"] for part in synchronous)


def test_the_202_is_recorded_and_bills_nothing(client: TestClient, secret: str, settings: Settings) -> None:
    accepted = client.post("/v1/embeddings", headers=auth(secret, **ASYNC), json={"model": TINY_TEXT, "input": TEXTS})
    assert_accepted(accepted, "/v1/embeddings")
    finished(client, secret, accepted)

    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    records = list(usage.query(now - timedelta(hours=1), now + timedelta(hours=1), "acme"))
    (request,) = [r for r in records if r.route == "POST /v1/embeddings"]
    assert request.status == 202 and not request.billed and request.cost == 0 and request.model == ""
    # The work itself is billed once, by the batch (its one shard), at the batch price.
    (shard,) = [r for r in records if r.route == "BATCH /v1/embeddings"]
    assert shard.billed and shard.unit == "prompt_tokens" and shard.units > 0


def test_a_small_request_is_answered_as_before_whatever_it_prefers(client: TestClient, secret: str) -> None:
    for headers in (auth(secret), auth(secret, **ASYNC)):
        answer = client.post("/v1/embeddings", headers=headers, json={"model": TINY_TEXT, "input": TEXTS[:LIMIT]})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]) == LIMIT and "preference-applied" not in answer.headers


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "tiny-text", "input": ', "body"),
        (json.dumps({"model": TINY_TEXT, "input": ["ok", ""] * 6}).encode(), "input"),
        (json.dumps({"model": TINY_TEXT, "input": [[1, 2]] * 6}).encode(), "input"),
        (json.dumps({"model": TINY_TEXT, "input": TEXTS, "temperature": 1}).encode(), "temperature"),
    ],
)
def test_a_malformed_request_is_400_even_with_too_many_items(
    client: TestClient, secret: str, body: bytes, param: str
) -> None:
    headers = auth(secret, **ASYNC, **{"content-type": "application/json"})
    answer = client.post("/v1/embeddings", headers=headers, content=body)
    assert answer.status_code == 400, answer.text
    assert error(answer)["param"] == param


def test_more_than_a_batch_takes_is_413_without_a_batch(store: Path, tmp_path: Path) -> None:
    settings = make_settings(store, tmp_path / "state", batch_max_items=8)
    issued = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        answer = client.post(
            "/v1/embeddings", headers=auth(issued.clear_text, **ASYNC), json={"model": TINY_TEXT, "input": TEXTS}
        )
        assert answer.status_code == 413, answer.text
        assert "at most 8 are accepted per request, even in a batch" in error(answer)["message"]
        assert client.get("/v1/batches", headers=auth(issued.clear_text)).json()["data"] == []


# --- the time budget ----------------------------------------------------------------------------------------


@pytest.fixture
def hurried(store: Path, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """An app whose requests may take a nanosecond: every one is estimated past the budget."""
    settings = make_settings(store, tmp_path / "hurried", sync_budget_s=1e-9)
    issued = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client, issued.clear_text


def test_over_the_time_budget_is_413_then_202_and_the_batch_runs_it(
    hurried: tuple[TestClient, str], client: TestClient, secret: str
) -> None:
    hurried_client, hurried_secret = hurried
    body = {"model": TINY_TEXT, "input": TEXTS[:2]}
    refused = hurried_client.post("/v1/embeddings", headers=auth(hurried_secret), json=body)
    assert refused.status_code == 413, refused.text
    message = error(refused)["message"]
    assert "'input' holds" in message and "text pieces of work for model 'tiny-text', estimated at" in message
    assert "over the 1e-09 s a synchronous request may take" in message and "Prefer: respond-async" in message

    accepted = hurried_client.post("/v1/embeddings", headers=auth(hurried_secret, **ASYNC), json=body)
    assert_accepted(accepted, "/v1/embeddings")
    # The batch's lines run with no budget: the same request is answered as the synchronous route answers it.
    answered = output_line(hurried_client, hurried_secret, accepted)["response"]["body"]
    expected = client.post("/v1/embeddings", headers=auth(secret), json=body).json()
    assert [row["embedding"] for row in answered["data"]] == [row["embedding"] for row in expected["data"]]


def test_a_transcription_over_the_budget_is_run_as_a_batch_from_its_form(
    hurried: tuple[TestClient, str], client: TestClient, secret: str
) -> None:
    hurried_client, hurried_secret = hurried
    audio = pcm_wav(utterance(["up", "down", "stop"]))
    form = {"model": TINY_SPEECH, "response_format": "verbose_json"}
    files = {"file": ("speech.wav", audio, "audio/wav")}
    refused = hurried_client.post("/v1/audio/transcriptions", headers=auth(hurried_secret), data=form, files=files)
    assert refused.status_code == 413 and "Prefer: respond-async" in error(refused)["message"]

    accepted = hurried_client.post(
        "/v1/audio/transcriptions", headers=auth(hurried_secret, **ASYNC), data=form, files=files
    )
    assert_accepted(accepted, "/v1/audio/transcriptions")
    answered = output_line(hurried_client, hurried_secret, accepted)["response"]["body"]
    expected = client.post("/v1/audio/transcriptions", headers=auth(secret), data=form, files=files).json()
    assert answered == expected and answered["text"] == "up down stop"


# --- vision: the classify task's own limit, V2 rows, forms and binary bodies --------------------------------


def test_more_images_than_classify_takes_runs_as_a_batch_from_json_and_from_a_form(
    client: TestClient, secret: str
) -> None:
    images = [image_bytes(COLOURS[n % 3], size=(8 + n, 8)) for n in range(33)]  # the task's limit is 32
    synchronous = [
        client.post(
            "/v1/vision/classify", headers=auth(secret), json={"model": TINY_VISION, "images": [b64(i) for i in part]}
        ).json()
        for part in in_sizes(images, 32)
    ]
    expected = [row for part in synchronous for row in part["outputs"]]

    refused = client.post(
        "/v1/vision/classify", headers=auth(secret), json={"model": TINY_VISION, "images": [b64(i) for i in images]}
    )
    assert refused.status_code == 413 and "'images' has 33 images; at most 32" in error(refused)["message"]

    as_json = client.post(
        "/v1/vision/classify",
        headers=auth(secret, **ASYNC),
        json={"model": TINY_VISION, "images": [b64(i) for i in images], "top_k": 2},
    )
    as_form = client.post(
        "/v1/vision/classify",
        headers=auth(secret, **ASYNC),
        data={"model": TINY_VISION, "top_k": "2"},  # a form's "2" is the number 2 in the batch's JSON line too
        files=[("images", (f"{n}.png", image, "image/png")) for n, image in enumerate(images)],
    )
    for accepted in (as_json, as_form):
        assert_accepted(accepted, "/v1/vision/classify")
        answered = output_line(client, secret, accepted)["response"]["body"]
        assert answered["outputs"] == [row[:2] for row in expected] and answered["usage"] == {"images": 33}


def test_v2_rows_past_the_limit_run_as_a_batch_but_a_binary_body_cannot(client: TestClient, secret: str) -> None:
    infer = f"/v2/models/{TINY_VISION}/infer"
    images = [b64(image_bytes(COLOURS[n % 3])) for n in range(LIMIT + 1)]
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(images)], "data": images}]}
    accepted = client.post(infer, headers=auth(secret, **ASYNC), json=body)
    assert_accepted(accepted, infer)
    answered = output_line(client, secret, accepted)["response"]["body"]
    assert answered["outputs"][0]["shape"] == [LIMIT + 1, 3]

    # Binary tensors have no JSON line: the 413 stands, and says how to send it as a batch.
    header = json.dumps(
        {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [LIMIT + 1], "parameters": {"binary_data_size": 20}}
            ]
        }
    ).encode()
    binary = client.post(
        infer,
        headers=auth(
            secret,
            **ASYNC,
            **{"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
        ),
        content=header + b"\x00\x00\x00\x00" * 5,
    )
    assert binary.status_code == 413, binary.text
    assert "has 5 items; at most 4" in binary.json()["error"] and "preference-applied" not in binary.headers


# --- without the Batch API, and the document ----------------------------------------------------------------


def test_without_metering_the_preference_is_not_applied(store: Path) -> None:
    settings = Settings(model_store=store, metering="off", max_batch_items=LIMIT)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        answer = client.post("/v1/embeddings", headers=ASYNC, json={"model": TINY_TEXT, "input": TEXTS})
        assert answer.status_code == 413 and "preference-applied" not in answer.headers
        document = client.get("/openapi.json").json()
    assert "202" not in document["paths"]["/v1/embeddings"]["post"]["responses"]


def test_the_document_says_which_routes_may_answer_202(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/v1/embeddings", "/v1/vision/classify", "/v1/audio/transcriptions", "/v2/models/{name}/infer"):
        operation = document["paths"][path]["post"]
        accepted = operation["responses"]["202"]
        assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchObject"}
        assert set(accepted["headers"]) == {"Location", "Preference-Applied"}
        assert any(p["name"] == "Prefer" and p["in"] == "header" for p in operation["parameters"])
        assert "413" in operation["responses"]
    assert "BatchObject" in document["components"]["schemas"]
