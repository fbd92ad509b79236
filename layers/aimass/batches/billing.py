"""Billing a batch: one billed usage record per shard and unit, written once however often the shard runs.

A record's id is made from the batch, the shard and the unit (``batch_..-00003-prompt_tokens``), so a shard
that runs again after a crash writes a duplicate, which the usage store neither writes nor charges
(``UsageStore.record_billed``). A unit costs its price times the plan's ``batch_price_factor``, and the route
is ``BATCH <endpoint>`` (``BATCH /v1/embeddings``), so usage reports show batch work apart from requests.

The quota is checked when the batch is submitted (``QuotaCheck``: a tenant whose month's units are used up
makes no batch); the work then runs to its end, so its records are charged whatever the counter holds by
then (a batch is not stopped half-way by its own usage).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aimass.batches.model import BatchRecord, ShardResult
from aimass.metering.keys import Caller
from aimass.metering.service import over_quota
from aimass.metering.usage import QuotaCounter, UsageRecord, UsageStore, period_of
from aimass.settings import Settings

METHOD = "BATCH"  # in place of a request's HTTP method: the route of batch work in usage records
# No limit: the batch was admitted against the quota when it was submitted.
_UNLIMITED = 1 << 62


def record_id(batch_id: str, shard: int, unit: str) -> str:
    return f"{batch_id}-{shard:05d}-{unit}"


class BatchBilling:
    def __init__(self, usage: UsageStore, settings: Settings) -> None:
        self.usage = usage
        self.settings = settings

    def __call__(self, batch: BatchRecord, shard: int, result: ShardResult) -> None:
        plan = self.settings.plans.get(batch.plan)
        factor = plan.batch_price_factor if plan is not None else 1.0
        at = datetime.now(UTC)
        for unit, units in sorted(result.units.items()):
            model, version, domain = (result.models.get(unit, "") + "@@").split("@")[:3]
            price = self.settings.prices.get(unit, 0.0) * factor
            record = UsageRecord(
                request_id=record_id(batch.id, shard, unit),
                at=at,
                tenant=batch.tenant,
                key_id=batch.key_id,
                model=model,
                version=version,
                domain=domain,
                route=f"{METHOD} {batch.endpoint}",
                unit=unit,
                units=units,
                inference_ms=0.0,
                total_ms=0.0,
                memory_mb=0,
                unit_price=price,
                cost=round(units * price, 12),
                status=200,
                billed=True,
            )
            self.usage.record_billed(record, batch.tenant, _UNLIMITED)


class QuotaCheck:
    """Refuses a batch (429) from a tenant whose plan's units for this month are used up."""

    def __init__(self, counter: QuotaCounter, settings: Settings) -> None:
        self.counter = counter
        self.settings = settings

    def __call__(self, caller: Caller) -> None:
        plan = self.settings.plans.get(caller.plan)
        if plan is None:
            return  # the metering middleware refused the key already
        at = datetime.now(UTC)
        if self.counter.used(caller.tenant, period_of(at)) >= plan.monthly_units:
            raise over_quota(caller.plan, plan, at)
