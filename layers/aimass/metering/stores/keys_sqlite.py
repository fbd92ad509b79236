"""The SQLite key store: the table ``api_keys`` of the local metering database (``aimass.metering.stores.sqlite``).

Its rules and errors are those of every key store (``aimass.metering.stores.base``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aimass.errors import NotFound
from aimass.metering.keys import ApiKey
from aimass.metering.stores.base import KeyExists, MeteringUnavailable, stored_time
from aimass.metering.stores.sqlite import connect, private_database

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
            connection = connect(self.path, busy_timeout_ms=int(self._timeout * 1000))
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
