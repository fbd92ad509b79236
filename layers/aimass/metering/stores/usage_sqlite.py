"""The SQLite usage store and quota counters: two tables of the local metering database
(``aimass.metering.stores.sqlite``), written together in one transaction.

Their promises are those of every usage store (``aimass.metering.stores.base``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aimass.metering.stores.base import USAGE_FLOATS, USAGE_INTEGERS, USAGE_STRINGS, stamp
from aimass.metering.stores.sqlite import Database
from aimass.metering.usage import Settled, UsageRecord, period_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_records (
    request_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    domain TEXT NOT NULL,
    route TEXT NOT NULL,
    unit TEXT NOT NULL,
    units INTEGER NOT NULL,
    inference_ms REAL NOT NULL,
    total_ms REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    cost REAL NOT NULL,
    status INTEGER NOT NULL,
    billed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_records_tenant_at ON usage_records (tenant, at);
CREATE INDEX IF NOT EXISTS usage_records_at ON usage_records (at);
CREATE TABLE IF NOT EXISTS quota_counters (
    subject TEXT NOT NULL,
    period TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (subject, period)
);
"""
_COLUMNS = ("request_id", "at", *USAGE_STRINGS[1:], *USAGE_INTEGERS, *USAGE_FLOATS, "billed")


def _insert(usage: UsageRecord) -> tuple[str, tuple[Any, ...]]:
    values = usage.model_dump()
    values["at"] = stamp(usage.at)
    placeholders = ", ".join("?" for _ in _COLUMNS)
    sql = f"INSERT OR IGNORE INTO usage_records ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
    return sql, tuple(values[column] for column in _COLUMNS)


class SqliteUsageStore(Database):
    """Usage records in the ``usage_records`` table of the local metering database (``<state_dir>/metering.db``)."""

    schema = _SCHEMA

    def record(self, usage: UsageRecord) -> bool:
        return self.write([_insert(usage)]) == 1

    def record_billed(self, usage: UsageRecord, subject: str, limit: int) -> Settled:
        # The record and the counter share the database: one transaction writes both or neither.
        key = (subject, period_of(usage.at))

        def settle(db: sqlite3.Connection) -> tuple[bool, Settled]:
            if db.execute(*_insert(usage)).rowcount != 1:
                return False, "duplicate"
            db.execute("INSERT OR IGNORE INTO quota_counters (subject, period, used) VALUES (?, ?, 0)", key)
            charged = db.execute(
                "UPDATE quota_counters SET used = used + ? WHERE subject = ? AND period = ? AND used + ? <= ?",
                (usage.units, *key, usage.units, limit),
            ).rowcount
            return (True, "recorded") if charged == 1 else (False, "over_quota")

        return self.transact(settle)

    def query(self, start: datetime, end: datetime, tenant: str | None = None) -> Iterator[UsageRecord]:
        # Read whole, then yield: the lock is never held across the caller's iteration.
        select = f"SELECT {', '.join(_COLUMNS)} FROM usage_records WHERE at >= ? AND at < ?"
        if tenant is None:
            rows = self.read(f"{select} ORDER BY at", (stamp(start), stamp(end)))
        else:
            rows = self.read(f"{select} AND tenant = ? ORDER BY at", (stamp(start), stamp(end), tenant))
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=True))
            values["at"] = datetime.fromisoformat(values["at"])
            values["billed"] = bool(values["billed"])
            yield UsageRecord.model_validate(values)


class SqliteQuotaCounter(Database):
    """Quota counters in the ``quota_counters`` table of the local metering database."""

    schema = _SCHEMA

    def used(self, subject: str, period: str) -> int:
        rows = self.read("SELECT used FROM quota_counters WHERE subject = ? AND period = ?", (subject, period))
        return int(rows[0][0]) if rows else 0
