"""The management API for models over HTTP: the real app, an admin key, files uploaded as a pipeline uploads them.

GIVEN an admin key and a model file uploaded with the Files API (or the Uploads API, in parts), WHEN it is
imported by its id, THEN it answers V2 at once; versions are listed, inspected (quality, validation, the graph's
facts), checked, promoted, made a canary and rolled back, each recorded in the aliases history; and what cannot
serve is a 4xx naming the problem, with nothing published.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.importing.support import newest_opsets
from aimass.settings import Settings
from aimass.store.local import LocalModelStore
from tests import tiny_imports as tiny
from tests.functional.test_files_api import PLANS, auth, error
from tests.tiny_models import build_tiny_text

MODELS = "/v1/admin/models"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    tiny.import_into(path, tiny.mlp(seed=1), "resident")  # a store is never empty in practice
    return path


@pytest.fixture
def settings(store: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_store=store,
        metering="sqlite",
        state_dir=tmp_path / "state",
        plans=PLANS,
        alias_check_s=0,
        max_file_bytes=4 << 20,
        import_memory_mb=1024,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    return auth(settings, "ops", ("invoke", "admin"))


def upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "model.onnx") -> str:
    answer = client.post("/v1/files", headers=headers, files={"file": (name, data)}, data={"purpose": "model"})
    assert answer.status_code == 200, answer.text
    file_id: str = answer.json()["id"]
    return file_id


def imported(client: TestClient, headers: dict[str, str], data: bytes, name: str, **options: Any) -> Any:
    return client.post(
        MODELS, headers=headers, json={"name": name, "file_id": upload(client, headers, data), **options}
    )


def infer(client: TestClient, headers: dict[str, str], name: str, rows: list[list[float]]) -> Any:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(rows), 4], "data": rows}]}
    return client.post(f"/v2/models/{name}/infer", headers=headers, json=body)


ROWS = [[0.1, 0.2, 0.3, 0.4]]


def test_an_uploaded_file_is_imported_and_answers_v2_at_once(client: TestClient, admin: dict[str, str]) -> None:
    # WHEN a pipeline uploads its graph and imports it by id
    answer = imported(client, admin, tiny.mlp(seed=3), "churn", description="churn risk", quality={"auc": 0.91})
    # THEN it is version 1, described from its graph, and its endpoints are named
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["model"] == "churn" and body["created"] is True
    version = body["version"]
    assert version["version"] == "1" and version["task"] == "tensors" and version["quality"] == {"auc": 0.91}
    assert version["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert version["graph"]["opsets"] == {"ai.onnx": 17} and version["validation"] == "samples.json"
    assert body["aliases"]["serving"] == "1" and body["endpoints"] == ["POST /v2/models/churn/infer"]
    # AND this process serves it now: no restart, no waiting for the alias check
    assert version["state"] == "READY"
    served = infer(client, admin, "churn", ROWS)
    assert served.status_code == 200, served.text
    assert np.asarray(served.json()["outputs"][0]["data"]).shape == (3,)


def test_the_same_file_again_is_the_version_it_made(client: TestClient, admin: dict[str, str]) -> None:
    data = tiny.mlp(seed=3)
    assert imported(client, admin, data, "churn").status_code == 201
    again = imported(client, admin, data, "churn")
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["version"]["version"] == "1"


def test_a_checkpoint_as_canary_then_promoted_then_rolled_back(client: TestClient, admin: dict[str, str]) -> None:
    assert imported(client, admin, tiny.mlp(seed=3), "churn", promote=True).status_code == 201
    # GIVEN a second checkpoint imported as a 10 % canary
    canary = imported(client, admin, tiny.mlp(seed=4), "churn", canary_percent=10, reason="epoch 2")
    assert canary.status_code == 201, canary.text
    aliases = canary.json()["aliases"]
    assert (aliases["serving"], aliases["canary"], aliases["canary_percent"]) == ("1", "2", 10)
    # WHEN it is promoted THEN it serves, and a rollback puts version 1 back; the history has every step
    promoted = client.post(f"{MODELS}/churn/promote", headers=admin, json={"version": "2", "reason": "better"})
    assert promoted.status_code == 200 and promoted.json()["production"] == "2"
    pinned = client.post("/v2/models/churn/versions/2/infer", headers=admin, json={"inputs": []})
    assert pinned.status_code == 400  # loaded (a pinned version answers), the request itself empty
    back = client.post(f"{MODELS}/churn/rollback", headers=admin, json={"reason": "drift"})
    assert back.status_code == 200 and back.json()["production"] == "1"
    history = client.get(f"{MODELS}/churn", headers=admin).json()["aliases"]["history"]
    assert [(h["action"], h["production"], h["canary"], h["reason"]) for h in history] == [
        ("promote", "1", None, ""),
        ("canary", "1", "2", "epoch 2"),
        ("promote", "2", None, "better"),
        ("rollback", "1", None, "drift"),
    ]


def test_models_and_versions_are_listed_and_inspected(client: TestClient, admin: dict[str, str]) -> None:
    imported(client, admin, tiny.image_classifier(3), "colours", labels=["r", "g", "b"], quality={"top1": 0.5})
    listed = client.get(MODELS, headers=admin).json()["models"]
    assert {m["name"]: (m["serving"], m["task"]) for m in listed} == {
        "colours": ("1", "image-classification"),
        "resident": ("1", "tensors"),
    }
    version = client.get(f"{MODELS}/colours/versions/1", headers=admin).json()
    assert version["labels"] == ["r", "g", "b"] and version["quality"] == {"top1": 0.5}
    assert version["graph"]["task"] == "image-classification" and version["state"] == "READY"
    check = client.post(f"{MODELS}/colours/versions/1/verify", headers=admin)
    assert check.status_code == 200, check.text
    assert check.json()["servable"] is True and check.json()["checked"] == "loaded, validation samples passed"
    samples = check.json()["validation"]
    assert samples["inputs"] == {"pixels": [2, 3, 8, 8]} and samples["outputs"]["probabilities"] == [2, 3]
    assert client.get(f"{MODELS}/colours/versions/9", headers=admin).status_code == 404
    assert client.get(f"{MODELS}/nothing", headers=admin).status_code == 404


def test_a_large_file_goes_up_in_parts_and_imports_the_same(client: TestClient, admin: dict[str, str]) -> None:
    data = tiny.image_classifier(5)
    made = client.post(
        "/v1/uploads",
        headers=admin,
        json={"filename": "big.onnx", "purpose": "model", "bytes": len(data), "mime_type": "application/octet-stream"},
    ).json()
    half = len(data) // 2
    parts = [
        client.post(f"/v1/uploads/{made['id']}/parts", headers=admin, files={"data": ("p", chunk)}).json()["id"]
        for chunk in (data[:half], data[half:])
    ]
    file_id = client.post(f"/v1/uploads/{made['id']}/complete", headers=admin, json={"part_ids": parts}).json()["file"][
        "id"
    ]
    answer = client.post(MODELS, headers=admin, json={"name": "big", "file_id": file_id})
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"]["task"] == "image-classification"


@pytest.mark.parametrize(
    ("data", "options", "status", "code", "says"),
    [
        (b"not a graph at all", {}, 400, "unsupported_model", "is not an ONNX model"),
        (tiny.relu(opset=newest_opsets()[""] + 1), {}, 400, "unsupported_model", "export it again with opset"),
        (tiny.mlp(batch=1), {}, 400, "unsupported_model", "cannot be batched"),
        (tiny.mlp(), {"labels": ["a", "b"]}, 400, "unsupported_model", "2 labels were given"),
        (tiny.mlp(), {"task": "embedding"}, 400, "unsupported_model", "needs its tokenizer"),
    ],
)
def test_what_cannot_serve_is_a_4xx_naming_it_and_nothing_is_published(
    client: TestClient, admin: dict[str, str], settings: Settings, data: bytes, options: dict[str, Any], status: int,
    code: str, says: str,
) -> None:  # fmt: skip
    answer = imported(client, admin, data, "bad", **options)
    assert answer.status_code == status, answer.text
    assert error(answer)["code"] == code and says in error(answer)["message"]
    assert LocalModelStore(settings.model_store).versions("bad") == []


def test_a_model_over_the_functions_memory_is_a_413_with_the_memory_it_needs(
    client: TestClient, admin: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    # 3 MiB of weights against a function given 16 MB
    big = tiny.mlp_of_size(3 << 20)
    with TestClient(build_app(settings.model_copy(update={"import_memory_mb": 16}))) as small:
        answer = imported(small, admin, big, "big")
    assert answer.status_code == 413 and error(answer)["code"] == "model_too_large"
    assert "serving it needs about" in error(answer)["message"] and "more than the 16 MB" in error(answer)["message"]


def test_keys_without_the_admin_scope_and_other_tenants_files_are_refused(
    client: TestClient, admin: dict[str, str], settings: Settings
) -> None:
    invoke = auth(settings, "acme")
    file_id = upload(client, invoke, tiny.mlp())
    assert client.post(MODELS, headers=invoke, json={"name": "m", "file_id": file_id}).status_code == 403
    assert client.get(MODELS).status_code == 401
    # An admin of another tenant does not see acme's file: the same 404 as an unknown id.
    answer = client.post(MODELS, headers=admin, json={"name": "m", "file_id": file_id})
    assert answer.status_code == 404 and error(answer)["param"] == "file_id"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name", "file_id": "file-" + "A" * 24},
        {"name": "m", "file_id": "file-" + "A" * 24, "promote": "yes"},
        {"name": "m", "file_id": "file-" + "A" * 24, "canary_percent": 100},
        {"name": "m", "file_id": "file-" + "A" * 24, "unknown": 1},
    ],
)
def test_malformed_requests_are_400s(client: TestClient, admin: dict[str, str], body: dict[str, Any]) -> None:
    assert client.post(MODELS, headers=admin, json=body).status_code == 400


def test_a_checkpoint_is_imported_as_a_canary_with_a_policy(client: TestClient, admin: dict[str, str]) -> None:
    assert imported(client, admin, tiny.mlp(seed=3), "churn", promote=True).status_code == 201
    policy = {"min_requests": 500, "max_error_rate": 0.01, "max_latency_ms": 50.0}
    answer = imported(client, admin, tiny.mlp(seed=4), "churn", canary_percent=5, canary_policy=policy)
    assert answer.status_code == 201, answer.text
    assert answer.json()["aliases"]["canary_policy"] == policy
    # ... and the canary route takes one too; promoting by hand ends it
    again = client.post(f"{MODELS}/churn/canary", headers=admin, json={"version": "2", "percent": 20, "policy": policy})
    assert again.status_code == 200 and again.json()["canary_percent"] == 20
    bad = client.post(f"{MODELS}/churn/canary", headers=admin, json={"version": "2", "percent": 20, "policy": {}})
    assert bad.status_code == 400 and error(bad)["param"] is not None
    ended = client.post(f"{MODELS}/churn/promote", headers=admin, json={"version": "2"})
    assert ended.json()["canary_policy"] is None


def test_an_import_never_becomes_a_version_of_a_model_it_is_not(
    client: TestClient, admin: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    # A model of another domain in the same store, and a name API Gateway routes to another function.
    build_tiny_text(settings.model_store)
    taken = imported(client, admin, tiny.mlp(), "tiny-text")
    assert taken.status_code == 400 and "served by the text domain" in error(taken)["message"]
    with TestClient(build_app(settings.model_copy(update={"reserved_model_names": ("all-minilm-l6-v2",)}))) as other:
        reserved = imported(other, admin, tiny.mlp(), "all-minilm-l6-v2")
    assert reserved.status_code == 400 and "catalogued model served by another function" in error(reserved)["message"]
    # ...nor a version visible to other tenants than the model's
    assert imported(client, admin, tiny.mlp(seed=5), "mine").status_code == 201
    widened = imported(client, admin, tiny.mlp(seed=6), "mine", visibility="all")
    assert widened.status_code == 400 and "for tenant ops" in error(widened)["message"]
