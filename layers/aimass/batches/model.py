"""A batch as AI Mass keeps it: the OpenAI batch object's fields, its tenant and how its input is sharded.

States follow OpenAI's: ``validating`` (the input file is being read), ``in_progress`` (shards are running),
``finalizing`` (the shards' outputs are being joined into the output and error files), then one of
``completed``, ``failed``, ``expired``, ``cancelled``; ``cancelling`` lies between a cancel and the end of the
shards that were running. A status only moves forward (``NEXT``): every store changes it with a conditional
write that names the states it may come from, so two processes can never both move one batch.

A batch's input is split at byte offsets (``Shard``): shard ``k`` holds the lines that start in
``[offsets[k], offsets[k+1])``, so a worker reads its shard with one ranged read and nothing else. The offsets
are found while the file is validated, at line boundaries, every ``shard_lines`` lines.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Status = Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
# The states each state may move to.
NEXT: dict[str, frozenset[str]] = {
    "validating": frozenset({"in_progress", "failed", "cancelling", "cancelled"}),
    "in_progress": frozenset({"finalizing", "cancelling", "expired", "failed"}),
    "finalizing": frozenset({"completed", "failed", "expired", "cancelled"}),
    "cancelling": frozenset({"cancelled", "finalizing"}),
}
# The timestamp field a state sets when it is entered (OpenAI's names).
STAMPS: dict[str, str] = {
    "in_progress": "in_progress_at",
    "finalizing": "finalizing_at",
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelling": "cancelling_at",
    "cancelled": "cancelled_at",
}
# "batch_" and 24 URL-safe characters: 144 random bits.
BATCH_ID = re.compile(r"^batch_[A-Za-z0-9_-]{24}$")
WINDOWS = {"24h": 24 * 3600}


def new_batch_id() -> str:
    return "batch_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class BatchError:
    """One reason a whole batch failed (OpenAI's ``errors.data[]``): a duplicate custom_id, say."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None


@dataclass(frozen=True)
class BatchRecord:
    id: str
    tenant: str
    key_id: str
    plan: str
    endpoint: str
    domain: str  # the domain whose workers run it (its image, its queue)
    input_file_id: str
    input_owner: str  # the tenant whose file it is: the batch's own, or one that shared it
    completion_window: str
    status: str
    created_at: int
    expires_at: int
    metadata: dict[str, str] = field(default_factory=dict)
    read_file_id: str = ""  # the file the workers read, when not the input (a gzip input's JSONL, the batch's own)
    total: int = 0  # lines in the input
    completed: int = 0  # lines answered 2xx
    failed: int = 0  # lines in the error file
    offsets: tuple[int, ...] = ()  # byte offset where each shard starts; the input's size last
    shard_lines: int = 0  # lines in every shard but the last: shard k's first line is k x shard_lines
    shards_done: tuple[int, ...] = ()  # shards whose every output is written (and billed)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[BatchError, ...] = ()
    job_id: str | None = None  # the AWS Batch (array) job running its shards, if any
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None

    @property
    def source(self) -> tuple[str, str]:
        """(tenant, file id) of what the workers read: the input, or its decompressed copy."""
        return (self.tenant, self.read_file_id) if self.read_file_id else (self.input_owner, self.input_file_id)

    @property
    def shards(self) -> int:
        return max(0, len(self.offsets) - 1)

    def shard(self, index: int) -> Shard:
        return Shard(self.id, index, self.offsets[index], self.offsets[index + 1])

    def moved(self, status: str, at: int, **changes: Any) -> BatchRecord:
        """This record in ``status`` (its timestamp set to ``at``) with ``changes``; no check of the move."""
        stamp = STAMPS.get(status)
        if stamp is not None:
            changes[stamp] = at
        return replace(self, status=status, **changes)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> BatchRecord:
        data = json.loads(raw)
        data["offsets"] = tuple(data.get("offsets", ()))
        data["shards_done"] = tuple(data.get("shards_done", ()))
        data["errors"] = tuple(BatchError(**error) for error in data.get("errors", ()))
        return cls(**data)

    def to_object(self) -> dict[str, Any]:
        """The OpenAI batch object."""
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": ({"object": "list", "data": [asdict(error) for error in self.errors]} if self.errors else None),
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": self.expired_at,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata or None,
        }


@dataclass(frozen=True)
class Shard:
    """Lines of batch ``batch_id`` that start in bytes ``[start, end)`` of its input file."""

    batch_id: str
    index: int
    start: int
    end: int


@dataclass(frozen=True)
class ShardResult:
    """What one shard's lines came to: counts, and the billable units its answered lines used, by unit."""

    completed: int = 0
    failed: int = 0
    units: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # unit -> "model@version" that used it (usage records)
