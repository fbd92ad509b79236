"""A model whose files do not match its manifest is refused, and the API says so; healthy models keep serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from tests.tiny_models import TINY_TEXT, build_tiny_text


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("mixed")
    build_tiny_text(store)
    build_tiny_text(store, name="broken")
    (store / "broken" / "1" / "tokenizer.json").write_text("{}")
    return store


@pytest.fixture(scope="module")
def client_with_broken(store: Path) -> Iterator[TestClient]:
    with TestClient(build_app(Settings(model_store=store))) as client:
        yield client


REASON = "file tokenizer.json failed its integrity check"


def test_readiness_and_index_name_the_bad_file(client_with_broken: TestClient, store: Path) -> None:
    ready = client_with_broken.get("/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json()["error"] == f"not ready: broken: {REASON}"
    index = {m["name"]: m for m in client_with_broken.post("/v2/repository/index", json={}).json()}
    assert index["broken"] == {"name": "broken", "version": "1", "state": "UNAVAILABLE", "reason": REASON}
    ready_only = client_with_broken.post("/v2/repository/index", json={"ready": True}).json()
    assert [m["name"] for m in ready_only] == [TINY_TEXT]


def test_the_broken_model_answers_503_and_the_healthy_one_200(client_with_broken: TestClient, store: Path) -> None:
    request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["sky"]}]}
    broken = client_with_broken.post("/v2/models/broken/infer", json=request)
    assert broken.status_code == 503
    assert broken.json()["error"] == f"model 'broken' is not available: version 1 was rejected: {REASON}"
    assert client_with_broken.post(f"/v2/models/{TINY_TEXT}/infer", json=request).status_code == 200


def test_no_answer_names_a_server_path_or_a_size(client_with_broken: TestClient, store: Path) -> None:
    answers = [
        client_with_broken.get("/v2/health/ready"),
        client_with_broken.post("/v2/repository/index", json={}),
        client_with_broken.get("/v2/models/broken"),
        client_with_broken.get("/v2/models/broken/versions/1"),
        client_with_broken.post("/v2/models/broken/infer", json={"inputs": []}),
    ]
    for response in answers:
        assert str(store) not in response.text and "size" not in response.text and "manifest's" not in response.text
