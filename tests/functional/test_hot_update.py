"""Hot update through the API: promoted versions are checked, validated and swapped; bad ones never serve.

Each version of the tiny text model has its own weights (its build seed), so an answer proves which
version computed it, not only which version the response claims.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http import offload
from aimass.http.app import create_app
from aimass.lambda_context import LocalLambdaContext
from aimass.serving.boot import load_models
from aimass.serving.registry import ModelRegistry
from aimass.serving.updater import ModelUpdater
from aimass.settings import Settings
from aimass.store.aliases import canary, promote, rollback
from aimass.store.factory import open_store
from aimass.store.local import LocalModelStore
from aimass.store.sealing.keys import KmsKeyProvider, LocalKeyProvider, kms_client
from aimass.store.sealing.seal import seal_version
from tests.conftest import import_handler, load_event, response_body
from tests.moto_server import MotoServer
from tests.tiny_models import TINY_TEXT, add_validation_samples, build_tiny_text, reference_embedding

TEXTS = ["the cat sat on the mat", "a red car", "green tree under blue sky"]
SEEDS = {"1": 7, "2": 8, "3": 9, "4": 10, "5": 11}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(store: Path, version: str, *, corrupt: bool = False, wrong_samples: bool = False) -> None:
    directory = build_tiny_text(store, TINY_TEXT, version, seed=SEEDS[version])
    add_validation_samples(directory, TEXTS, seed=SEEDS["1"] if wrong_samples else SEEDS[version])
    if corrupt:  # one byte flipped after the manifest was written: what a damaged upload looks like
        path = directory / "model.onnx"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


class Service:
    """The local app over a store, with its updater driven by the test's clock."""

    def __init__(self, store: Path) -> None:
        self.store = LocalModelStore(store)
        self.clock = Clock()
        settings = Settings(model_store=store, alias_check_s=0)
        self.registry: ModelRegistry = load_models(settings)
        self.updater = ModelUpdater(self.registry, interval_s=30, clock=self.clock)
        self.client = TestClient(create_app(self.registry, settings, offload=offload.threaded))

    def set(self, change: Any, *args: Any, **kwargs: Any) -> None:
        aliases = self.store.aliases(TINY_TEXT)
        versions = self.store.versions(TINY_TEXT)
        self.store.write_aliases(TINY_TEXT, change(TINY_TEXT, aliases, *args, versions=versions, **kwargs))

    def answer(self, version: str | None = None) -> tuple[str, np.ndarray]:
        path = f"/v2/models/{TINY_TEXT}" + (f"/versions/{version}" if version else "") + "/infer"
        response = self.client.post(
            path, json={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [TEXTS[0]]}]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["model_version"], np.array(body["outputs"][0]["data"], dtype=np.float32)


def computed_by(version: str, vector: np.ndarray) -> bool:
    return bool(np.allclose(vector, reference_embedding(TEXTS[0], SEEDS[version]), atol=1e-5))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    build(tmp_path, "1")
    service = Service(tmp_path)
    yield service
    service.client.close()


def index(service: Service) -> dict[str, dict[str, Any]]:
    response = service.client.post("/v2/repository/index", json={})
    return {entry["version"]: entry for entry in response.json()}


def test_a_promoted_version_is_validated_and_swapped_in(service: Service, tmp_path: Path) -> None:
    version, vector = service.answer()
    assert version == "1" and computed_by("1", vector)

    build(tmp_path, "2")
    service.set(promote, "2")
    assert service.answer()[0] == "1"  # nothing changes before the next check
    (change,) = service.updater.check()

    assert (change.version, change.swapped) == ("2", True)
    version, vector = service.answer()
    assert version == "2" and computed_by("2", vector)
    # The previous version stays loaded for pinned requests (keep_versions = 2).
    version, vector = service.answer("1")
    assert version == "1" and computed_by("1", vector)
    metadata = service.client.get(f"/v2/models/{TINY_TEXT}").json()
    assert metadata["versions"] == ["1", "2"] and metadata["parameters"]["serving_version"] == "2"


def client_answers(service: Service, version: str) -> str:
    """Every answer a client can get about ``version``: the index, the metadata, readiness, a pinned request."""
    answers = [
        service.client.post("/v2/repository/index", json={}),
        service.client.get(f"/v2/models/{TINY_TEXT}"),
        service.client.get("/v2/health/ready"),
        service.client.post(f"/v2/models/{TINY_TEXT}/versions/{version}/infer", json={"inputs": []}),
    ]
    return "\n".join(response.text for response in answers)


def assert_no_internals(text: str, tmp_path: Path) -> None:
    digests = [
        entry["sha256"][:12]
        for entry in json.loads((tmp_path / TINY_TEXT / "2" / "manifest.json").read_text())["files"]
    ]
    assert str(tmp_path) not in text and "sha256" not in text and "/" + TINY_TEXT + "/" not in text
    assert not any(digest in text for digest in digests), text


def test_a_corrupt_version_is_rejected_and_the_old_one_keeps_serving(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build(tmp_path, "2", corrupt=True)
    service.set(promote, "2")
    with caplog.at_level(logging.ERROR, logger="aimass"):
        (change,) = service.updater.check()

    assert not change.swapped and "sha256" in change.reason and "model.onnx" in change.reason
    version, vector = service.answer()
    assert version == "1" and computed_by("1", vector)
    # Clients are told what failed in the version's own terms...
    public = "file model.onnx failed its integrity check"
    listed = index(service)
    assert listed["1"]["state"] == "READY"
    assert listed["2"] == {"name": TINY_TEXT, "version": "2", "state": "UNAVAILABLE", "reason": public}
    metadata = service.client.get(f"/v2/models/{TINY_TEXT}").json()
    assert metadata["parameters"]["rejected"] == f"version 2: {public}"
    pinned = service.client.post(f"/v2/models/{TINY_TEXT}/versions/2/infer", json={"inputs": []})
    assert pinned.status_code == 404
    assert (
        pinned.json()["error"]
        == f"model '{TINY_TEXT}' has no version '2' loaded (it was rejected: {public}); loaded versions: 1"
    )
    assert service.client.get("/v2/health/ready").status_code == 200  # still serving: still ready
    # ...never the store's paths or the digests; those are the log's (once) and the operator's.
    assert_no_internals(client_answers(service, "2"), tmp_path)
    detail = service.registry.rejections(TINY_TEXT)["2"].detail
    assert str(tmp_path / TINY_TEXT / "2" / "model.onnx") in detail and "sha256" in detail
    assert [record.getMessage().count(detail) for record in caplog.records if detail in record.getMessage()] == [1]


def test_a_version_failing_its_samples_is_rejected(service: Service, tmp_path: Path) -> None:
    build(tmp_path, "2", wrong_samples=True)
    service.set(promote, "2")
    (change,) = service.updater.check()

    assert not change.swapped
    assert "validation samples" in change.reason and "cosine" in change.reason
    assert service.answer()[0] == "1"
    public = "its validation samples did not match (output 'embedding')"
    assert index(service)["2"]["reason"] == public
    assert service.client.get(f"/v2/models/{TINY_TEXT}").json()["parameters"]["rejected"] == f"version 2: {public}"
    assert "cosine" not in client_answers(service, "2")
    assert "cosine" in service.registry.rejections(TINY_TEXT)["2"].detail


def test_an_encrypted_version_without_its_key_is_rejected_without_naming_the_key(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN version 2 sealed under a master key the serving process does not have
    build(tmp_path / "plain", "2")
    key = tmp_path / "keys" / "master.key"
    seal_version(tmp_path / "plain" / TINY_TEXT / "2", tmp_path / TINY_TEXT / "2", LocalKeyProvider.create_or_open(key))
    monkeypatch.setenv("AIMASS_MASTER_KEY_FILE", str(tmp_path / "elsewhere" / "master.key"))
    service = Service(tmp_path)
    service.set(promote, "2")
    # WHEN it is checked
    (change,) = service.updater.check()
    # THEN the client reads which file could not be decrypted; the key's whereabouts stay in the log
    assert not change.swapped and "no key" in change.reason
    reason = index(service)["2"]["reason"]
    assert reason.startswith("file ") and reason.endswith(" could not be decrypted"), reason
    answers = client_answers(service, "2")
    assert "elsewhere" not in answers and "master" not in answers and "key" not in answers
    assert_no_internals(answers, tmp_path)


def test_a_rejected_version_is_retried_with_backoff(service: Service, tmp_path: Path) -> None:
    build(tmp_path, "2", corrupt=True)
    service.set(promote, "2")
    assert len(service.updater.check()) == 1
    service.clock.now += 29
    assert service.updater.check() == []  # within the first backoff (one interval): not retried
    service.clock.now += 1
    assert len(service.updater.check()) == 1  # retried, failed again: the next wait doubles
    service.clock.now += 59
    assert service.updater.check() == []
    # The operator republishes the file correctly (as a repaired upload would); the next retry takes it.
    build_fixed = tmp_path / "fixed"
    build_tiny_text(build_fixed, TINY_TEXT, "2", seed=SEEDS["2"])
    (tmp_path / TINY_TEXT / "2" / "model.onnx").write_bytes((build_fixed / TINY_TEXT / "2" / "model.onnx").read_bytes())
    service.clock.now += 1
    (change,) = service.updater.check()
    assert change.swapped and service.answer()[0] == "2"
    assert all(entry["state"] == "READY" for entry in index(service).values())


def test_rollback_skips_unusable_versions(service: Service, tmp_path: Path) -> None:
    for version, kind in (("2", "good"), ("3", "corrupt"), ("4", "good")):
        build(tmp_path, version, corrupt=kind == "corrupt")
        service.set(promote, version)
        service.updater.check()
    assert service.answer()[0] == "4"

    service.set(rollback, usable=lambda version: version != "3")
    service.updater.check()
    version, vector = service.answer()
    assert version == "2" and computed_by("2", vector)


def test_a_canary_takes_its_share_of_unpinned_requests(tmp_path: Path) -> None:
    build(tmp_path, "1")
    build(tmp_path, "2")
    store = LocalModelStore(tmp_path)
    store.write_aliases(TINY_TEXT, promote(TINY_TEXT, store.aliases(TINY_TEXT), "1", ["1", "2"]))
    service = Service(tmp_path)
    draws = itertools.cycle([0.05, 0.35, 0.65, 0.95])  # a quarter of draws under 25 %
    service.registry._chance = lambda: next(draws)
    service.set(canary, "2", 25)
    service.updater.check()

    answered = [service.answer()[0] for _ in range(8)]
    assert answered.count("2") == 2 and answered.count("1") == 6
    service.set(promote, "2")
    service.updater.check()
    assert {service.answer()[0] for _ in range(4)} == {"2"}


def test_the_lambda_handler_checks_aliases_at_the_start_of_an_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, "1")
    monkeypatch.setenv("AIMASS_ALIAS_CHECK_S", "0.2")
    handler = import_handler(tmp_path, monkeypatch, "text").handler
    event = load_event("apigw_rest_v1_text_infer", model=TINY_TEXT)

    def served() -> str:
        response = handler(event, LocalLambdaContext())
        assert response["statusCode"] == 200, response["body"]
        version: str = json.loads(response_body(response))["model_version"]
        return version

    assert served() == "1"
    build(tmp_path, "2")
    store = LocalModelStore(tmp_path)
    store.write_aliases(TINY_TEXT, promote(TINY_TEXT, store.aliases(TINY_TEXT), "2", store.versions(TINY_TEXT)))
    assert served() == "1"  # the interval has not passed: no check yet
    time.sleep(0.25)
    assert served() == "2"  # this invocation checked first, swapped, then answered on the new version


def test_the_lambda_handler_follows_aliases_in_s3_and_decrypts_kms_sealed_versions(
    tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed path: models in S3 (moto's server over HTTP), version 2 sealed under a KMS key."""
    for key, value in moto.environment().items():
        monkeypatch.setenv(key, value)
    moto.bucket("models")
    key_id = moto.client("kms").create_key()["KeyMetadata"]["KeyId"]
    settings = Settings(model_bucket="models", aws_endpoint_url=moto.endpoint, cache_dir=tmp_path / "publisher-cache")
    store = open_store(settings)
    builds = tmp_path / "builds"
    build(builds, "1")
    store.publish(builds / TINY_TEXT / "1")
    build(builds, "2")
    sealed = tmp_path / "sealed"
    seal_version(builds / TINY_TEXT / "2", sealed, KmsKeyProvider(kms_client(moto.endpoint), key_id))
    store.publish(sealed)

    monkeypatch.setenv("AIMASS_MODEL_BUCKET", "models")
    monkeypatch.setenv("AIMASS_AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AIMASS_CACHE_DIR", str(tmp_path / "function-cache"))
    monkeypatch.setenv("AIMASS_ALIAS_CHECK_S", "0.2")
    monkeypatch.setenv("AIMASS_KEEP_VERSIONS", "1")
    store.write_aliases(TINY_TEXT, promote(TINY_TEXT, store.aliases(TINY_TEXT), "1", store.versions(TINY_TEXT)))
    handler = import_handler(tmp_path / "no-baked-models", monkeypatch, "text").handler
    event = load_event("apigw_rest_v1_text_infer", model=TINY_TEXT)

    def served() -> str:
        response = handler(event, LocalLambdaContext())
        assert response["statusCode"] == 200, response["body"]
        version: str = json.loads(response_body(response))["model_version"]
        return version

    assert served() == "1"
    store.write_aliases(TINY_TEXT, promote(TINY_TEXT, store.aliases(TINY_TEXT), "2", store.versions(TINY_TEXT)))
    time.sleep(0.25)
    assert served() == "2"
    # The sealed version was fetched as ciphertext only: no cached file holds the plaintext graph.
    plaintext = (builds / TINY_TEXT / "2" / "model.onnx").read_bytes()
    probe = plaintext[len(plaintext) // 2 : len(plaintext) // 2 + 64]
    cached = [path for path in (tmp_path / "function-cache").rglob("*") if path.is_file()]
    assert cached and not any(probe in path.read_bytes() for path in cached)
    # Only the loaded version stays in the function's cache (AIMASS_KEEP_VERSIONS=1): Lambda's /tmp is small.
    cache = tmp_path / "function-cache"
    assert [path.name for path in (cache / TINY_TEXT).iterdir()] == ["2"]
    assert {path.name for path in (cache / "blobs").iterdir()} == {
        entry.sha256 for entry in store.manifest(TINY_TEXT, "2").files
    }
