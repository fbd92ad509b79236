"""The DynamoDB batch store: one item per batch in the jobs table (``aimass.contract.JOBS_TABLE``).

An item is its keys (``tenant``, ``sk`` = "<created_at, 12 digits>#<batch id>", ``batch_id``), its ``status``
(what every move is conditioned on), the record as JSON in ``record``, and the shard counts as attributes of
their own: ``completed`` and ``failed`` (numbers) and ``shards_done`` (a number set, absent while empty).
The counts live outside the JSON because ``shard_done`` changes them with one atomic ADD, conditioned on the
shard not being in the set yet, so a retried shard counts once however its retries interleave.

The item is found by ``tenant`` and ``sk``; a caller knows only the tenant and the id, so the key is read from
the ``batch-index`` GSI first. A GSI is eventually consistent: a batch created a moment ago may be missing from
it, so a miss looks again among the tenant's batches of the last ``RECENT_S`` seconds, with a consistent read.

The client is any low-level boto3 DynamoDB client (``aimass.batches.aws_factory`` makes it with ``aimass.aws``).
A client error is a ``ServiceUnavailable`` for the caller; its detail goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from aimass.batches.model import BATCH_ID, BatchRecord, ShardResult
from aimass.contract import JOBS_BATCH_INDEX
from aimass.errors import ServiceUnavailable

log = logging.getLogger("aimass.batches")

# How long a new batch may take to appear in the batch-index GSI (DynamoDB's lag is typically under a second).
RECENT_S = 300
_COUNTS = ("completed", "failed", "shards_done")


def sort_key(created_at: int, batch_id: str) -> str:
    """The item's sort key: fixed-width digits, so text order is creation order (then id order)."""
    return f"{created_at:012d}#{batch_id}"


class DynamoDBBatchStore:
    """Batches in a DynamoDB table laid out by ``JOBS_TABLE.create_table``; promises as ``BatchStore``'s.

    ``save`` never loses a counted shard. A record read before a shard was counted (a cancel while shards
    run, the launch's job id) is saved with the kept shards added to its ``shards_done`` and, for each count,
    the larger of its own and the kept one: counts only grow while shards run, and the finalizer's tally of
    every written chunk is at least what the shards counted. A record that has seen every counted shard (its
    ``shards_done`` is the kept one, as read from this store) is saved with its counts as they are. Without
    this, whoever counts the last shard (and so finalizes) might never come, or a finished shard be closed
    and billed twice.
    """

    def __init__(self, client: Any, table: str, *, now: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table
        self._now = now

    def create(self, record: BatchRecord) -> None:
        item = {**_keys(record), **_body(record), **_counts(record)}
        try:
            with self._dynamodb("create"):
                self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except _ConditionFailed:
            # botocore retries a put whose answer was lost: the same record kept is that put, done.
            if self.get(record.tenant, record.id) != record:
                raise ValueError(f"batch '{record.id}' is already kept in table '{self.table}'") from None

    def get(self, tenant: str, batch_id: str) -> BatchRecord | None:
        sk = self._find(tenant, batch_id)
        if sk is None:
            return None
        with self._dynamodb("read"):
            found = self.client.get_item(
                TableName=self.table, Key={"tenant": {"S": tenant}, "sk": {"S": sk}}, ConsistentRead=True
            )
        item = found.get("Item")
        return None if item is None else _record(item)

    def list(self, tenant: str) -> list[BatchRecord]:
        query = {
            "KeyConditionExpression": "tenant = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        return [_record(item) for item in self._query(query)]

    def save(self, record: BatchRecord, *, expect: Iterable[str]) -> bool:
        expected = tuple(sorted(set(expect)))
        if not expected:
            return False
        key = {"tenant": {"S": record.tenant}, "sk": {"S": sort_key(record.created_at, record.id)}}
        # First as if the record had seen every counted shard; then, while shards are counted meanwhile,
        # with the kept shards and counts merged in (read, then written on the condition none was added).
        counts = _Counts(record.status, frozenset(record.shards_done), record.completed, record.failed)
        seen = len(counts.shards)
        # Each pass after the first follows a shard counted meanwhile, and a batch has finitely many shards.
        while True:
            try:
                self._write(key, record, expected, counts, seen)
                return True
            except _ConditionFailed:
                pass
            kept = self._kept(key)
            if kept is None or kept.status not in expected:
                return False
            counts = _Counts(
                record.status,
                counts.shards | kept.shards,
                max(record.completed, kept.completed),
                max(record.failed, kept.failed),
            )
            seen = len(kept.shards)

    def _write(
        self,
        key: dict[str, Any],
        record: BatchRecord,
        expected: tuple[str, ...],
        counts: _Counts,
        seen: int,
    ) -> None:
        """Write ``record`` with ``counts`` if its status is one of ``expected`` and ``seen`` shards are counted."""
        body = _body(record)
        values: dict[str, Any] = {f":expect{n}": {"S": status} for n, status in enumerate(expected)}
        condition = f"#status IN ({', '.join(values)})"
        values.update(
            {
                ":record": body["record"],
                ":status": body["status"],
                ":completed": {"N": str(counts.completed)},
                ":failed": {"N": str(counts.failed)},
            }
        )
        update = "SET #record = :record, #status = :status, completed = :completed, failed = :failed"
        if seen:
            condition += " AND size(shards_done) = :seen"
            values[":seen"] = {"N": str(seen)}
        else:
            condition += " AND attribute_not_exists(shards_done)"
        if counts.shards:
            update += ", shards_done = :shards"
            values[":shards"] = _shard_set(counts.shards)
        else:
            update += " REMOVE shards_done"
        self._update("save", key, update, condition, {"#status": "status", "#record": "record"}, values)

    def _kept(self, key: dict[str, Any]) -> _Counts | None:
        """The kept status, counted shards and counts, read consistently; None if there is no such batch."""
        with self._dynamodb("read"):
            found = self.client.get_item(
                TableName=self.table,
                Key=key,
                ConsistentRead=True,
                ProjectionExpression="#status, completed, failed, shards_done",
                ExpressionAttributeNames={"#status": "status"},
            )
        item = found.get("Item")
        if item is None:
            return None
        completed, failed, shards = _record_counts(item)
        return _Counts(str(item["status"]["S"]), frozenset(shards), completed, failed)

    def shard_done(self, tenant: str, batch_id: str, shard: int, result: ShardResult) -> BatchRecord | None:
        sk = self._find(tenant, batch_id)
        if sk is None:
            return None
        try:
            updated = self._update(
                "count a shard",
                {"tenant": {"S": tenant}, "sk": {"S": sk}},
                "ADD shards_done :shards, completed :completed, failed :failed",
                "attribute_exists(sk) AND NOT contains(shards_done, :shard)",
                None,
                {
                    ":shards": _shard_set((shard,)),
                    ":shard": {"N": str(shard)},
                    ":completed": {"N": str(result.completed)},
                    ":failed": {"N": str(result.failed)},
                },
                returns="ALL_NEW",
            )
        except _ConditionFailed:
            return None
        return _record(updated["Attributes"])

    def _find(self, tenant: str, batch_id: str) -> str | None:
        """The sort key of ``tenant``'s batch ``batch_id``; None when there is none (or it is another's)."""
        if not BATCH_ID.fullmatch(batch_id):
            return None
        indexed = {
            "IndexName": JOBS_BATCH_INDEX,
            "KeyConditionExpression": "batch_id = :id",
            "ExpressionAttributeValues": {":id": {"S": batch_id}},
            "ProjectionExpression": "tenant, sk",
        }
        for item in self._query(indexed):
            if item["tenant"]["S"] == tenant:
                return str(item["sk"]["S"])
        # Not indexed yet, or not there: only a batch created in the last RECENT_S seconds may be missing.
        recent = {
            "KeyConditionExpression": "tenant = :tenant AND sk >= :since",
            "FilterExpression": "batch_id = :id",
            "ExpressionAttributeValues": {
                ":tenant": {"S": tenant},
                ":since": {"S": sort_key(max(0, int(self._now()) - RECENT_S), "")},
                ":id": {"S": batch_id},
            },
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        return next((str(item["sk"]["S"]) for item in self._query(recent)), None)

    def _query(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            with self._dynamodb("query"):
                page = self.client.query(
                    TableName=self.table, **query, **({"ExclusiveStartKey": start} if start else {})
                )
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def _update(
        self,
        action: str,
        key: dict[str, Any],
        update: str,
        condition: str,
        names: dict[str, str] | None,
        values: dict[str, Any],
        *,
        returns: str = "NONE",
    ) -> dict[str, Any]:
        with self._dynamodb(action):
            answer: dict[str, Any] = self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues=returns,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        return answer

    @contextlib.contextmanager
    def _dynamodb(self, action: str) -> Iterator[None]:
        """botocore's errors as ServiceUnavailable (detail logged); a failed condition as _ConditionFailed."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            log.error("batch store %s failed on table %s: %s: %s", action, self.table, error.get("Code"), exc)
            raise ServiceUnavailable("the batch store cannot be reached now; retry shortly") from None
        except BotoCoreError as exc:
            log.error("batch store %s failed on table %s: %s", action, self.table, exc)
            raise ServiceUnavailable("the batch store cannot be reached now; retry shortly") from None


class _ConditionFailed(Exception):
    pass


class _Counts(NamedTuple):
    status: str
    shards: frozenset[int]
    completed: int
    failed: int


def _keys(record: BatchRecord) -> dict[str, Any]:
    return {
        "tenant": {"S": record.tenant},
        "sk": {"S": sort_key(record.created_at, record.id)},
        "batch_id": {"S": record.id},
    }


def _body(record: BatchRecord) -> dict[str, Any]:
    """The record as JSON (less the counts, kept as attributes of their own) and its status."""
    data = json.loads(record.to_json())
    for name in _COUNTS:
        data.pop(name, None)
    return {"record": {"S": json.dumps(data, sort_keys=True)}, "status": {"S": record.status}}


def _counts(record: BatchRecord) -> dict[str, Any]:
    counts: dict[str, Any] = {"completed": {"N": str(record.completed)}, "failed": {"N": str(record.failed)}}
    if record.shards_done:  # DynamoDB has no empty sets
        counts["shards_done"] = _shard_set(record.shards_done)
    return counts


def _shard_set(shards: Iterable[int]) -> dict[str, list[str]]:
    return {"NS": [str(shard) for shard in sorted(set(shards))]}


def _record_counts(item: dict[str, Any]) -> tuple[int, int, tuple[int, ...]]:
    """An item's completed and failed lines and its counted shards."""
    return (
        int(item.get("completed", {}).get("N", 0)),
        int(item.get("failed", {}).get("N", 0)),
        tuple(sorted(int(shard) for shard in item.get("shards_done", {}).get("NS", ()))),
    )


def _record(item: dict[str, Any]) -> BatchRecord:
    completed, failed, shards_done = _record_counts(item)
    return replace(
        BatchRecord.from_json(item["record"]["S"]), completed=completed, failed=failed, shards_done=shards_done
    )
