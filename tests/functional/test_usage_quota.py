"""``GET /v1/usage`` tells a caller its quota: its key's plan, the month's units charged to its tenant's counter (the
one that answers 429 once it is used up), what is left, and when it resets; only on the first page of its own usage.

GIVEN units charged to a tenant this month, WHEN one of its keys (no admin scope) reads its usage, THEN the quota
says what the counter holds; an admin reading another tenant's usage gets no quota (that tenant's keys may differ
in plan).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.service import next_month
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Plan, Settings
from tests.functional.test_usage_api import record
from tests.operator_keys import bearer, cli_key

PLANS = {"default": Plan(rate_per_s=10_000, burst=10_000, monthly_units=1_000)}


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state_dir = tmp_path_factory.mktemp("quota-state")
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=state_dir, plans=PLANS, alias_check_s=0)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_tenant_reads_its_quota_left_with_its_usage(client: TestClient, settings: Settings) -> None:
    # GIVEN 300 units charged to acme this month
    store, _ = open_usage(settings)
    now = datetime.now(UTC)
    charged = record(1, "acme", units=300).model_copy(update={"at": now})
    assert store.record_billed(charged, "acme", PLANS["default"].monthly_units) == "recorded"
    key = cli_key(settings.state_dir, "acme", "invoke")
    start = int((now - timedelta(days=1)).timestamp())
    # WHEN acme's key reads its usage
    hourly: dict[str, str | int] = {"start_time": start, "bucket_width": "1h", "limit": 1}
    answer = client.get("/v1/usage", params=hourly, headers=bearer(key))
    # THEN the first page has its plan, the units used and left, and when they reset
    assert answer.status_code == 200, answer.text
    assert answer.json()["quota"] == {
        "plan": "default",
        "period": now.strftime("%Y-%m"),
        "monthly_units": 1000,
        "used_units": 300,
        "remaining_units": 700,
        "resets_at": int(next_month(now).timestamp()),
    }
    # AND a later page, or another tenant's usage read by an admin, carries none
    page = answer.json()["next_page"]
    later = client.get("/v1/usage", params={**hourly, "page": page}, headers=bearer(key))
    assert later.status_code == 200 and "quota" not in later.json()
    admin = cli_key(settings.state_dir, "ops", "invoke,admin")
    other = client.get("/v1/usage", params={"start_time": start, "tenant": "acme"}, headers=bearer(admin))
    assert other.status_code == 200 and "quota" not in other.json()
