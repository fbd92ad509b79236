"""A model whose files do not match its manifest is refused, and the API says so; healthy models keep serving."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from tests.tiny_models import TINY_TEXT, build_tiny_text


@pytest.fixture(scope="module")
def client_with_broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("mixed")
    build_tiny_text(store)
    build_tiny_text(store, name="broken")
    (store / "broken" / "1" / "tokenizer.json").write_text("{}")
    with TestClient(build_app(Settings(model_store=store))) as client:
        yield client


def test_readiness_and_index_name_the_bad_file(client_with_broken: TestClient) -> None:
    ready = client_with_broken.get("/v2/health/ready")
    assert ready.status_code == 503
    assert "broken: " in ready.json()["error"] and "tokenizer.json: size" in ready.json()["error"]
    index = {m["name"]: m for m in client_with_broken.post("/v2/repository/index", json={}).json()}
    assert index["broken"]["state"] == "UNAVAILABLE" and "tokenizer.json" in index["broken"]["reason"]
    ready_only = client_with_broken.post("/v2/repository/index", json={"ready": True}).json()
    assert [m["name"] for m in ready_only] == [TINY_TEXT]


def test_the_broken_model_answers_503_and_the_healthy_one_200(client_with_broken: TestClient) -> None:
    request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["sky"]}]}
    broken = client_with_broken.post("/v2/models/broken/infer", json=request)
    assert broken.status_code == 503 and "model 'broken' is not available" in broken.json()["error"]
    assert client_with_broken.post(f"/v2/models/{TINY_TEXT}/infer", json=request).status_code == 200
