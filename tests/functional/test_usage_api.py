"""``GET /v1/usage`` through the whole app (``build_app``, metering on SQLite) and the front function's Lambda
handler: a tenant sees its own usage only, an admin key any tenant's, bad parameters are refused by name.

Callers present real keys made by ``aimass keys create`` in the app's key store, and the metering middleware's
key check decides who they are; the usage read is the one the app's own usage store holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.stores.usage_factory import open_usage
from aimass.metering.stores.usage_sqlite import SqliteUsageStore
from aimass.metering.usage import Unavailable, UsageRecord
from aimass.settings import Plan, Settings
from tests.conftest import import_handler, response_body
from tests.events.build import rest_v1
from tests.operator_keys import bearer, cli_key

T0 = datetime(2026, 3, 1, tzinfo=UTC)
START = int(T0.timestamp())
DAY_END = START + 86400
# One app and its keys serve the whole module: a rate no test here reaches.
PLANS = {"default": Plan(rate_per_s=10_000, burst=10_000, monthly_units=10_000_000)}


def record(n: int, tenant: str, *, hours: float = 0, model: str = "tiny-text", units: int = 100) -> UsageRecord:
    return UsageRecord(
        request_id=f"{tenant}-{n}",
        at=T0 + timedelta(hours=hours),
        tenant=tenant,
        key_id=f"{tenant[0]}key{n:08d}" if n % 2 == 0 else tenant[0] * 12,  # odd ones share the tenant's main key
        model=model,
        version="1",
        domain="text",
        route="POST /v1/embeddings",
        unit="tokens",
        units=units,
        inference_ms=1.0,
        total_ms=2.0,
        memory_mb=0,
        unit_price=2e-8,
        cost=units * 2e-8,
        status=200,
        billed=True,
    )


def seed(settings: Settings) -> None:
    """Six requests of acme's in a day (and the sixth a day later), three of globex's, in the app's usage store."""
    store, _ = open_usage(settings)
    for n in range(6):
        store.record(record(n, "acme", hours=n * 5, model="tiny-text" if n < 4 else "tiny-vision", units=10 + n))
    for n in range(3):
        store.record(record(n, "globex", hours=n, units=1000))


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state_dir = tmp_path_factory.mktemp("usage-state")
    settings = Settings(model_store=tiny_store, metering="sqlite", state_dir=state_dir, plans=PLANS, alias_check_s=0)
    seed(settings)
    return settings


@pytest.fixture(scope="module")
def callers(settings: Settings) -> dict[str, str]:
    """Each caller's key: acme's and globex's invoke keys, and an admin key of the ops tenant."""
    made = {tenant: cli_key(settings.state_dir, tenant, "invoke") for tenant in ("acme", "globex")}
    return {**made, "admin": cli_key(settings.state_dir, "ops", "invoke,admin")}


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def usage(client: TestClient, key: str | None, **params: Any) -> Any:
    headers = bearer(key) if key else {}
    return client.get("/v1/usage", params={"start_time": START, "end_time": DAY_END, **params}, headers=headers)


def totals(page: dict[str, Any]) -> tuple[int, int]:
    results = [result for bucket in page["data"] for result in bucket["results"]]
    return sum(r["num_model_requests"] for r in results), sum(r["units"] for r in results)


def test_a_tenant_sees_its_own_usage_in_the_openai_page_shape(client: TestClient, callers: dict[str, str]) -> None:
    response = usage(client, callers["acme"])
    assert response.status_code == 200
    page = response.json()
    assert (page["object"], page["has_more"], page["next_page"]) == ("page", False, None)
    (bucket,) = page["data"]
    assert (bucket["object"], bucket["start_time"], bucket["end_time"]) == ("bucket", START, DAY_END)
    (result,) = bucket["results"]
    assert result["object"] == "organization.usage.aimass.result"
    assert (result["num_model_requests"], result["units"]) == (5, 10 + 11 + 12 + 13 + 14)  # the sixth is a day later
    assert result["cost"] == pytest.approx(60 * 2e-8)
    assert (result["model"], result["api_key_id"], result["route"]) == (None, None, None)


def test_a_tenant_never_sees_another_tenants_usage(client: TestClient, callers: dict[str, str]) -> None:
    # GIVEN acme and globex both have usage
    assert totals(usage(client, callers["globex"]).json()) == (3, 3000)
    # WHEN acme asks for globex's, or everyone's
    for other in ("globex", "*"):
        refused = usage(client, callers["acme"], tenant=other)
        # THEN it is refused, and nothing of globex's is in the answer
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "forbidden" and "may read only its own usage" in error["message"]
        assert "1000" not in refused.text
    # AND asking for its own tenant by name is its own usage
    assert totals(usage(client, callers["acme"], tenant="acme").json()) == (5, 60)


def test_an_admin_key_reads_any_tenant_and_every_tenant(client: TestClient, callers: dict[str, str]) -> None:
    assert totals(usage(client, callers["admin"], tenant="globex").json()) == (3, 3000)
    assert totals(usage(client, callers["admin"], tenant="acme").json()) == (5, 60)
    assert totals(usage(client, callers["admin"], tenant="*").json()) == (8, 3060)
    # Its own tenant, unnamed: ops has no usage.
    assert totals(usage(client, callers["admin"]).json()) == (0, 0)


def test_without_a_caller_usage_is_refused(client: TestClient, callers: dict[str, str]) -> None:
    response = usage(client, None)
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in response.json()["error"]["message"]


def test_buckets_and_groups(client: TestClient, callers: dict[str, str]) -> None:
    page = usage(client, callers["acme"], bucket_width="1h", group_by=["model", "key"]).json()
    assert len(page["data"]) == 24
    by_hour = {(b["start_time"] - START) // 3600: b["results"] for b in page["data"] if b["results"]}
    assert sorted(by_hour) == [0, 5, 10, 15, 20]  # the record at 25 h is outside the day
    (hour_20,) = by_hour[20]
    assert (hour_20["model"], hour_20["api_key_id"], hour_20["units"]) == ("tiny-vision", "akey00000004", 14)
    # OpenAI's SDKs spell a list group_by[]; key is api_key_id.
    spelled = client.get(
        "/v1/usage",
        params={"start_time": START, "end_time": DAY_END, "group_by[]": ["route", "api_key_id"]},
        headers=bearer(callers["acme"]),
    ).json()
    keys = {(r["route"], r["api_key_id"], r["model"]) for r in spelled["data"][0]["results"]}
    assert keys == {
        ("POST /v1/embeddings", key, None) for key in ("aaaaaaaaaaaa", "akey00000000", "akey00000002", "akey00000004")
    }


def test_end_time_defaults_to_now(client: TestClient, callers: dict[str, str]) -> None:
    start = int((datetime.now(UTC) - timedelta(hours=2)).timestamp())
    response = client.get("/v1/usage", params={"start_time": start}, headers=bearer(callers["acme"]))
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1  # one day-long bucket, cut at now


def test_buckets_come_in_pages(client: TestClient, callers: dict[str, str]) -> None:
    whole = usage(client, callers["acme"], bucket_width="1h", limit="24").json()
    pages, cursor = [], None
    while True:
        params = {"bucket_width": "1h", "limit": "10", **({"page": cursor} if cursor else {})}
        page = usage(client, callers["acme"], **params).json()
        pages.append(page)
        if not page["has_more"]:
            break
        cursor = page["next_page"]
    assert [len(page["data"]) for page in pages] == [10, 10, 4] and pages[-1]["next_page"] is None
    assert [bucket for page in pages for bucket in page["data"]] == whole["data"]
    assert pages[1]["data"][0]["start_time"] == int(pages[0]["next_page"])


BAD_PARAMETERS = [
    ({"start_time": None}, "start_time", "start_time: Field required"),
    ({"start_time": ""}, "start_time", "start_time is required, in unix seconds"),
    ({"start_time": "yesterday"}, "start_time", "start_time must be a whole number of unix seconds in decimal"),
    ({"start_time": "-5"}, "start_time", "start_time must be a whole number of unix seconds in decimal digits"),
    # Python's int() reads each of these; HTTP writes integers as decimal digits only.
    ({"start_time": f"{START}".replace("0", "_0", 1)}, "start_time", "in decimal digits, got '17"),
    ({"start_time": f"+{START}"}, "start_time", f"in decimal digits, got '+{START}'"),
    ({"start_time": f" {START}"}, "start_time", f"in decimal digits, got ' {START}'"),
    ({"start_time": "\u0661\u0662"}, "start_time", "in decimal digits, got '\u0661\u0662'"),
    ({"start_time": "9" * 5000}, "start_time", "in decimal digits, got '999"),
    ({"start_time": str(10**12)}, "start_time", "start_time must be between 0 and 253402300799"),
    ({"end_time": "1.5"}, "end_time", "end_time must be a whole number of unix seconds in decimal digits"),
    ({"end_time": START - 60}, "end_time", f"end_time ({START - 60}) must be after start_time ({START})"),
    ({"bucket_width": "1w"}, "bucket_width", "bucket_width must be one of 1m, 1h, 1d, got '1w'"),
    ({"group_by": ["model", "tenant"]}, "group_by", "group_by must be one of model, key, api_key_id, route"),
    ({"bucket_width": "1m", "end_time": DAY_END + 60}, "end_time", "spans 1441 buckets of 1m; at most 1440"),
    ({"bucket_width": "1h", "end_time": START + 32 * 86400}, "end_time", "spans 768 buckets of 1h"),
    ({"tenant": "Not A Tenant"}, "tenant", "tenant must be a tenant name"),
    # A regular expression's $ also matches before a final newline: the whole name must match.
    ({"tenant": "acme\n"}, "tenant", "tenant must be a tenant name"),
    ({"limit": "0"}, "limit", "limit must be between 1 and 31 for bucket_width 1d, got 0"),
    ({"limit": "ten"}, "limit", "limit must be a whole number in decimal digits, got 'ten'"),
    ({"limit": "1_0"}, "limit", "limit must be a whole number in decimal digits, got '1_0'"),
    ({"page": "12345"}, "page", "page '12345' is not a next_page of this range"),
]


@pytest.mark.parametrize(("params", "param", "says"), BAD_PARAMETERS)
def test_bad_parameters_are_refused_by_name(
    client: TestClient, callers: dict[str, str], params: dict[str, Any], param: str, says: str
) -> None:
    query = {"start_time": START, "end_time": DAY_END, **params}
    query = {key: value for key, value in query.items() if value is not None}
    response = client.get("/v1/usage", params=query, headers=bearer(callers["acme"]))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("invalid_input", "invalid_request_error", param)
    assert says in error["message"]


def test_an_unreachable_store_answers_503_and_logs_why(
    client: TestClient, callers: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the app's usage store cannot be read (as a DynamoDB table out of reach cannot)
    def unreachable(*_: object, **__: object) -> Iterator[UsageRecord]:
        raise Unavailable("DynamoDB table aimass-usage: Could not connect to the endpoint URL")

    monkeypatch.setattr(SqliteUsageStore, "query", unreachable)
    response = usage(client, callers["acme"])
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and error["message"] == "usage cannot be read now; retry shortly"
    assert "Could not connect" in caplog.text and "Could not connect" not in response.text


def test_with_metering_off_there_is_no_usage_to_read(tiny_store: Path) -> None:
    with TestClient(build_app(Settings(model_store=tiny_store, metering="off")), raise_server_exceptions=False) as off:
        response = off.get("/v1/usage", params={"start_time": START})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# ----------------------------------------------------------------------------- through the front function's handler


@pytest.fixture(scope="module")
def front(settings: Settings) -> Iterator[ModuleType]:
    """The front (text) function's handler over the same state folder: its key and usage stores."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIMASS_METERING", "sqlite")
        monkeypatch.setenv("AIMASS_STATE_DIR", str(settings.state_dir))
        monkeypatch.setenv("AIMASS_PLANS", json.dumps({name: plan.model_dump() for name, plan in PLANS.items()}))
        yield import_handler(settings.model_store, monkeypatch, "text")


def usage_event(name: str, key: str, query: dict[str, Any]) -> dict[str, Any]:
    """The REST event API Gateway sends the front function for ``GET /v1/usage``."""
    headers = {"Authorization": f"Bearer {key}"}
    return rest_v1(name, method="GET", path="/v1/usage", resource="/v1/usage", headers=headers, query=query)


def test_a_lambda_event_reads_the_callers_usage(front: ModuleType, callers: dict[str, str]) -> None:
    query = {"start_time": str(START), "end_time": str(DAY_END)}
    mine = front.handler(usage_event("usage-acme", callers["acme"], query), LocalLambdaContext())
    assert mine["statusCode"] == 200, mine
    assert totals(json.loads(response_body(mine))) == (5, 60)
    refused = front.handler(
        usage_event("usage-acme-all", callers["acme"], {**query, "tenant": "*"}), LocalLambdaContext()
    )
    assert refused["statusCode"] == 403 and "1000" not in response_body(refused).decode()
    every = front.handler(
        usage_event("usage-admin-all", callers["admin"], {**query, "tenant": "*"}), LocalLambdaContext()
    )
    assert totals(json.loads(response_body(every))) == (8, 3060)


@pytest.mark.parametrize(("params", "param", "says"), BAD_PARAMETERS)
def test_bad_parameters_through_a_lambda_event_are_refused_by_name(
    front: ModuleType, callers: dict[str, str], params: dict[str, Any], param: str, says: str
) -> None:
    sent = {"start_time": START, "end_time": DAY_END, **params}
    # As a client writes a query: each value its text, a list one parameter per item.
    query = {k: v if isinstance(v, list) else str(v) for k, v in sent.items() if v is not None}
    event = usage_event(f"usage-bad-{param}-{len(str(params))}", callers["acme"], query)
    response = front.handler(event, LocalLambdaContext())
    assert response["statusCode"] == 400, response
    error = json.loads(response_body(response))["error"]
    assert (error["code"], error["type"], error["param"]) == ("invalid_input", "invalid_request_error", param)
    assert says in error["message"]
