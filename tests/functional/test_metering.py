"""Pay-per-use through the API: keys, scopes, rate and quota, one usage record per request, failing closed.

The app is the real one (build_app) over the tiny text model, with metering on SQLite in a temporary
state folder; keys are created through the same operations the CLI and admin API use.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mangum import Mangum
from starlette.types import Message, Receive, Scope, Send

from aimass.http.app import build_app, metering_from_settings
from aimass.http.metered import MeteringGate
from aimass.http.middleware.metering import MeteringMiddleware
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.key_admin import create_key, revoke_key
from aimass.metering.service import MeteringService
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Plan, Settings
from tests.conftest import load_event
from tests.tiny_models import TINY_TEXT

NOW = datetime.now(UTC)
PLANS = {
    "default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000),
    "slow": Plan(rate_per_s=0.01, burst=2, monthly_units=1_000_000),
    "small": Plan(rate_per_s=1000, burst=1000, monthly_units=20),
}
BODY = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["the cat sat", "a red car"]}]}
INFER = f"/v2/models/{TINY_TEXT}/infer"


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_store=tiny_store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS, alias_check_s=0
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def key(settings: Settings, tenant: str = "acme", scopes: tuple[str, ...] = ("invoke",), plan: str = "default") -> str:
    issued = create_key(open_key_store(settings), tenant=tenant, scopes=scopes, plan=plan, plans=PLANS, now=NOW)
    return issued.clear_text


def records(settings: Settings) -> list[Any]:
    usage, _ = open_usage(settings)
    return list(usage.query(NOW - timedelta(days=1), NOW + timedelta(days=1)))


def test_model_routes_need_a_key_and_health_does_not(client: TestClient) -> None:
    missing = client.post(INFER, json=BODY)
    assert missing.status_code == 401
    assert "missing API key" in missing.json()["error"] and missing.headers["www-authenticate"].startswith("Bearer")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == 200, path
    for path in ("/v1/models",):
        assert client.get(path).status_code == 401, path


def test_unknown_malformed_and_wrong_keys_get_the_same_answer(client: TestClient, settings: Settings) -> None:
    real = key(settings)
    wrong_secret = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    unknown = "am_000000000000_" + real.split("_", 2)[2]
    answers = {
        client.post(INFER, json=BODY, headers={"authorization": f"Bearer {presented}"}).json()["error"]
        for presented in ("nonsense", wrong_secret, unknown)
    }
    assert len(answers) == 1 and "invalid API key" in answers.pop()


def test_a_valid_key_is_served_and_metered(client: TestClient, settings: Settings) -> None:
    bearer = client.post(INFER, json=BODY, headers={"authorization": f"Bearer {key(settings)}"})
    header = client.post(INFER, json=BODY, headers={"x-api-key": key(settings, tenant="beta")})
    assert bearer.status_code == header.status_code == 200

    rows = {row.tenant: row for row in records(settings)}
    assert set(rows) == {"acme", "beta"}
    row = rows["acme"]
    assert (row.model, row.version, row.domain, row.unit) == (TINY_TEXT, "1", "text", "prompt_tokens")
    assert row.units == 6 and row.billed and row.status == 200  # "the cat sat" + "a red car": 3 + 3 tokens
    assert row.route == "POST /v2/models/{name}/infer"
    assert row.cost == pytest.approx(6 * settings.prices["prompt_tokens"])
    assert row.inference_ms > 0 and row.total_ms >= row.inference_ms


def test_client_errors_are_recorded_and_not_billed(client: TestClient, settings: Settings) -> None:
    bad = client.post(INFER, json={"inputs": []}, headers={"x-api-key": key(settings)})
    assert bad.status_code == 400
    (row,) = records(settings)
    assert row.status == 400 and not row.billed and row.cost == 0


def test_scopes_revocation_and_expiry(client: TestClient, settings: Settings) -> None:
    invoke_only = key(settings)
    forbidden = client.get("/v1/admin/keys", headers={"x-api-key": invoke_only})
    assert forbidden.status_code == 403 and "'admin' scope" in forbidden.json()["error"]["message"]

    store = open_key_store(settings)
    revoke_key(store, invoke_only.split("_")[1], now=NOW - timedelta(seconds=1))
    # The key was checked and cached a moment ago; revocation takes effect once the cache entry expires.
    fresh = TestClient(build_app(settings.model_copy(update={"key_cache_s": 0})))
    revoked = fresh.post(INFER, json=BODY, headers={"x-api-key": invoke_only})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]

    expired = create_key(
        store, tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=NOW - timedelta(days=2),
        expires_at=NOW - timedelta(days=1) + timedelta(seconds=1),
    )  # fmt: skip
    answer = fresh.post(INFER, json=BODY, headers={"x-api-key": expired.clear_text})
    assert answer.status_code == 401 and "expired" in answer.json()["error"]


def test_over_the_rate_is_429_with_retry_after(client: TestClient, settings: Settings) -> None:
    slow = key(settings, plan="slow")
    statuses = [client.post(INFER, json=BODY, headers={"x-api-key": slow}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["retry-after"]) >= 1
    assert "rate limit of plan 'slow'" in statuses[2].json()["error"]  # V2 routes answer the protocol's shape
    embeddings = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": "sun"}, headers={"x-api-key": slow})
    assert embeddings.status_code == 429 and embeddings.json()["error"]["code"] == "rate_limit_exceeded"


def test_the_quota_admits_its_units_and_then_429_naming_it(client: TestClient, settings: Settings) -> None:
    small = key(settings, plan="small")  # 20 units a month; each request below is 6 tokens
    statuses = [client.post(INFER, json=BODY, headers={"x-api-key": small}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = client.post("/v1/embeddings", json={"model": TINY_TEXT, "input": "sun"}, headers={"x-api-key": small})
    error = refused.json()["error"]
    assert refused.status_code == 429 and error["code"] == "insufficient_quota" and error["param"] == "quota"
    assert "20 units" in error["message"] and "resets at" in error["message"]
    billed = [row for row in records(settings) if row.billed]
    assert sum(row.units for row in billed) == 18 <= 20


def test_an_unavailable_usage_store_fails_closed(client: TestClient, settings: Settings) -> None:
    presented = key(settings)
    assert client.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    # The usage table disappears (a broken or unreachable store): no answer may leave unrecorded.
    with sqlite3.connect(settings.state_dir / "metering.db") as db:
        db.execute("DROP TABLE usage_records")
    refused = client.post(INFER, json=BODY, headers={"x-api-key": presented})
    assert refused.status_code == 503
    assert "not served or billed" in refused.json()["error"] and "outputs" not in refused.text


def test_a_retried_invocation_is_counted_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = Mangum(build_app(settings, in_lambda=True), lifespan="off")
    event = load_event("apigw_rest_v1_text_infer", model=TINY_TEXT)
    event["headers"]["x-api-key"] = key(settings)
    first = handler(event, LocalLambdaContext())
    again = handler(json.loads(json.dumps(event)), LocalLambdaContext())  # the same gateway request id
    assert first["statusCode"] == again["statusCode"] == 200
    (row,) = records(settings)
    assert row.request_id == event["requestContext"]["requestId"]
    _, quota = open_usage(settings)
    assert quota.used("acme", NOW.strftime("%Y-%m")) == row.units


def test_revocation_takes_effect_within_the_key_cache_interval(settings: Settings) -> None:
    cached = TestClient(build_app(settings.model_copy(update={"key_cache_s": 0.5})))
    presented = key(settings)
    assert cached.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    revoke_key(open_key_store(settings), presented.split("_")[1], now=datetime.now(UTC))
    # Within the interval the process still trusts what it checked...
    assert cached.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    time.sleep(0.55)
    # ...and once it has passed the key is read again, and refused.
    assert cached.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 401


def test_tenants_see_only_their_own_usage_and_keys(client: TestClient, settings: Settings) -> None:
    acme, beta = key(settings, tenant="acme"), key(settings, tenant="beta")
    for presented in (acme, beta):
        assert client.post(INFER, json=BODY, headers={"x-api-key": presented}).status_code == 200
    start = int((NOW - timedelta(hours=1)).timestamp())
    own = client.get(f"/v1/usage?start_time={start}", headers={"x-api-key": acme})
    assert own.status_code == 200
    requests = sum(result["num_model_requests"] for bucket in own.json()["data"] for result in bucket["results"])
    assert requests == 1
    other = client.get(f"/v1/usage?start_time={start}&tenant=beta", headers={"x-api-key": acme})
    assert other.status_code == 403
    assert client.get("/v1/admin/keys?tenant=beta", headers={"x-api-key": acme}).status_code == 403


def streamed_through_metering(service: MeteringService, presented: str) -> tuple[list[str], list[Message]]:
    """A file-download-like answer (nothing billed, its body in two chunks) through the metering middleware."""
    order: list[str] = []
    sent: list[Message] = []

    async def download(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        order.append("app sent the rest")
        await send({"type": "http.response.body", "body": b"second"})

    async def client_send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"] == b"first":
            order.append("client got the first chunk")
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    middleware = MeteringMiddleware(download, gate=MeteringGate(service))
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/files/file-abc/content",
        "headers": [(b"x-api-key", presented.encode())],
    }
    asyncio.run(middleware(scope, receive, client_send))
    return order, sent


def metering(settings: Settings) -> MeteringService:
    service = metering_from_settings(settings)
    assert service is not None
    return service


def test_an_answer_with_nothing_to_bill_streams_once_recorded(settings: Settings) -> None:
    # GIVEN an answer whose runtime never ran (a file's content): it is not held whole in memory
    order, sent = streamed_through_metering(metering(settings), key(settings))
    # THEN its record is written at its start, and its first chunk reaches the client before the app goes on
    assert order == ["client got the first chunk", "app sent the rest"]
    assert [m.get("body") for m in sent[1:]] == [b"first", b"second"]
    (row,) = records(settings)
    assert (row.status, row.units, row.billed) == (200, 0, False)


def test_an_unrecordable_streamed_answer_is_a_503_with_none_of_its_body(settings: Settings) -> None:
    presented, service = key(settings), metering(settings)
    with sqlite3.connect(settings.state_dir / "metering.db") as db:
        db.execute("DROP TABLE usage_records")
    order, sent = streamed_through_metering(service, presented)
    assert order == ["app sent the rest"]
    assert sent[0]["status"] == 503 and b"first" not in b"".join(m.get("body", b"") for m in sent)
