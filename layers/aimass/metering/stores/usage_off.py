"""``metering=off``: a usage store that keeps nothing and quota counters that count nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from aimass.metering.usage import Settled, UsageRecord


class NoUsageStore:
    """``metering=off``: nothing is recorded, every query is empty."""

    def record(self, usage: UsageRecord) -> bool:
        return True

    def record_billed(self, usage: UsageRecord, subject: str, limit: int) -> Settled:
        return "recorded"

    def query(self, start: datetime, end: datetime, tenant: str | None = None) -> Iterator[UsageRecord]:
        return iter(())


class NoQuotaCounter:
    """``metering=off``: nothing is counted."""

    def used(self, subject: str, period: str) -> int:
        return 0
