"""Usage reports: buckets and grouping in the OpenAI usage shape, invoices whose totals are exact."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from aimass.errors import InvalidInput
from aimass.metering.reports import (
    RESULT_OBJECT,
    InvoiceLine,
    invoice,
    invoice_total,
    month_range,
    render_csv,
    render_json,
    render_table,
    usage_buckets,
)
from aimass.metering.usage import UsageRecord

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def record(n: int, *, at: datetime = T0, **overrides: Any) -> UsageRecord:
    units = int(overrides.pop("units", 100))
    price = float(overrides.pop("unit_price", 2e-8))
    billed = bool(overrides.pop("billed", True))
    values: dict[str, Any] = {
        "request_id": f"req-{n}",
        "at": at,
        "tenant": "acme",
        "key_id": "0123456789ab",
        "model": "tiny-text",
        "version": "1",
        "domain": "text",
        "route": "POST /v1/embeddings",
        "unit": "tokens",
        "units": units,
        "inference_ms": 1.5,
        "total_ms": 2.5,
        "memory_mb": 0,
        "unit_price": price,
        "cost": units * price if billed else 0.0,
        "status": 200 if billed else 400,
        "billed": billed,
    }
    return UsageRecord(**{**values, **overrides})


def test_every_bucket_of_the_range_is_listed_and_the_last_is_cut_at_the_end() -> None:
    # GIVEN two records in the first hour and one in the third, of a range 2.5 hours long
    records = [record(1), record(2, at=T0 + timedelta(minutes=59)), record(3, at=T0 + timedelta(hours=2))]
    # WHEN they are bucketed by hour
    buckets = usage_buckets(records, T0, T0 + timedelta(hours=2, minutes=30), "1h")
    # THEN three buckets, the empty one included, the last ending at the range's end
    start = int(T0.timestamp())
    assert [(b["start_time"] - start, b["end_time"] - start) for b in buckets] == [
        (0, 3600),
        (3600, 7200),
        (7200, 9000),
    ]
    assert all(b["object"] == "bucket" for b in buckets)
    assert [len(b["results"]) for b in buckets] == [1, 0, 1]
    first = buckets[0]["results"][0]
    assert first == {
        "object": RESULT_OBJECT,
        "num_model_requests": 2,
        "unit": "tokens",
        "units": 200,
        "cost": 200 * 2e-8,
        "model": None,
        "api_key_id": None,
        "route": None,
    }


def test_records_outside_the_range_are_left_out_and_the_end_is_excluded() -> None:
    end = T0 + timedelta(days=1)
    records = [record(1, at=T0 - timedelta(seconds=1)), record(2, at=T0), record(3, at=end)]
    (bucket,) = usage_buckets(records, T0, end, "1d")
    assert [r["num_model_requests"] for r in bucket["results"]] == [1]


def test_grouping_splits_results_by_model_key_and_route_and_always_by_unit() -> None:
    records = [
        record(1, model="a", key_id="k1"),
        record(2, model="a", key_id="k2"),
        record(3, model="a", key_id="k1", units=5),
        record(4, model="b", key_id="k1", unit="images", units=2, unit_price=1e-4),
    ]
    (bucket,) = usage_buckets(records, T0, T0 + timedelta(days=1), "1d", ["model", "api_key_id"])
    rows = [
        (r["model"], r["api_key_id"], r["route"], r["unit"], r["num_model_requests"], r["units"])
        for r in bucket["results"]
    ]
    assert rows == [
        ("b", "k1", None, "images", 1, 2),
        ("a", "k1", None, "tokens", 2, 105),
        ("a", "k2", None, "tokens", 1, 100),
    ]
    (by_route,) = usage_buckets(records, T0, T0 + timedelta(days=1), "1d", ["route"])
    assert {(r["route"], r["unit"], r["units"]) for r in by_route["results"]} == {
        ("POST /v1/embeddings", "tokens", 205),
        ("POST /v1/embeddings", "images", 2),
    }


def test_unbilled_requests_are_counted_but_cost_nothing() -> None:
    records = [record(1), record(2, billed=False, units=7)]
    (bucket,) = usage_buckets(records, T0, T0 + timedelta(minutes=1), "1m")
    (result,) = bucket["results"]
    assert (result["num_model_requests"], result["units"], result["cost"]) == (2, 100, 100 * 2e-8)


@pytest.mark.parametrize(
    ("width", "end", "group_by", "param", "says"),
    [
        ("2h", T0 + timedelta(hours=1), [], "bucket_width", "bucket_width must be one of 1m, 1h, 1d, got '2h'"),
        ("1h", T0, [], "end_time", "end_time must be after start_time"),
        ("1m", T0 + timedelta(days=1, minutes=1), [], "end_time", "spans 1441 buckets of 1m; at most 1440"),
        ("1h", T0 + timedelta(days=32), [], "end_time", "spans 768 buckets of 1h"),
        ("1d", T0 + timedelta(days=1), ["model", "tenant"], "group_by", "got 'tenant'"),
    ],
)
def test_bad_report_parameters_are_refused_by_name(
    width: str, end: datetime, group_by: list[str], param: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        usage_buckets([], T0, end, width, group_by)
    assert refused.value.param == param and says in refused.value.message


def test_a_month_of_days_and_a_day_of_minutes_are_answered() -> None:
    assert len(usage_buckets([], T0, T0 + timedelta(days=366), "1d")) == 366
    assert len(usage_buckets([], T0, T0 + timedelta(days=1), "1m")) == 1440


def test_invoice_total_is_the_exact_sum_of_the_records_costs() -> None:
    # GIVEN costs whose float sum is not exact (0.1 + 0.2 != 0.3 in floats)
    records = [record(1, units=1, unit_price=0.1), record(2, units=2, unit_price=0.1, cost=0.2)]
    assert 0.1 + 0.2 != 0.3
    lines = invoice(records, "2026-03")
    # THEN the total is exactly 0.3
    assert invoice_total(lines) == Decimal("0.3")


def test_invoice_of_many_random_records_sums_exactly_per_line_and_in_total() -> None:
    rng = random.Random(7)
    prices = {"tokens": 2e-8, "images": 1e-4, "seconds": 1e-4}
    records = [
        record(
            n,
            at=T0 + timedelta(seconds=rng.randrange(31 * 86400)),
            model=rng.choice(["a", "b", "c"]),
            unit=(unit := rng.choice(list(prices))),
            unit_price=prices[unit],
            units=rng.randrange(1, 5000),
            billed=rng.random() > 0.1,
        )
        for n in range(5000)
    ]
    lines = invoice(records, "2026-03")
    billed = [r for r in records if r.billed]
    assert invoice_total(lines) == sum((Decimal(repr(r.cost)) for r in billed), Decimal(0))
    assert sum(line.requests for line in lines) == len(billed)
    assert sum(line.units for line in lines) == sum(r.units for r in billed)
    for line in lines:
        mine = [r for r in billed if (r.model, r.unit) == (line.model, line.unit)]
        assert line.amount == sum((Decimal(repr(r.cost)) for r in mine), Decimal(0))
        assert line.unit_price == Decimal(repr(prices[line.unit]))


def test_invoice_keeps_to_its_month_splits_price_changes_and_leaves_out_errors() -> None:
    records = [
        record(1),
        record(2, unit_price=3e-8),  # the price changed mid-month: its own line
        record(3, billed=False),
        record(4, at=T0 - timedelta(microseconds=1)),  # February
        record(5, at=datetime(2026, 4, 1, tzinfo=UTC)),  # April
    ]
    lines = invoice(records, "2026-03")
    assert [(line.unit_price, line.requests, line.units) for line in lines] == [
        (Decimal("2E-8"), 1, 100),
        (Decimal("3E-8"), 1, 100),
    ]


def test_month_range_crosses_the_year_and_refuses_a_bad_month() -> None:
    assert month_range("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    for bad in ("2026-13", "2026-3", "march"):
        with pytest.raises(InvalidInput) as refused:
            month_range(bad)
        assert refused.value.param == "month" and "YYYY-MM" in refused.value.message


LINES = [
    InvoiceLine("a", "tokens", Decimal("2E-8"), 3, 1234, Decimal("0.00002468")),
    InvoiceLine("b", "images", Decimal("0.0001"), 2, 2, Decimal("0.0002")),
]


def test_csv_has_a_row_per_line_and_a_total_in_positional_notation() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(LINES))))
    assert [row["model"] for row in rows] == ["a", "b", "TOTAL"]
    assert rows[0]["unit_price"] == "0.00000002" and rows[0]["amount"] == "0.00002468"
    assert Decimal(rows[-1]["amount"]) == sum(Decimal(row["amount"]) for row in rows[:-1]) == Decimal("0.00022468")
    assert rows[-1]["requests"] == "5"


def test_json_carries_amounts_as_exact_decimal_strings() -> None:
    document = json.loads(render_json(LINES, tenant="acme", month="2026-03"))
    assert (document["object"], document["tenant"], document["month"], document["currency"]) == (
        "invoice",
        "acme",
        "2026-03",
        "usd",
    )
    assert document["lines"][0] == {
        "model": "a",
        "unit": "tokens",
        "requests": 3,
        "units": 1234,
        "unit_price": "0.00000002",
        "amount": "0.00002468",
    }
    assert Decimal(document["total"]) == sum(Decimal(line["amount"]) for line in document["lines"])


def test_table_lines_up_columns_and_ends_with_the_total() -> None:
    text = render_table(LINES, tenant="acme", month="2026-03")
    lines = text.splitlines()
    assert lines[0] == "invoice: tenant acme, 2026-03, USD"
    assert lines[1].split() == ["model", "unit", "requests", "units", "unit_price", "amount"]
    assert lines[-1].split() == ["TOTAL", "5", "0.00022468"]
    assert len({len(line) for line in lines[1:4]}) == 1  # header, rule and lines are equally wide


def test_an_empty_invoice_totals_zero() -> None:
    assert invoice([], "2026-03") == []
    assert json.loads(render_json([], tenant="acme", month="2026-03"))["total"] == "0"
