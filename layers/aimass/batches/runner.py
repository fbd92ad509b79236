"""Running a batch's shards and joining their outputs: what every worker does, locally or on AWS Batch.

A shard's lines run ``chunk_lines`` at a time, and each chunk's results are written whole under a key made
from the batch, the shard and the chunk's number (``chunk_key``). A worker that starts a shard first lists
the chunks already written and skips them: a shard killed mid-way (SIGKILL, a Spot reclaim) and run again
neither repeats nor loses a line. Once every chunk is written, the shard's units are billed under ids made
from the shard (``aimass.batches.billing``: a rerun's record is a duplicate, charged nothing) and the shard is
counted into the batch (``BatchStore.shard_done``, once). Whoever counts the last shard finalizes.

Finalizing moves the batch to ``finalizing`` (once, by a conditional write), joins the chunks in shard and
chunk order (input order) into the output file (2xx answers) and the error file (the rest), then ends the
batch: ``completed``, or ``cancelled`` / ``expired`` with the results it has.

A chunk is one object: a JSON header line (its counts and units), then one result line per input line,
prefixed ``O`` (output file) or ``E`` (error file).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from aimass.batches.dispatch import LineClient, LineRequestOf
from aimass.batches.lines import (
    LineRefusal,
    custom_id_of,
    line_id,
    parse_line,
    refusal_line,
    result_line,
    split_lines,
)
from aimass.batches.model import BatchError, BatchRecord, ShardResult
from aimass.batches.store import BatchStore, WorkStore
from aimass.files.base import FileStore
from aimass.serving.batching import chunks
from aimass.serving.tenancy import tenant_scope

log = logging.getLogger("aimass.batches")

OUTPUT_PURPOSE = "batch_output"
# What the server writes is not an upload: no upload limit, only what storage holds.
OUTPUT_LIMIT = 1 << 40
STOPPED = frozenset({"cancelling", "cancelled", "expired", "failed"})

Bill = Callable[[BatchRecord, int, ShardResult], None]


def chunk_prefix(batch_id: str, shard: int) -> str:
    return f"{batch_id}/{shard:05d}/"


def chunk_key(batch_id: str, shard: int, chunk: int) -> str:
    return f"{chunk_prefix(batch_id, shard)}{chunk:06d}"


@dataclass
class Tally:
    completed: int = 0
    failed: int = 0
    units: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)

    def add(self, header: Any) -> None:
        """Count in a chunk's header (``{"completed", "failed", "units", "models"}``, as ``_chunk`` writes it)."""
        self.completed += int(header["completed"])
        self.failed += int(header["failed"])
        for unit, units in header["units"].items():
            self.units[str(unit)] = self.units.get(str(unit), 0) + int(units)
        self.models.update({str(unit): str(model) for unit, model in header["models"].items()})

    def result(self) -> ShardResult:
        return ShardResult(self.completed, self.failed, dict(self.units), dict(self.models))


class ShardRunner:
    def __init__(
        self,
        *,
        store: BatchStore,
        work: WorkStore,
        files: FileStore,
        client: LineClient | None,
        chunk_lines: int,
        bill: Bill | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.work = work
        self.files = files
        self.client = client
        self.chunk_lines = chunk_lines
        self.bill = bill
        self.clock = clock

    # --- one shard ------------------------------------------------------------------------------------

    def run(self, batch: BatchRecord, index: int, heartbeat: Callable[[], None] | None = None) -> BatchRecord | None:
        """Run shard ``index`` of ``batch`` to its end (or until the batch is stopped); the batch once it
        is finalized by this call, else None. ``heartbeat`` is called before each chunk (a lease renewal)."""
        if index in batch.shards_done:
            return None
        written = set(self.work.keys(chunk_prefix(batch.id, index)))
        shard = batch.shard(index)
        opened = self.files.open(*batch.source, start=shard.start, end=shard.end)
        if opened is None:
            log.error("batch %s: its input file %s is gone", batch.id, batch.input_file_id)
            self._fail(batch, "input_file_deleted", f"the input file {batch.input_file_id} was deleted")
            return None
        _, content = opened
        first = index * batch.shard_lines
        for number, lines in enumerate(chunks(split_lines(content), self.chunk_lines)):
            key = chunk_key(batch.id, index, number)
            if key in written:
                continue  # written before this run: resumed after it
            if self._stopped(batch):
                log.info("batch %s stopped: shard %d leaves its remaining chunks", batch.id, index)
                return None
            if heartbeat is not None:
                heartbeat()
            start = first + number * self.chunk_lines
            self.work.put(key, self._chunk(batch, start, lines))
        tally = self._tally(batch.id, index)
        result = tally.result()
        if self.bill is not None:
            self.bill(batch, index, result)
        counted = self.store.shard_done(batch.tenant, batch.id, index, result)
        if counted is not None and len(counted.shards_done) == counted.shards:
            return self.finalize(counted)
        return None

    def _chunk(self, batch: BatchRecord, start: int, lines: list[bytes]) -> bytes:
        if self.client is None:
            raise RuntimeError("this runner only finalizes: it has no app to run lines on")
        parsed = [parse_line(raw, start + offset, batch.endpoint) for offset, raw in enumerate(lines)]
        requests = [
            LineRequestOf(line.url, line.body, line_id(batch.id, line.number))
            for line in parsed
            if not isinstance(line, LineRefusal)
        ]
        with tenant_scope(batch.tenant):  # a line may call only what its batch's tenant may
            answers = iter(self.client.post_all(requests))
        out: list[bytes] = []
        tally = Tally()
        for line in parsed:
            if isinstance(line, LineRefusal):
                tally.failed += 1
                out.append(b"E" + refusal_line(batch.id, line))
                continue
            answer = next(answers)
            good = 200 <= answer.status < 300
            if good:
                tally.completed += 1
                if answer.metered is not None:
                    unit = answer.metered.unit
                    tally.units[unit] = tally.units.get(unit, 0) + answer.metered.units
                    tally.models[unit] = f"{answer.metered.model}@{answer.metered.version}@{answer.metered.domain}"
            else:
                tally.failed += 1
            request_id = line_id(batch.id, line.number)
            row = result_line(batch.id, line.number, line.custom_id, answer.status, request_id, answer.body)
            out.append((b"O" if good else b"E") + row)
        header = {"completed": tally.completed, "failed": tally.failed, "units": tally.units, "models": tally.models}
        return b"\n".join([json.dumps(header).encode(), *out]) + b"\n"

    def _tally(self, batch_id: str, index: int) -> Tally:
        tally = Tally()
        for key in self.work.keys(chunk_prefix(batch_id, index)):
            data = self.work.get(key)
            if data is not None:
                tally.add(json.loads(data.split(b"\n", 1)[0]))
        return tally

    def _stopped(self, batch: BatchRecord) -> bool:
        current = self.store.get(batch.tenant, batch.id)
        if current is None or current.status in STOPPED:
            return True
        return self.clock() > current.expires_at

    # --- the whole batch ------------------------------------------------------------------------------

    def finalize(self, batch: BatchRecord) -> BatchRecord | None:
        """Join the shards' results into the output and error files and end the batch; None when another
        process finalizes it (or it is already final)."""
        now = int(self.clock())
        ending = "cancelled" if batch.status == "cancelling" else "expired" if now > batch.expires_at else "completed"
        if batch.status != "finalizing":
            if not self.store.save(batch.moved("finalizing", now), expect=("in_progress", "cancelling")):
                return None
            # Read back: a shard counted since ``batch`` was read is counted in the kept record.
            batch = self.store.get(batch.tenant, batch.id) or batch.moved("finalizing", now)
        for shard in range(batch.shards):
            if shard not in batch.shards_done:
                self._close(batch, shard, ending)
        keys = [key for shard in range(batch.shards) for key in self.work.keys(chunk_prefix(batch.id, shard))]
        tally = Tally()
        for key in keys:
            data = self.work.get(key)
            if data is not None:
                tally.add(json.loads(data.split(b"\n", 1)[0]))
        output = self._write(batch, keys, b"O", "output") if tally.completed else None
        errors = self._write(batch, keys, b"E", "error") if tally.failed else None
        ended = batch.moved(
            ending,
            int(self.clock()),
            completed=tally.completed,
            failed=tally.failed,
            output_file_id=output,
            error_file_id=errors,
        )
        if not self.store.save(ended, expect=("finalizing",)):
            return None
        self.work.delete(batch.id + "/")
        log.info("batch %s %s: %d answered, %d failed", batch.id, ending, tally.completed, tally.failed)
        return ended

    def _close(self, batch: BatchRecord, index: int, ending: str) -> None:
        """Account for a shard that did not run to its end: bill what it ran, and answer each line it did not
        run in the error file, so that every custom_id is in one of the two files."""
        written = self.work.keys(chunk_prefix(batch.id, index))
        tally = self._tally(batch.id, index)
        if self.bill is not None:
            self.bill(batch, index, tally.result())
        shard = batch.shard(index)
        opened = self.files.open(*batch.source, start=shard.start, end=shard.end)
        if opened is None:
            return
        why = {
            "cancelled": ("batch_cancelled", "the batch was cancelled before this line ran"),
            "expired": ("batch_expired", "the batch's completion window ended before this line ran"),
        }.get(ending, ("not_run", "this line's shard failed before it ran; submit the line again"))
        first = index * batch.shard_lines
        skipped = len(written) * self.chunk_lines
        out: list[bytes] = []
        for offset, raw in enumerate(split_lines(opened[1])):
            if offset < skipped:
                continue
            number = first + offset
            refusal = LineRefusal(number, custom_id_of(raw), *why)
            out.append(b"E" + refusal_line(batch.id, refusal))
        if out:
            header = {"completed": 0, "failed": len(out), "units": {}, "models": {}}
            key = chunk_key(batch.id, index, len(written))
            self.work.put(key, b"\n".join([json.dumps(header).encode(), *out]) + b"\n")

    def _write(self, batch: BatchRecord, keys: list[str], kind: bytes, name: str) -> str:
        def lines() -> Iterator[bytes]:
            for key in keys:
                data = self.work.get(key)
                if data is None:
                    continue
                for line in data.split(b"\n")[1:]:
                    if line[:1] == kind:
                        yield line[1:] + b"\n"

        record = self.files.put(
            batch.tenant,
            reader(lines()),
            filename=f"{batch.id}_{name}.jsonl",
            purpose=OUTPUT_PURPOSE,
            limit=OUTPUT_LIMIT,
        )
        return record.id

    def _fail(self, batch: BatchRecord, code: str, message: str) -> None:
        failed = batch.moved("failed", int(self.clock()), errors=(BatchError(code, message),))
        self.store.save(failed, expect=("in_progress", "cancelling", "finalizing"))


class _Reader(io.RawIOBase):
    """A binary file over an iterator of byte strings, for the file store's ``put``."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self._parts = iter(parts)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            part = next(self._parts, None)
            if part is None:
                return 0
            self._rest = part
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def reader(parts: Iterable[bytes]) -> BinaryIO:
    return io.BufferedReader(_Reader(parts))
