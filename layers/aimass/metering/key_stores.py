"""The two ``KeyStore`` backends: SQLite locally, DynamoDB on AWS; ``open_key_store`` picks one from the settings.

Both keep the same rules: ``add`` never overwrites (a conditional write), ``revoke`` only ever moves
``revoked_at`` earlier (so revoking a key still in a rotation's grace period ends it now, and revoking
twice keeps the first time). Times are stored as fixed-width UTC ISO strings, whose text order is their
time order: both backends compare them as strings inside the conditional write.

Errors (each an ``AimassError`` whose message names the store):

    KeyExists            409  add() of a key id that is already stored
    NotFound             404  revoke() of an unknown key id
    MeteringUnavailable  503  the store cannot be reached or refused the request (the reason, no traceback)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aimass import aws
from aimass.contract import KEYS_TABLE, KEYS_TENANT_INDEX
from aimass.errors import AimassError, InvalidInput, NotFound, ServiceUnavailable
from aimass.metering.keys import ApiKey, KeyStore
from aimass.metering.private_state import private_database
from aimass.metering.usage import Unavailable
from aimass.settings import Settings

METERING_DB = "metering.db"


class KeyExists(AimassError):
    status_code = 409
    code = "key_exists"
    error_type = "invalid_request_error"


class MeteringUnavailable(ServiceUnavailable, Unavailable):
    """The metering store cannot be reached or refused a request: nothing is served without it.

    Also a ``usage.Unavailable``, so the metering service treats an unreachable key store as it treats an
    unreachable usage store (fail closed, 503).
    """


def stored_time(at: datetime) -> str:
    """``2026-01-02T03:04:05.000006+00:00``: UTC, microseconds always written, so text order is time order."""
    if at.tzinfo is None:
        raise ValueError(f"key times must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def open_key_store(settings: Settings) -> KeyStore:
    """SQLite at ``<state_dir>/metering.db``, or the DynamoDB table ``keys_table`` (boto3 imported only then)."""
    if settings.metering == "sqlite":
        return SqliteKeyStore(settings.state_dir / METERING_DB)
    if settings.metering == "dynamodb":
        from botocore.exceptions import BotoCoreError

        try:
            client = aws.client("dynamodb", settings.aws_endpoint_url)
        except BotoCoreError as exc:  # e.g. no region configured
            raise MeteringUnavailable(f"DynamoDB table '{settings.keys_table}': {type(exc).__name__}: {exc}") from None
        return DynamoKeyStore(client, settings.keys_table)
    raise InvalidInput(
        "metering is off (AIMASS_METERING=off), so there is no key store; set AIMASS_METERING to sqlite or dynamodb",
        param="metering",
    )


# ---------------------------------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id        TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    scopes        TEXT NOT NULL,  -- comma-separated, in the record's order
    plan          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,  -- stored_time(): UTC ISO 8601, microseconds
    expires_at    TEXT,
    revoked_at    TEXT,
    description   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at);
"""
_COLUMNS = "key_id, tenant, scopes, plan, secret_sha256, created_at, expires_at, revoked_at, description"


class SqliteKeyStore:
    """Keys in the table ``api_keys`` of the local metering database (usage tables share the file).

    One connection per thread (and per process: a forked child opens its own), in autocommit mode: every
    write is one statement, atomic by itself. WAL lets readers run beside a writer; the busy timeout makes
    concurrent writers, from threads or processes, wait for each other instead of failing.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._local = threading.local()
        with self._sqlite():
            private_database(path)  # every tenant's usage and the key hashes: owner-only
            self._connection().executescript(_SCHEMA)

    def add(self, key: ApiKey) -> None:
        row = _row(key)
        with self._sqlite():
            try:
                self._connection().execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join('?' * 9)})", row)
            except sqlite3.IntegrityError:
                raise KeyExists(f"key id '{key.key_id}' is already stored in {self.path}", param="key_id") from None

    def get(self, key_id: str) -> ApiKey | None:
        with self._sqlite():
            found = self._connection().execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
            row = found.fetchone()
        return None if row is None else _record(row)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        query = f"SELECT {_COLUMNS} FROM api_keys"
        query += " ORDER BY created_at, key_id" if tenant is None else " WHERE tenant = ? ORDER BY created_at, key_id"
        with self._sqlite():
            rows = self._connection().execute(query, () if tenant is None else (tenant,)).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        when = stored_time(at)
        with self._sqlite():
            self._connection().execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND (revoked_at IS NULL OR revoked_at > ?)",
                (when, key_id, when),
            )
        record = self.get(key_id)
        if record is None:
            raise NotFound(f"no key with id '{key_id}' in {self.path}", param="key_id")
        return record

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as exc:
            raise MeteringUnavailable(f"metering database {self.path}: {exc}") from None


def _row(key: ApiKey) -> tuple[str | None, ...]:
    return (
        key.key_id, key.tenant, ",".join(key.scopes), key.plan, key.secret_sha256, stored_time(key.created_at),
        _optional_time(key.expires_at), _optional_time(key.revoked_at), key.description,
    )  # fmt: skip


def _record(row: tuple[Any, ...]) -> ApiKey:
    key_id, tenant, scopes, plan, secret_sha256, created_at, expires_at, revoked_at, description = row
    return ApiKey(
        key_id=key_id, tenant=tenant, scopes=tuple(scopes.split(",")), plan=plan, secret_sha256=secret_sha256,
        created_at=datetime.fromisoformat(created_at), expires_at=_parsed_time(expires_at),
        revoked_at=_parsed_time(revoked_at), description=description,
    )  # fmt: skip


def _optional_time(at: datetime | None) -> str | None:
    return None if at is None else stored_time(at)


def _parsed_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# -------------------------------------------------------------------------------------------------- DynamoDB


def keys_table_definition(table: str) -> dict[str, Any]:
    """``create_table`` arguments of a keys table named ``table`` (``aimass.contract.KEYS_TABLE``)."""
    return KEYS_TABLE.create_table(table)


class DynamoKeyStore:
    """Keys in a DynamoDB table (see ``keys_table_definition``), through a low-level boto3 client.

    ``tenant_index=None`` lists a tenant's keys with a filtered Scan, for a table deployed without the
    index; the index is the production choice. Reads are strongly consistent, so a revocation is seen
    by the next read (the serving side still caches a checked key for ``key_cache_s``).
    """

    def __init__(self, client: Any, table: str, *, tenant_index: str | None = KEYS_TENANT_INDEX) -> None:
        self.client = client
        self.table = table
        self.tenant_index = tenant_index

    def add(self, key: ApiKey) -> None:
        try:
            with self._dynamodb():
                self.client.put_item(
                    TableName=self.table, Item=_item(key), ConditionExpression="attribute_not_exists(key_id)"
                )
        except _ConditionFailed:
            raise KeyExists(
                f"key id '{key.key_id}' is already stored in table '{self.table}'", param="key_id"
            ) from None

    def get(self, key_id: str) -> ApiKey | None:
        with self._dynamodb():
            found = self.client.get_item(TableName=self.table, Key={"key_id": {"S": key_id}}, ConsistentRead=True)
        item = found.get("Item")
        return None if item is None else _from_item(item)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            items = self._pages("scan", {})
        elif self.tenant_index is None:
            items = self._pages(
                "scan",
                {"FilterExpression": "tenant = :tenant", "ExpressionAttributeValues": {":tenant": {"S": tenant}}},
            )
        else:
            items = self._pages(
                "query",
                {
                    "IndexName": self.tenant_index,
                    "KeyConditionExpression": "tenant = :tenant",
                    "ExpressionAttributeValues": {":tenant": {"S": tenant}},
                },
            )
        return sorted((_from_item(item) for item in items), key=lambda key: (key.created_at, key.key_id))

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        try:
            with self._dynamodb():
                updated = self.client.update_item(
                    TableName=self.table,
                    Key={"key_id": {"S": key_id}},
                    UpdateExpression="SET revoked_at = :at",
                    # Only ever earlier: a later revoke keeps the first one (or a grace period's shorter end).
                    ConditionExpression="attribute_exists(key_id) AND "
                    "(attribute_not_exists(revoked_at) OR revoked_at > :at)",
                    ExpressionAttributeValues={":at": {"S": stored_time(at)}},
                    ReturnValues="ALL_NEW",
                )
            return _from_item(updated["Attributes"])
        except _ConditionFailed:
            record = self.get(key_id)
            if record is None:
                raise NotFound(f"no key with id '{key_id}' in table '{self.table}'", param="key_id") from None
            return record

    def _pages(self, operation: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        call = getattr(self.client, operation)
        start: dict[str, Any] | None = None
        while True:
            with self._dynamodb():
                page = call(TableName=self.table, **params, **({"ExclusiveStartKey": start} if start else {}))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    @contextlib.contextmanager
    def _dynamodb(self) -> Iterator[None]:
        """botocore's errors as MeteringUnavailable naming the table and what DynamoDB said."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            if code == "ResourceNotFoundException":
                raise MeteringUnavailable(
                    f"DynamoDB table '{self.table}' (or its index '{self.tenant_index}') does not exist; "
                    "deploy it, or set AIMASS_KEYS_TABLE to the deployed one"
                ) from None
            reason = f"{code}: {error.get('Message', '')}".rstrip(": ")
            raise MeteringUnavailable(f"DynamoDB table '{self.table}' refused the request: {reason}") from None
        except BotoCoreError as exc:
            raise MeteringUnavailable(
                f"DynamoDB table '{self.table}' could not be reached: {type(exc).__name__}: {exc}"
            ) from None


class _ConditionFailed(Exception):
    pass


def _item(key: ApiKey) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_id": {"S": key.key_id},
        "tenant": {"S": key.tenant},
        "scopes": {"L": [{"S": scope} for scope in key.scopes]},
        "plan": {"S": key.plan},
        "secret_sha256": {"S": key.secret_sha256},
        "created_at": {"S": stored_time(key.created_at)},
        "description": {"S": key.description},
    }
    if key.expires_at is not None:
        item["expires_at"] = {"S": stored_time(key.expires_at)}
    if key.revoked_at is not None:
        item["revoked_at"] = {"S": stored_time(key.revoked_at)}
    return item


def _from_item(item: dict[str, Any]) -> ApiKey:
    def time(name: str) -> datetime | None:
        return datetime.fromisoformat(item[name]["S"]) if name in item else None

    return ApiKey(
        key_id=item["key_id"]["S"], tenant=item["tenant"]["S"], scopes=tuple(s["S"] for s in item["scopes"]["L"]),
        plan=item["plan"]["S"], secret_sha256=item["secret_sha256"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]), expires_at=time("expires_at"),
        revoked_at=time("revoked_at"), description=item.get("description", {}).get("S", ""),
    )  # fmt: skip
