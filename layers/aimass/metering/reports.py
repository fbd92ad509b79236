"""Usage reports from usage records: time buckets (the ``/v1/usage`` API) and a monthly invoice.

Money is summed in ``Decimal``, never in floats. A record's cost is taken as the decimal its float prints
as (``repr``: the shortest decimal that reads back as the same float, which is also what DynamoDB stores),
and every amount and total is the exact sum of those decimals, so an invoice's total equals the sum of
its records' costs to the last digit. Integer micro-units would not do: a token costs 2e-8 USD.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from aimass.errors import InvalidInput
from aimass.metering.usage import UsageRecord

BUCKET_WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
# A day of minutes, a month of hours, a year of days: a wider range needs a wider bucket.
MAX_BUCKETS = {"1m": 1440, "1h": 744, "1d": 366}
# What a report groups by, as results name it, and the record attribute it reads.
GROUPS = {"model": "model", "api_key_id": "key_id", "route": "route"}
RESULT_OBJECT = "organization.usage.aimass.result"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Enough digits that no sum of float costs is ever rounded (a float's repr has at most 17 of them).
_PRECISION = 200


def money(value: float) -> Decimal:
    """A float amount as the decimal it prints as."""
    return Decimal(repr(value))


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    with localcontext() as context:
        context.prec = _PRECISION
        return sum(values, Decimal(0))


def bucket_edges(start: datetime, end: datetime, bucket_width: str) -> list[tuple[datetime, datetime]]:
    """The buckets of ``[start, end)``: ``bucket_width`` long from ``start``, the last one cut at ``end``."""
    if bucket_width not in BUCKET_WIDTHS:
        raise InvalidInput(
            f"bucket_width must be one of {', '.join(BUCKET_WIDTHS)}, got {bucket_width!r}", param="bucket_width"
        )
    if end <= start:
        raise InvalidInput("end_time must be after start_time", param="end_time")
    width = timedelta(seconds=BUCKET_WIDTHS[bucket_width])
    count = -((start - end) // width)  # ceiling
    if count > MAX_BUCKETS[bucket_width]:
        raise InvalidInput(
            f"the range from start_time to end_time spans {count} buckets of {bucket_width}; at most "
            f"{MAX_BUCKETS[bucket_width]} are answered: narrow the range or widen bucket_width",
            param="end_time",
        )
    return [(start + i * width, min(start + (i + 1) * width, end)) for i in range(count)]


def usage_buckets(
    records: Iterable[UsageRecord],
    start: datetime,
    end: datetime,
    bucket_width: str,
    group_by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Records summed per bucket and per group, in the OpenAI usage API's bucket shape.

    Every bucket of the range is listed, empty ones with no results. A result counts the requests
    (``num_model_requests``, billed or not) and sums the billed ``units`` and their ``cost``; results are
    always split by ``unit`` (tokens and images do not add up), and by each ``group_by`` name (``model``,
    ``api_key_id``, ``route``); a name not grouped by reads null, as in OpenAI's API.
    """
    unknown = [name for name in group_by if name not in GROUPS]
    if unknown:
        raise InvalidInput(
            f"group_by must name {', '.join(GROUPS)}; got {', '.join(map(repr, unknown))}", param="group_by"
        )
    edges = bucket_edges(start, end, bucket_width)
    width = timedelta(seconds=BUCKET_WIDTHS[bucket_width])
    grouped = [name for name in GROUPS if name in group_by]
    sums: list[dict[tuple[str, ...], _Sum]] = [{} for _ in edges]
    for record in records:
        at = record.at if record.at.tzinfo else record.at.replace(tzinfo=UTC)
        if not start <= at < end:
            continue
        key = (record.unit, *(getattr(record, GROUPS[name]) for name in grouped))
        sums[(at - start) // width].setdefault(key, _Sum()).add(record)
    return [
        {
            "object": "bucket",
            "start_time": int(low.timestamp()),
            "end_time": int(high.timestamp()),
            "results": [_result(key, total, grouped) for key, total in sorted(bucket.items())],
        }
        for (low, high), bucket in zip(edges, sums, strict=True)
    ]


class _Sum:
    __slots__ = ("costs", "requests", "units")

    def __init__(self) -> None:
        self.requests = 0
        self.units = 0
        self.costs: list[Decimal] = []

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        if record.billed:
            self.units += record.units
            self.costs.append(money(record.cost))


def _result(key: tuple[str, ...], total: _Sum, grouped: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "object": RESULT_OBJECT,
        "num_model_requests": total.requests,
        "unit": key[0],
        "units": total.units,
        "cost": float(exact_sum(total.costs)),
    }
    result.update(dict.fromkeys(GROUPS))
    result.update(zip(grouped, key[1:], strict=True))
    return result


# --- Invoices ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    """What one model's billed requests at one unit price cost in a month (USD)."""

    model: str
    unit: str
    unit_price: Decimal
    requests: int
    units: int
    amount: Decimal  # the exact sum of the records' costs


def month_range(month: str) -> tuple[datetime, datetime]:
    """``[first instant, first instant of the next month)`` of ``YYYY-MM``, in UTC."""
    match = _MONTH.fullmatch(month)
    if not match:
        raise InvalidInput(f"month must read YYYY-MM, e.g. 2026-03, got {month!r}", param="month")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    return start, datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def invoice(records: Iterable[UsageRecord], month: str) -> list[InvoiceLine]:
    """One line per model, unit and unit price (a price change mid-month makes two) of the billed records in
    ``month``; unbilled records (client and server errors) cost nothing and are left out."""
    start, end = month_range(month)
    lines: dict[tuple[str, str, Decimal], list[UsageRecord]] = {}
    for record in records:
        at = record.at if record.at.tzinfo else record.at.replace(tzinfo=UTC)
        if record.billed and start <= at < end:
            lines.setdefault((record.model, record.unit, money(record.unit_price)), []).append(record)
    return [
        InvoiceLine(
            model=model,
            unit=unit,
            unit_price=price,
            requests=len(billed),
            units=sum(record.units for record in billed),
            amount=exact_sum(money(record.cost) for record in billed),
        )
        for (model, unit, price), billed in sorted(lines.items())
    ]


def invoice_total(lines: Iterable[InvoiceLine]) -> Decimal:
    return exact_sum(line.amount for line in lines)


def _plain(value: Decimal) -> str:
    """A decimal in positional notation, never ``2E-8``."""
    return f"{value:f}"


_HEADER = ("model", "unit", "requests", "units", "unit_price", "amount")


def _rows(lines: Sequence[InvoiceLine]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (line.model, line.unit, str(line.requests), str(line.units), _plain(line.unit_price), _plain(line.amount))
        for line in lines
    ]
    rows.append(("TOTAL", "", str(sum(line.requests for line in lines)), "", "", _plain(invoice_total(lines))))
    return rows


def render_table(lines: Sequence[InvoiceLine], *, tenant: str, month: str) -> str:
    """A plain-text table for people: a title, a header, a line each, the total (USD)."""
    rows = [_HEADER, *_rows(lines)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADER))]
    numeric = {2, 3, 4, 5}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [line(row) for row in rows]
    return "\n".join([f"invoice: tenant {tenant}, {month}, USD", body[0], rule, *body[1:-1], rule, body[-1]]) + "\n"


def render_csv(lines: Sequence[InvoiceLine]) -> str:
    """CSV with a header, a row per line and a last ``TOTAL`` row; amounts in positional notation."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEADER)
    writer.writerows(_rows(lines))
    return out.getvalue()


def render_json(lines: Sequence[InvoiceLine], *, tenant: str, month: str) -> str:
    """JSON with amounts and prices as decimal strings, so that no client parses them into floats."""
    document = {
        "object": "invoice",
        "tenant": tenant,
        "month": month,
        "currency": "usd",
        "lines": [
            {
                "model": line.model,
                "unit": line.unit,
                "requests": line.requests,
                "units": line.units,
                "unit_price": _plain(line.unit_price),
                "amount": _plain(line.amount),
            }
            for line in lines
        ],
        "total": _plain(invoice_total(lines)),
    }
    return json.dumps(document, indent=2) + "\n"
