"""Batches on one machine: SQLite for the batches and their shard queue, a folder for the shards' outputs,
worker threads (or processes) that claim shards from the queue.

The queue is a table of shards. A worker claims the oldest queued shard, or one whose lease ran out (its
worker died: killed, crashed), by a conditional UPDATE in a write transaction, so two workers never hold one
shard; it renews the lease after every chunk. Every write goes to ``<state_dir>/batches.db`` (owner-only,
WAL: the API server and ``python -m aimass.worker`` processes share it).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from aimass.batches.model import BatchRecord, ShardResult
from aimass.errors import ServiceUnavailable
from aimass.metering.stores.sqlite import Database
from aimass.metering.usage import Unavailable
from aimass.private import new_private_file, private_folder

T = TypeVar("T")
BATCHES_DB = "batches.db"


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except Unavailable as exc:
        raise ServiceUnavailable(f"the batch store cannot be used now ({exc}); retry shortly") from None


class _BatchDatabase(Database):
    schema = """
    CREATE TABLE IF NOT EXISTS batches (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE INDEX IF NOT EXISTS batches_by_id ON batches (id);
    CREATE TABLE IF NOT EXISTS shards (
        batch_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        shard INTEGER NOT NULL,
        state TEXT NOT NULL,            -- queued, running
        lease_until REAL NOT NULL,
        queued_at REAL NOT NULL,
        PRIMARY KEY (batch_id, shard)
    );
    """


class SQLiteBatchStore:
    """``BatchStore`` and the local shard queue, in one SQLite database."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        with _reachable():
            self.db = _BatchDatabase(path)
        self.clock = clock

    # --- BatchStore -----------------------------------------------------------------------------------

    def create(self, record: BatchRecord) -> None:
        with _reachable():
            self.db.write(
                [
                    (
                        "INSERT INTO batches (tenant, id, created_at, status, record) VALUES (?, ?, ?, ?, ?)",
                        (record.tenant, record.id, record.created_at, record.status, record.to_json().decode()),
                    )
                ]
            )

    def get(self, tenant: str, batch_id: str) -> BatchRecord | None:
        with _reachable():
            rows = self.db.read("SELECT record FROM batches WHERE tenant = ? AND id = ?", (tenant, batch_id))
        return BatchRecord.from_json(rows[0][0]) if rows else None

    def find(self, batch_id: str) -> BatchRecord | None:
        """The batch ``batch_id`` whoever's it is: for workers, which know only the id."""
        with _reachable():
            rows = self.db.read("SELECT record FROM batches WHERE id = ?", (batch_id,))
        return BatchRecord.from_json(rows[0][0]) if rows else None

    def list(self, tenant: str) -> list[BatchRecord]:
        with _reachable():
            rows = self.db.read(
                "SELECT record FROM batches WHERE tenant = ? ORDER BY created_at DESC, id DESC", (tenant,)
            )
        return [BatchRecord.from_json(row[0]) for row in rows]

    def save(self, record: BatchRecord, *, expect: Iterable[str]) -> bool:
        states = frozenset(expect)

        def body(db: sqlite3.Connection) -> tuple[bool, bool]:
            row = db.execute(
                "SELECT record FROM batches WHERE tenant = ? AND id = ?", (record.tenant, record.id)
            ).fetchone()
            if row is None:
                return False, False
            kept = BatchRecord.from_json(row[0])
            if kept.status not in states:
                return False, False
            # A shard counted since ``record`` was read stays counted (shard_done is the one writer of counts
            # while shards run); a finalizer's own tally, from every shard, is never below the kept counts.
            merged = replace(
                record,
                shards_done=tuple(sorted({*kept.shards_done, *record.shards_done})),
                completed=max(kept.completed, record.completed),
                failed=max(kept.failed, record.failed),
            )
            db.execute(
                "UPDATE batches SET status = ?, record = ? WHERE tenant = ? AND id = ?",
                (merged.status, merged.to_json().decode(), record.tenant, record.id),
            )
            return True, True

        with _reachable():
            return self.db.transact(body)

    def shard_done(self, tenant: str, batch_id: str, shard: int, result: ShardResult) -> BatchRecord | None:
        def body(db: sqlite3.Connection) -> tuple[bool, BatchRecord | None]:
            row = db.execute("SELECT record FROM batches WHERE tenant = ? AND id = ?", (tenant, batch_id)).fetchone()
            if row is None:
                return False, None
            record = BatchRecord.from_json(row[0])
            if shard in record.shards_done:
                return False, None
            counted = replace(
                record,
                shards_done=tuple(sorted((*record.shards_done, shard))),
                completed=record.completed + result.completed,
                failed=record.failed + result.failed,
            )
            db.execute(
                "UPDATE batches SET record = ? WHERE tenant = ? AND id = ?",
                (counted.to_json().decode(), tenant, batch_id),
            )
            db.execute("DELETE FROM shards WHERE batch_id = ? AND shard = ?", (batch_id, shard))
            return True, counted

        with _reachable():
            return self.db.transact(body)

    # --- the queue ------------------------------------------------------------------------------------

    def enqueue(self, record: BatchRecord) -> None:
        now = self.clock()
        with _reachable():
            self.db.write(
                [
                    (
                        "INSERT OR IGNORE INTO shards (batch_id, tenant, shard, state, lease_until, queued_at) "
                        "VALUES (?, ?, ?, 'queued', 0, ?)",
                        (record.id, record.tenant, shard, now),
                    )
                    for shard in range(record.shards)
                    if shard not in record.shards_done
                ]
            )

    def claim(self, lease_s: float) -> tuple[BatchRecord, int] | None:
        """The next shard to run, leased for ``lease_s``: a queued one, or one whose worker's lease ran out."""
        now = self.clock()

        def body(db: sqlite3.Connection) -> tuple[bool, tuple[str, str, int] | None]:
            row = db.execute(
                "SELECT batch_id, tenant, shard FROM shards WHERE state = 'queued' OR lease_until < ? "
                "ORDER BY queued_at, batch_id, shard LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return False, None
            db.execute(
                "UPDATE shards SET state = 'running', lease_until = ? WHERE batch_id = ? AND shard = ?",
                (now + lease_s, row[0], row[2]),
            )
            return True, (str(row[0]), str(row[1]), int(row[2]))

        with _reachable():
            claimed = self.db.transact(body)
        if claimed is None:
            return None
        batch = self.get(claimed[1], claimed[0])
        if batch is None:
            self.drop(claimed[0])
            return None
        return batch, claimed[2]

    def renew(self, batch_id: str, shard: int, lease_s: float) -> None:
        with _reachable():
            self.db.write(
                [
                    (
                        "UPDATE shards SET lease_until = ? WHERE batch_id = ? AND shard = ?",
                        (self.clock() + lease_s, batch_id, shard),
                    )
                ]
            )

    def drop(self, batch_id: str, *, queued_only: bool = False) -> None:
        """Forget ``batch_id``'s shards (only those not running, with ``queued_only``)."""
        where = " AND state = 'queued'" if queued_only else ""
        with _reachable():
            self.db.write([(f"DELETE FROM shards WHERE batch_id = ?{where}", (batch_id,))])

    def drop_shard(self, batch_id: str, shard: int) -> None:
        with _reachable():
            self.db.write([("DELETE FROM shards WHERE batch_id = ? AND shard = ?", (batch_id, shard))])

    def pending(self, batch_id: str) -> int:
        """Shards of ``batch_id`` queued or running."""
        with _reachable():
            rows = self.db.read("SELECT COUNT(*) FROM shards WHERE batch_id = ?", (batch_id,))
        return int(rows[0][0])

    def unfinished(self) -> builtins.list[BatchRecord]:
        """Every batch not yet at its end (in progress, cancelling or finalizing), oldest first."""
        with _reachable():
            rows = self.db.read(
                "SELECT record FROM batches WHERE status IN ('in_progress', 'cancelling', 'finalizing') "
                "ORDER BY created_at, id",
                (),
            )
        return [BatchRecord.from_json(row[0]) for row in rows]


class LocalLauncher:
    """Queues a batch's shards for the local workers (``aimass.batches.pool``)."""

    def __init__(self, store: SQLiteBatchStore) -> None:
        self.store = store

    def launch(self, record: BatchRecord) -> str | None:
        self.store.enqueue(record)
        return None

    def cancel(self, record: BatchRecord) -> None:
        self.store.drop(record.id, queued_only=True)


class FolderWorkStore:
    """``WorkStore`` in a folder: each key a file, written to a temporary name and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        private_folder(self.root)
        for parent in reversed(path.relative_to(self.root).parents[:-1]):
            private_folder(self.root / parent)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        with new_private_file(partial) as out:
            out.write(data)
        os.replace(partial, path)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/")) if prefix.endswith("/") else self._path(prefix).parent
        if not folder.is_dir():
            return []
        found = [
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]
        return sorted(key for key in found if key.startswith(prefix))

    def delete(self, prefix: str) -> None:
        if prefix.endswith("/"):
            shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)
            return
        for key in self.keys(prefix):
            self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"work key {key!r} is not a relative path of plain names")
        return self.root.joinpath(*parts)
