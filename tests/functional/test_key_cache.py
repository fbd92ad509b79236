"""The key cache through the real app: bounded under a flood of made-up keys (which never evicts the real ones),
and a key revoked or rotated through the admin API forgotten at once by the process that changed it.

The app is the real one over the tiny text model, with metering on SQLite in a temporary state folder. Where a
test needs small cache bounds it builds the metering service itself and hands it to the app factory.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aimass.errors import Unauthorized
from aimass.http import offload as offloads
from aimass.http.app import build_app, create_app
from aimass.metering.key_admin import create_key
from aimass.metering.key_check import INVALID_KEY, UNKNOWN_KEYS
from aimass.metering.keys import ApiKey, KeyStore
from aimass.metering.service import MeteringService
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.serving.boot import load_models
from aimass.settings import Plan, Settings
from tests.tiny_models import TINY_TEXT

PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000)}
BODY = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["the cat sat"]}]}
INFER = f"/v2/models/{TINY_TEXT}/infer"
KEYS = "/v1/admin/keys"


class CountingStore:
    """The key store, counting its lookups by key id: what each presented key costs the store."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.lookups: Counter[str] = Counter()

    def add(self, key: ApiKey) -> None:
        self.store.add(key)

    def get(self, key_id: str) -> ApiKey | None:
        self.lookups[key_id] += 1
        return self.store.get(key_id)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        return self.store.list(tenant)

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        return self.store.revoke(key_id, at)


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> Settings:
    # The default key cache interval (30 s): every test here runs well within it.
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def key(settings: Settings, *scopes: str) -> str:
    issued = create_key(
        open_key_store(settings), tenant="acme", scopes=scopes or ("invoke",), plan="default", plans=PLANS,
        now=datetime.now(UTC),
    )  # fmt: skip
    return issued.clear_text


def made_up(number: int) -> str:
    """A well-formed key whose id no store holds."""
    return f"am_{number:012x}_{'A' * 43}"


def app_with(settings: Settings, service: MeteringService) -> FastAPI:
    return create_app(load_models(settings), settings, offload=offloads.threaded, metering=service)


# ------------------------------------------------------------------------------------------- a bounded cache


def test_a_flood_of_made_up_keys_keeps_the_cache_bounded_and_real_keys_cached(settings: Settings) -> None:
    # GIVEN the app with a key cache of 4 real keys and 16 unknown ids, and a real key already checked
    store = CountingStore(open_key_store(settings))
    usage, _ = open_usage(settings)
    service = MeteringService(store, usage, settings, known_keys=4, unknown_keys=16)
    real = key(settings)
    with TestClient(app_with(settings, service), raise_server_exceptions=False) as client:
        assert client.post(INFER, json=BODY, headers={"x-api-key": real}).status_code == 200
        # WHEN 300 distinct made-up keys arrive
        for number in range(300):
            refused = client.post(INFER, json=BODY, headers={"x-api-key": made_up(number)})
            # THEN each is refused, and the cache never holds more than its bound
            assert refused.status_code == 401 and refused.json()["error"] == INVALID_KEY
            assert service.checker.cached <= service.checker.max_cached == 20
        # AND the real key still works, from the cache: the flood evicted only other made-up ids
        assert client.post(INFER, json=BODY, headers={"x-api-key": real}).status_code == 200
        # AND a made-up id still cached is not looked up again
        assert client.post(INFER, json=BODY, headers={"x-api-key": made_up(299)}).status_code == 401
    assert store.lookups[real.split("_")[1]] == 1
    assert store.lookups[made_up(299).split("_")[1]] == 1


def test_the_default_bound_holds_for_the_metering_service(settings: Settings) -> None:
    usage, _ = open_usage(settings)
    service = MeteringService(open_key_store(settings), usage, settings)
    for number in range(UNKNOWN_KEYS + 2_000):
        with pytest.raises(Unauthorized):
            service.authenticate(made_up(number))
    assert service.checker.cached == UNKNOWN_KEYS
    real = key(settings)
    assert service.authenticate(real).key_id == real.split("_")[1]


def test_rate_buckets_are_bounded_and_still_limit(settings: Settings) -> None:
    # GIVEN room for the rate buckets of 2 keys, and 5 keys of a plan with a burst of 1
    slow = {"default": Plan(rate_per_s=0.01, burst=1, monthly_units=1_000_000)}
    settings = settings.model_copy(update={"plans": slow})
    usage, _ = open_usage(settings)
    service = MeteringService(open_key_store(settings), usage, settings, buckets=2)
    keys = [key(settings) for _ in range(5)]
    with TestClient(app_with(settings, service), raise_server_exceptions=False) as client:
        # WHEN each is used twice in a row
        statuses = [
            client.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code
            for presented in keys
            for _ in range(2)
        ]
    # THEN each key's second request is over its rate, and no more than two buckets were kept
    assert statuses == [200, 429] * 5
    assert len(service._buckets) == 2


# ------------------------------------------------------------------------------------- revoked in this process


def test_a_key_revoked_through_the_admin_api_is_refused_on_its_next_request(
    client: TestClient, settings: Settings
) -> None:
    # GIVEN a key used a moment ago, so its record is cached for 30 s
    admin, presented = key(settings, "invoke", "admin"), key(settings)
    assert client.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    # WHEN an admin revokes it through this process's admin API
    key_id = presented.split("_")[1]
    assert client.post(f"{KEYS}/{key_id}/revoke", headers={"x-api-key": admin}).status_code == 200
    # THEN the very next request with it is refused, saying why
    refused = client.post(INFER, json=BODY, headers={"x-api-key": presented})
    assert refused.status_code == 401 and "this API key was revoked at" in refused.json()["error"]


def test_a_key_rotated_through_the_admin_api_works_for_its_grace_period_only(
    client: TestClient, settings: Settings
) -> None:
    # GIVEN a key in use (cached)
    admin, old = key(settings, "invoke", "admin"), key(settings)
    assert client.post(INFER, json=BODY, headers={"x-api-key": old}).status_code == 200
    # WHEN it is rotated with a grace of 1.5 s
    rotated = client.post(
        f"{KEYS}/{old.split('_')[1]}/rotate", json={"grace_seconds": 1.5}, headers={"x-api-key": admin}
    )
    assert rotated.status_code == 200
    new, ends = rotated.json()["api_key"], datetime.fromisoformat(rotated.json()["old_key"]["revoked_at"])
    # THEN both keys work within the grace period...
    for presented in (old, new):
        assert client.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    # ...and once it has passed the old key is refused, though its record was cached before the rotation
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.05)
    refused = client.post(INFER, json=BODY, headers={"x-api-key": old})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    # AND a rotation with no grace ends the replaced key at once
    again = client.post(f"{KEYS}/{new.split('_')[1]}/rotate", json={"grace_seconds": 0}, headers={"x-api-key": admin})
    assert again.status_code == 200
    assert client.post(INFER, json=BODY, headers={"x-api-key": new}).status_code == 401
    assert client.post(INFER, json=BODY, headers={"x-api-key": again.json()["api_key"]}).status_code == 200
