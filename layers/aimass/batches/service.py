"""The Batch API's operations: create a batch from an uploaded file, read, list and cancel batches.

Creating a batch reads its input file once (``aimass.batches.scan``), in the request: a file AI Mass
accepted is at most ``max_file_bytes``, and its lines are counted and its shards found at disk or S3
speed (bench/). A batch whose file cannot be run as a whole (duplicate custom_ids, too many lines) is kept
as ``failed`` with the reasons, as OpenAI's validation does; one whose file is missing is refused (404) and
nothing is kept. Then its shards are handed to the launcher (worker threads, or an AWS Batch array job).

The endpoint names the domain whose workers run the batch (its image, its queue): ``/v1/embeddings``, a
task route ``/v1/<domain>/<task>``, ``/v1/audio/transcriptions``, ``/v1/chat/completions`` or
``/v1/completions`` (a chat line is answered whole: ``stream`` is a synchronous client's), or
``/v2/models/<name>/infer``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from aimass.batches.model import BATCH_ID, TERMINAL, WINDOWS, BatchRecord, new_batch_id
from aimass.batches.scan import scan
from aimass.batches.store import BatchStore, Launcher
from aimass.batches.unpack import batch_input
from aimass.errors import AimassError, InvalidInput, NotFound, ServiceUnavailable
from aimass.files.base import FILE_ID, FileStore
from aimass.metering.keys import Caller
from aimass.settings import Settings

log = logging.getLogger("aimass.batches")

_V2_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")
_TASK = re.compile(r"^/v1/([a-z0-9_]+)/([a-z0-9_-]+)$")
FIXED = {
    "/v1/embeddings": "text",
    "/v1/audio/transcriptions": "speech",
    "/v1/chat/completions": "llm",
    "/v1/completions": "llm",
}
MAX_METADATA = 16
# A line's framing around its body: custom_id, method, url.
LINE_OVERHEAD_BYTES = 64 * 1024


def max_line_bytes(max_body_bytes: int) -> int:
    """The longest line a batch reads: one request body, its files base64-encoded (a third longer: a form
    sent with Prefer: respond-async becomes such a line), and its line's framing."""
    return max_body_bytes * 4 // 3 + LINE_OVERHEAD_BYTES


class Endpoints:
    """Which domain answers an endpoint, from the models served here and those of the peer functions; a V2
    endpoint of a model none of them names goes to ``imports``, the domain of imported models, where one is set
    (on AWS: the models imported after a deploy are its function's, not the catalogue's)."""

    def __init__(self, models: Callable[[], Mapping[str, str]], *, imports: str | None = None) -> None:
        self._models = models  # model name -> domain
        self._imports = imports

    def domain(self, endpoint: str) -> str | None:
        models = self._models()
        domains = set(models.values())
        fixed = FIXED.get(endpoint)
        if fixed is not None:
            return fixed if fixed in domains else None
        found = _V2_INFER.fullmatch(endpoint)
        if found:
            return models.get(found.group(1), self._imports)
        found = _TASK.fullmatch(endpoint)
        if found and found.group(1) in domains:
            return found.group(1)
        return None


class BatchService:
    def __init__(
        self,
        store: BatchStore,
        launcher: Launcher,
        files: FileStore,
        endpoints: Endpoints,
        settings: Settings,
        *,
        quota: Callable[[Caller], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.quota = quota  # raises QuotaExceeded for a tenant whose month's units are used up
        self.store = store
        self.launcher = launcher
        self.files = files
        self.endpoints = endpoints
        self.settings = settings
        self.clock = clock

    def create(
        self,
        caller: Caller,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: Mapping[str, str] | None,
    ) -> BatchRecord:
        if completion_window not in WINDOWS:
            raise InvalidInput(
                f"completion_window must be one of {', '.join(WINDOWS)}, got {completion_window!r}",
                param="completion_window",
            )
        domain = self.endpoints.domain(endpoint)
        if domain is None:
            raise InvalidInput(
                f"endpoint {endpoint!r} is no model route served here; use /v1/embeddings, /v1/<domain>/<task>, "
                "/v1/audio/transcriptions or /v2/models/<name>/infer (GET /v1/models lists the models)",
                param="endpoint",
            )
        _check_metadata(metadata)
        if self.quota is not None:
            self.quota(caller)
        if not FILE_ID.fullmatch(input_file_id):
            raise InvalidInput(f"input_file_id must be a file id, got {input_file_id!r}", param="input_file_id")
        source = self.files.readable(caller.tenant, input_file_id)
        if source is None:
            raise NotFound(f"no file {input_file_id!r}", param="input_file_id")
        if source.purpose != "batch":
            raise InvalidInput(
                f"file {input_file_id!r} has purpose {source.purpose!r}; a batch reads a file uploaded with "
                "purpose 'batch'",
                param="input_file_id",
            )
        # A gzip input is decompressed here, bounded; an archive is refused: before anything is kept.
        readable = batch_input(self.files, source, caller.tenant, self.settings.max_file_bytes)
        now = int(self.clock())
        record = BatchRecord(
            id=new_batch_id(),
            tenant=caller.tenant,
            key_id=caller.key_id,
            plan=caller.plan,
            endpoint=endpoint,
            domain=domain,
            input_file_id=input_file_id,
            input_owner=source.tenant,
            read_file_id=readable.id if readable.id != source.id else "",
            completion_window=completion_window,
            status="validating",
            created_at=now,
            expires_at=now + WINDOWS[completion_window],
            metadata=dict(metadata or {}),
            shard_lines=self.settings.batch_shard_lines,
        )
        self.store.create(record)
        return self._start(record)

    def submit_request(self, caller: Caller, endpoint: str, body: Mapping[str, object]) -> BatchRecord:
        """Run one request as a batch of one line (``Prefer: respond-async``): its body is kept as the batch's
        input file, and its answer will be the output file's one line (or the error file's)."""
        line = json.dumps({"custom_id": "request", "method": "POST", "url": endpoint, "body": body}).encode()
        source = self.files.put(
            caller.tenant, io.BytesIO(line + b"\n"), filename="request.jsonl", purpose="batch", limit=len(line) + 1
        )
        return self.create(
            caller, input_file_id=source.id, endpoint=endpoint, completion_window="24h", metadata={"from": "request"}
        )

    def _start(self, record: BatchRecord) -> BatchRecord:
        opened = self.files.open(*record.source)
        if opened is None:  # deleted since it was looked up
            return self._failed(record, "input_file_deleted", f"the input file {record.input_file_id} was deleted")
        scanned = scan(
            opened[1],
            shard_lines=self.settings.batch_shard_lines,
            max_lines=self.settings.max_batch_lines,
            max_line_bytes=max_line_bytes(self.settings.max_body_bytes),
        )
        if scanned.errors:
            failed = record.moved("failed", int(self.clock()), errors=scanned.errors, total=scanned.lines)
            self.store.save(failed, expect=("validating",))
            return failed
        running = record.moved("in_progress", int(self.clock()), total=scanned.lines, offsets=scanned.offsets)
        if not self.store.save(running, expect=("validating",)):
            return self._current(record)  # cancelled while it was read
        try:
            job_id = self.launcher.launch(running)
        except AimassError as exc:
            log.error("batch %s could not be started: %s", record.id, exc.message)
            return self._failed(running, "not_started", "the batch's workers could not be started; submit it again")
        if job_id is not None:
            started = replace(running, job_id=job_id)
            if self.store.save(started, expect=("in_progress",)):
                return started
            return self._current(running)
        return running

    def _failed(self, record: BatchRecord, code: str, message: str) -> BatchRecord:
        from aimass.batches.model import BatchError

        failed = record.moved("failed", int(self.clock()), errors=(BatchError(code, message),))
        self.store.save(failed, expect=(record.status,))
        return failed

    def _current(self, record: BatchRecord) -> BatchRecord:
        return self.store.get(record.tenant, record.id) or record

    def get(self, tenant: str, batch_id: str) -> BatchRecord:
        if not BATCH_ID.fullmatch(batch_id):
            raise InvalidInput(
                f"batch_id must be a batch id ('batch_' and 24 of A-Z, a-z, 0-9, '_', '-'), got {batch_id!r}",
                param="batch_id",
            )
        record = self.store.get(tenant, batch_id)
        if record is None:
            raise NotFound(f"no batch {batch_id!r}", param="batch_id")
        return record

    def list(self, tenant: str) -> list[BatchRecord]:
        return self.store.list(tenant)

    def cancel(self, tenant: str, batch_id: str) -> BatchRecord:
        """Stop the batch: no more of its shards start; the results of those that ran are kept."""
        record = self.get(tenant, batch_id)
        if record.status in TERMINAL or record.status in ("cancelling", "finalizing"):
            return record
        cancelling = record.moved("cancelling", int(self.clock()))
        if not self.store.save(cancelling, expect=("validating", "in_progress")):
            return self._current(record)
        try:
            self.launcher.cancel(cancelling)
        except ServiceUnavailable as exc:
            # The workers still stop at their next chunk: they read the batch's status.
            log.error("batch %s: its job could not be cancelled: %s", batch_id, exc.message)
        return cancelling


def _check_metadata(metadata: Mapping[str, str] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA:
        raise InvalidInput(f"metadata has {len(metadata)} keys; at most {MAX_METADATA}", param="metadata")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise InvalidInput(
                "metadata must map keys of at most 64 characters to strings of at most 512", param="metadata"
            )
