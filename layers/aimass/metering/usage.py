"""Usage records and quota counters: what a request cost, written once, summed exactly.

One ``UsageRecord`` per request, keyed by its request id: writing it again (a retried invocation) changes
nothing, so nothing is counted twice. Client errors are recorded with ``billed=False`` and cost 0.

Quota counters are per key or tenant and per calendar month (UTC). ``charge`` adds units only if the total
stays within the limit, atomically (a conditional UPDATE in SQLite, a conditional UpdateItem in DynamoDB),
so concurrent requests can never push a counter past its quota.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import ConfigDict

from aimass.schema import Schema


class UsageRecord(Schema):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    at: datetime  # when the request arrived, UTC
    tenant: str
    key_id: str
    model: str  # "" when the request never reached a model (e.g. refused before routing)
    version: str
    domain: str
    route: str  # the route template, e.g. "POST /v2/models/{name}/infer"
    unit: str  # tokens, images, seconds, observations, ... (the domain runtime's billing unit)
    units: int
    inference_ms: float
    total_ms: float
    memory_mb: int  # the function's configured memory (0 locally)
    unit_price: float  # price of one unit from the price table (settings)
    cost: float  # units * unit_price when billed, else 0
    status: int  # the HTTP status answered
    billed: bool  # False for client errors (4xx) and server errors (5xx)


Settled = Literal["recorded", "duplicate", "over_quota"]


def period_of(at: datetime) -> str:
    """The quota period a time falls in: its calendar month, UTC (``YYYY-MM``)."""
    return at.astimezone(UTC).strftime("%Y-%m") if at.tzinfo else at.strftime("%Y-%m")


class UsageStore(Protocol):
    def record(self, usage: UsageRecord) -> bool:
        """Write the record unless one with its request id exists; True if this call wrote it."""
        ...

    def record_billed(self, usage: UsageRecord, subject: str, limit: int) -> Settled:
        """Write a billed record and charge its units to ``subject``'s counter for its month, as one step.

        Both happen or neither: ``duplicate`` when a record with its request id exists (a retried request,
        already counted: nothing is charged again), ``over_quota`` when the units would take the counter past
        ``limit`` (nothing is written), else ``recorded``. One SQLite transaction locally; one DynamoDB
        transaction on AWS, whose client token also makes a retried call (a lost response) apply once.
        """
        ...

    def query(self, start: datetime, end: datetime, tenant: str | None = None) -> Iterator[UsageRecord]:
        """Records with ``start <= at < end``, of ``tenant`` (every tenant when None)."""
        ...


class QuotaCounter(Protocol):
    """What a tenant has used of its quota. Charges are never made alone: ``UsageStore.record_billed`` writes a
    billed record and its charge as one step, so a counter always equals the sum of its billed records."""

    def used(self, subject: str, period: str) -> int:
        """Units charged to ``subject`` in ``period`` (``YYYY-MM``); 0 if nothing was."""
        ...


class Unavailable(Exception):
    """The metering store cannot be reached or refused a write: the request is not served (503)."""
