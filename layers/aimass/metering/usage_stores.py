"""Usage records and quota counters on SQLite (locally) and DynamoDB (on AWS); ``open_usage`` picks one.

Both backends keep the promises of ``aimass.metering.usage``: a record is written once per request id
(a retried invocation writes nothing), and a billed record's charge either fits within the limit and is
written with the record, or is refused and nothing is written, atomically however many threads, processes
or Lambda instances bill at once. Atomicity lives in the store, never in this process: one transaction with
a conditional ``UPDATE`` in SQLite, one ``TransactWriteItems`` with a conditional update in DynamoDB.

A store that cannot be reached, or refuses a write for any other reason, raises ``Unavailable`` with the
reason; the HTTP layer answers 503 rather than serve a request it cannot meter.

Times are stored as ISO-8601 UTC strings with microseconds (``2026-03-01T12:00:00.000000+00:00``), which
sort as the times they name, in both backends.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from aimass import aws
from aimass.contract import COUNTERS_TABLE, USAGE_TABLE, USAGE_TENANT_AT_INDEX
from aimass.metering.private_state import private_database
from aimass.metering.usage import QuotaCounter, Settled, Unavailable, UsageRecord, UsageStore, period_of
from aimass.settings import Settings

T = TypeVar("T")

_INTEGERS = ("units", "memory_mb", "status")
_FLOATS = ("inference_ms", "total_ms", "unit_price", "cost")
_STRINGS = ("request_id", "tenant", "key_id", "model", "version", "domain", "route", "unit")


def stamp(at: datetime) -> str:
    """A time as stored: UTC, microseconds always written (a naive time is taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


# --- SQLite -----------------------------------------------------------------------------------------------

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
_COLUMNS = ("request_id", "at", *_STRINGS[1:], *_INTEGERS, *_FLOATS, "billed")


class _Database:
    """One connection to the metering database, shared by this object's threads under a lock.

    The lock only keeps one connection's statements apart; what makes a charge atomic across processes is
    the conditional UPDATE inside a ``BEGIN IMMEDIATE`` transaction (SQLite's write lock). WAL lets readers
    run beside the writer; ``busy_timeout`` makes a writer wait for the lock instead of failing at once.
    """

    def __init__(self, path: Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            private_database(path)  # every tenant's usage and the key hashes: owner-only
            # Autocommit mode: every transaction below is opened and closed explicitly.
            self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._connection.execute("PRAGMA journal_mode = WAL")
            # In WAL mode a commit survives a process crash without an fsync per commit.
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(f"metering database {path}: {exc}") from exc

    def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Run the statements in one write transaction; the row count of the last one."""

        def run(db: sqlite3.Connection) -> tuple[bool, int]:
            rowcount = 0
            for sql, parameters in statements:
                rowcount = db.execute(sql, parameters).rowcount
            return True, rowcount

        return self.transact(run)

    def transact(self, body: Callable[[sqlite3.Connection], tuple[bool, T]]) -> T:
        """Run ``body`` in one write transaction; it returns (commit?, result): False rolls everything back."""
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    commit, result = body(self._connection)
                    self._connection.execute("COMMIT" if commit else "ROLLBACK")
                except BaseException:
                    # SQLite rolls some failures back itself; a second ROLLBACK would hide the first error.
                    if self._connection.in_transaction:
                        self._connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise Unavailable(f"metering database {self.path}: {exc}") from exc
        return result

    def read(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise Unavailable(f"metering database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _insert(usage: UsageRecord) -> tuple[str, tuple[Any, ...]]:
    values = usage.model_dump()
    values["at"] = stamp(usage.at)
    placeholders = ", ".join("?" for _ in _COLUMNS)
    sql = f"INSERT OR IGNORE INTO usage_records ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
    return sql, tuple(values[column] for column in _COLUMNS)


class SqliteUsageStore(_Database):
    """Usage records in the ``usage_records`` table of the local metering database (``<state_dir>/metering.db``)."""

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


class SqliteQuotaCounter(_Database):
    """Quota counters in the ``quota_counters`` table of the local metering database."""

    def used(self, subject: str, period: str) -> int:
        rows = self.read("SELECT used FROM quota_counters WHERE subject = ? AND period = ?", (subject, period))
        return int(rows[0][0]) if rows else 0


# --- DynamoDB ---------------------------------------------------------------------------------------------


def usage_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of a usage table named ``name`` (``aimass.contract.USAGE_TABLE``)."""
    return USAGE_TABLE.create_table(name)


def counters_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of a quota counters table named ``name`` (``aimass.contract.COUNTERS_TABLE``)."""
    return COUNTERS_TABLE.create_table(name)


def _number(value: float) -> str:
    # DynamoDB takes numbers as decimal strings; the float's shortest repr reads back as the same float.
    return str(Decimal(repr(value)))


def _item(usage: UsageRecord) -> dict[str, dict[str, Any]]:
    item: dict[str, dict[str, Any]] = {name: {"S": getattr(usage, name)} for name in _STRINGS}
    item["at"] = {"S": stamp(usage.at)}
    item.update({name: {"N": str(getattr(usage, name))} for name in _INTEGERS})
    item.update({name: {"N": _number(getattr(usage, name))} for name in _FLOATS})
    item["billed"] = {"BOOL": usage.billed}
    return item


def _record(item: Mapping[str, Mapping[str, Any]]) -> UsageRecord:
    values: dict[str, Any] = {name: item[name]["S"] for name in _STRINGS}
    values["at"] = datetime.fromisoformat(item["at"]["S"])
    values.update({name: int(item[name]["N"]) for name in _INTEGERS})
    values.update({name: float(item[name]["N"]) for name in _FLOATS})
    values["billed"] = bool(item["billed"]["BOOL"])
    return UsageRecord.model_validate(values)


def _token(request_id: str) -> str:
    """A transaction's client token (at most 36 characters) for a request id of any length."""
    return request_id if len(request_id) <= 36 else hashlib.sha256(request_id.encode()).hexdigest()[:36]


def _refused(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _unavailable(table: str, exc: Exception) -> Unavailable:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return Unavailable(f"DynamoDB table {table}: {error.get('Code', 'error')}: {error.get('Message', exc)}")
    return Unavailable(f"DynamoDB table {table}: {exc}")


class DynamoUsageStore:
    """Usage records in a DynamoDB table laid out by ``usage_table_definition``.

    ``client`` is a low-level boto3 DynamoDB client. A tenant's query reads the ``tenant-at-index`` GSI,
    which is eventually consistent: a record written a moment ago may be missing from a report for up to
    about a second. ``query(tenant=None)`` (every tenant) scans the whole table with a time filter: it is
    the administrator's and the monthly reporting path, never a request's.
    """

    def __init__(
        self, client: Any, table: str, *, counters_table: str = "aimass-counters", page_size: int | None = None
    ) -> None:
        self.client = client
        self.table = table
        self.counters_table = counters_table
        # Items per Query or Scan call (``Limit``); DynamoDB ends a page at 1 MB whatever it is.
        self.page_size = page_size

    def record_billed(self, usage: UsageRecord, subject: str, limit: int) -> Settled:
        if usage.units > limit:
            return "over_quota"  # the counter's condition admits any charge to an absent counter
        charge = {
            "TableName": self.counters_table,
            "Key": {"subject": {"S": subject}, "period": {"S": period_of(usage.at)}},
            "UpdateExpression": "ADD #used :units",
            "ConditionExpression": "attribute_not_exists(#used) OR #used <= :room",
            "ExpressionAttributeNames": {"#used": "used"},
            "ExpressionAttributeValues": {":units": {"N": str(usage.units)}, ":room": {"N": str(limit - usage.units)}},
        }
        put = {"TableName": self.table, "Item": _item(usage), "ConditionExpression": "attribute_not_exists(request_id)"}
        try:
            # The token makes botocore's retry of a call whose answer was lost apply once (for ten minutes).
            self.client.transact_write_items(
                TransactItems=[{"Put": put}, {"Update": charge}], ClientRequestToken=_token(usage.request_id)
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "IdempotentParameterMismatchException":
                return "duplicate"  # the same request settled before, with other timings
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return "duplicate"
                if reasons[1:2] == ["ConditionalCheckFailed"]:
                    return "over_quota"
            raise _unavailable(self.table, exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(self.table, exc) from exc
        return "recorded"

    def record(self, usage: UsageRecord) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(usage),
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as exc:
            if _refused(exc):
                return False
            raise _unavailable(self.table, exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(self.table, exc) from exc
        return True

    def query(self, start: datetime, end: datetime, tenant: str | None = None) -> Iterator[UsageRecord]:
        names = {"#at": "at"}
        values: dict[str, Any] = {":start": {"S": stamp(start)}, ":end": {"S": stamp(end)}}
        if tenant is None:
            request: dict[str, Any] = {"FilterExpression": "#at >= :start AND #at < :end"}
            call = self.client.scan
        else:
            # A key condition has one range test, so BETWEEN (inclusive) and the end bound is dropped below.
            names["#tenant"] = "tenant"
            values[":tenant"] = {"S": tenant}
            request = {
                "IndexName": USAGE_TENANT_AT_INDEX,
                "KeyConditionExpression": "#tenant = :tenant AND #at BETWEEN :start AND :end",
            }
            call = self.client.query
        request.update(TableName=self.table, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        if self.page_size is not None:
            request["Limit"] = self.page_size
        end_stamp = stamp(end)
        while True:
            try:
                page = call(**request)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(self.table, exc) from exc
            for item in page.get("Items", []):
                if item["at"]["S"] < end_stamp:
                    yield _record(item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoQuotaCounter:
    """Quota counters in a DynamoDB table laid out by ``counters_table_definition``, charged by
    ``DynamoUsageStore.record_billed``; read consistently, so a charge just made is seen."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def used(self, subject: str, period: str) -> int:
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key={"subject": {"S": subject}, "period": {"S": period}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(self.table, exc) from exc
        item = response.get("Item")
        return int(item["used"]["N"]) if item and "used" in item else 0


# --- Metering off -----------------------------------------------------------------------------------------


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


def open_usage(settings: Settings, *, client: Any = None) -> tuple[UsageStore, QuotaCounter]:
    """The usage store and quota counter the settings name (``metering``): the composition root.

    ``sqlite``: both in ``<state_dir>/metering.db``. ``dynamodb``: ``usage_table`` and ``counters_table``
    through ``client`` (default: a new one for ``aws_endpoint_url``, ``aimass.aws``). ``off``: stores that keep nothing.
    """
    if settings.metering == "sqlite":
        path = settings.state_dir / "metering.db"
        return SqliteUsageStore(path), SqliteQuotaCounter(path)
    if settings.metering == "dynamodb":
        client = client or aws.client("dynamodb", settings.aws_endpoint_url)
        usage = DynamoUsageStore(client, settings.usage_table, counters_table=settings.counters_table)
        return usage, DynamoQuotaCounter(client, settings.counters_table)
    return NoUsageStore(), NoQuotaCounter()
