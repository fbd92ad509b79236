"""Where batches are kept (``BatchStore``), where their shards' outputs go (``WorkStore``) and what runs the
shards (``Launcher``): the interfaces the HTTP routes, the workers and the finalizer share.

Backends: SQLite, a folder and worker threads locally (``aimass.batches.local``); DynamoDB, S3 and AWS Batch
array jobs on AWS (``aimass.batches.dynamodb``, ``aimass.batches.work_s3``, ``aimass.batches.aws_batch``).
Every method blocks; the HTTP layer calls them off its event loop. A store that cannot be reached raises
``ServiceUnavailable``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from aimass.batches.model import BatchRecord, ShardResult


class BatchStore(Protocol):
    def create(self, record: BatchRecord) -> None:
        """Keep a new batch (its id is new: ``new_batch_id``)."""
        ...

    def get(self, tenant: str, batch_id: str) -> BatchRecord | None:
        """``tenant``'s batch ``batch_id``; None if there is none (or it is another tenant's)."""
        ...

    def list(self, tenant: str) -> list[BatchRecord]:
        """``tenant``'s batches, newest first (by creation time, then id, descending)."""
        ...

    def save(self, record: BatchRecord, *, expect: Iterable[str]) -> bool:
        """Replace the kept record with ``record`` if the kept one's status is one of ``expect``; False if not.

        The one way a batch's status changes: the condition makes each move happen once, whoever races it.
        """
        ...

    def shard_done(self, tenant: str, batch_id: str, shard: int, result: ShardResult) -> BatchRecord | None:
        """Count shard ``shard``'s result into the batch, once: the updated record, or None when the shard was
        already counted (a retried shard) or the batch is gone."""
        ...


class WorkStore(Protocol):
    """The shards' intermediate outputs, under keys the worker derives from the batch, shard and chunk."""

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` whole or not at all (a rename locally, one PUT on S3)."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""
        ...

    def delete(self, prefix: str) -> None:
        """Remove every key under ``prefix``."""
        ...


class Launcher(Protocol):
    """What runs a batch's shards: worker threads locally, an AWS Batch array job on AWS."""

    def launch(self, record: BatchRecord) -> str | None:
        """Start every shard of ``record`` (in_progress, offsets set); the job id that runs them, if any."""
        ...

    def cancel(self, record: BatchRecord) -> None:
        """Start no more of ``record``'s shards; running ones stop at their next chunk."""
        ...
