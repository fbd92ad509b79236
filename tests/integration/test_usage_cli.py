"""``aimass usage report``: a tenant's invoice for a month in three formats, read from the usage store the
settings name (SQLite in the state folder, DynamoDB on moto's server); every format's total is exact."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aimass.metering.stores.usage_dynamodb import DynamoUsageStore, usage_table_definition
from aimass.metering.stores.usage_sqlite import SqliteUsageStore
from aimass.metering.usage import UsageRecord, UsageStore
from aimass_tools.cli import app
from tests.conftest import ROOT
from tests.moto_server import MotoServer

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PRICES = {"tokens": 2e-8, "images": 1e-4}


def record(n: int, *, tenant: str, at: datetime, model: str, unit: str, units: int, billed: bool) -> UsageRecord:
    price = PRICES[unit]
    return UsageRecord(
        request_id=f"req-{n}",
        at=at,
        tenant=tenant,
        key_id="0123456789ab",
        model=model,
        version="1",
        domain="text" if unit == "tokens" else "vision",
        route="POST /v1/embeddings" if unit == "tokens" else "POST /v1/vision/classify",
        unit=unit,
        units=units,
        inference_ms=1.0,
        total_ms=2.0,
        memory_mb=0,
        unit_price=price,
        cost=units * price if billed else 0.0,
        status=200 if billed else 400,
        billed=billed,
    )


def seed(store: UsageStore, count: int = 300) -> list[UsageRecord]:
    """Records of two tenants over February to April; acme's billed March ones are the invoice."""
    rng = random.Random(1)
    records = []
    for n in range(count):
        unit = rng.choice(list(PRICES))
        records.append(
            record(
                n,
                tenant=rng.choice(["acme", "acme", "globex"]),
                at=T0 + timedelta(seconds=rng.randrange(-5 * 86400, 36 * 86400)),
                model="tiny-text" if unit == "tokens" else rng.choice(["tiny-vision", "efficientnet-lite0"]),
                unit=unit,
                units=rng.randrange(1, 3000) if unit == "tokens" else rng.randrange(1, 8),
                billed=rng.random() > 0.1,
            )
        )
    for r in records:
        assert store.record(r)
    return records


def invoiced(records: list[UsageRecord]) -> list[UsageRecord]:
    return [r for r in records if r.tenant == "acme" and r.billed and T0 <= r.at < datetime(2026, 4, 1, tzinfo=UTC)]


def expected_total(records: list[UsageRecord]) -> Decimal:
    return sum((Decimal(repr(r.cost)) for r in invoiced(records)), Decimal(0))


@pytest.fixture
def state(tmp_path: Path) -> tuple[dict[str, str], list[UsageRecord]]:
    """The environment of a local setup whose state folder holds seeded usage."""
    state_dir = tmp_path / "state"
    records = seed(SqliteUsageStore(state_dir / "metering.db"))
    return {"AIMASS_STATE_DIR": str(state_dir), "AIMASS_METERING": "sqlite"}, records


def report(environment: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["usage", "report", "--tenant", "acme", *args], env=environment)


def test_json_report_totals_the_records_exactly(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, records = state
    result = report(environment, "--month", "2026-03", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["tenant"], document["month"]) == ("acme", "2026-03")
    assert Decimal(document["total"]) == expected_total(records)
    assert Decimal(document["total"]) == sum(Decimal(line["amount"]) for line in document["lines"])
    assert sum(line["requests"] for line in document["lines"]) == len(invoiced(records))
    models = {(line["model"], line["unit"]) for line in document["lines"]}
    assert models == {("tiny-text", "tokens"), ("tiny-vision", "images"), ("efficientnet-lite0", "images")}


def test_csv_report_has_the_same_lines_and_total(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, records = state
    result = report(environment, "--month", "2026-03", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[-1]["model"] == "TOTAL"
    assert Decimal(rows[-1]["amount"]) == expected_total(records) == sum(Decimal(row["amount"]) for row in rows[:-1])
    assert sum(int(row["units"]) for row in rows[:-1]) == sum(r.units for r in invoiced(records))


def test_table_report_is_for_people_and_ends_with_the_total(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, records = state
    result = report(environment, "--month", "2026-03")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "invoice: tenant acme, 2026-03, USD"
    assert lines[1].split() == ["model", "unit", "requests", "units", "unit_price", "amount"]
    assert lines[-1].split() == ["TOTAL", str(len(invoiced(records))), f"{expected_total(records):f}"]


def test_another_month_and_an_unknown_tenant(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, records = state
    february = json.loads(report(environment, "--month", "2026-02", "--format", "json").stdout)
    billed_in_february = [r for r in records if r.tenant == "acme" and r.billed and r.at < T0]
    assert sum(line["requests"] for line in february["lines"]) == len(billed_in_february) > 0
    nobody = CliRunner().invoke(app, ["usage", "report", "--tenant", "initech", "--month", "2026-03"], env=environment)
    assert nobody.exit_code == 0 and nobody.stdout.splitlines()[-1].split() == ["TOTAL", "0", "0"]


def test_bad_options_are_refused(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, _ = state
    bad_month = report(environment, "--month", "2026-3")
    assert bad_month.exit_code == 1 and "month must read YYYY-MM, e.g. 2026-03, got '2026-3'" in bad_month.stderr
    bad_format = report(environment, "--format", "xml")
    assert bad_format.exit_code == 2 and "xml" in bad_format.stderr
    off = report({**environment, "AIMASS_METERING": "off"}, "--month", "2026-03")
    assert off.exit_code == 1 and "metering is off" in off.stderr
    no_tenant = CliRunner().invoke(app, ["usage", "report"], env=environment)
    assert no_tenant.exit_code == 2 and "--tenant" in no_tenant.stderr


def test_the_report_as_a_user_runs_it(state: tuple[dict[str, str], list[UsageRecord]]) -> None:
    environment, records = state
    result = subprocess.run(
        [sys.executable, "-m", "aimass_tools.cli", "usage", "report", "--tenant", "acme", "--month", "2026-03",
         "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False, env={**os.environ, **environment},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Decimal(json.loads(result.stdout)["total"]) == expected_total(records)


def test_the_report_reads_dynamodb(moto: MotoServer) -> None:
    client = moto.client("dynamodb")
    client.create_table(**usage_table_definition("aimass-usage"))
    records = seed(DynamoUsageStore(client, "aimass-usage"), count=80)
    environment = {**moto.environment(), "AIMASS_METERING": "dynamodb", "AIMASS_AWS_ENDPOINT_URL": moto.endpoint}
    result = report(environment, "--month", "2026-03", "--format", "json")
    assert result.exit_code == 0, result.output
    assert Decimal(json.loads(result.stdout)["total"]) == expected_total(records)


def test_an_unreachable_store_is_reported(tmp_path: Path) -> None:
    environment = {
        "AIMASS_METERING": "dynamodb",
        "AIMASS_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = report(environment, "--month", "2026-03")
    assert result.exit_code == 1
    assert "the usage store cannot be read: DynamoDB table aimass-usage: Could not connect" in result.stderr
