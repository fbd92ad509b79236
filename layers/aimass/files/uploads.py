"""Uploads in parts (OpenAI's Uploads API): a large file sent as parts, resumable, that becomes one file.

An upload is declared first (its filename, purpose and size in bytes), then gets parts in any order, each a
new part id; a part that failed may be sent again (another id), so an interrupted upload resumes by sending
what is missing. Completion names the parts, in their order: their sum must be the declared size, and the
file is written through the file store's ``put``, so it is listed only once whole, with its sha256 (and the
md5 the client gave, if any, checked before its record is written). An upload belongs to its tenant alone,
as files do, and ends after ``UPLOAD_TTL_S`` (an hour, as OpenAI's) when it is not completed by then.

``Uploads`` holds the rules; an ``UploadStore`` (one per file store backend) only keeps records and parts.
The parts an upload keeps are bounded (twice its size): enough to resend every part once, not a free store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal, Protocol

from aimass.errors import InvalidInput, NotFound, PayloadTooLarge
from aimass.files.base import FileRecord, FileStore, Measured, Readable

PART_MAX_BYTES = 64 * 1024 * 1024  # OpenAI's most per part
UPLOAD_TTL_S = 3600
UPLOAD_PREFIX, PART_PREFIX = "upload_", "part_"
_ID_CHARS = string.ascii_letters + string.digits
_ID_LENGTH = 24  # 142 random bits
UPLOAD_FILE = "upload.json"
PARTS = "parts"
Status = Literal["pending", "completed", "cancelled", "expired"]


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(_ID_LENGTH))


def is_id(value: str, prefix: str) -> bool:
    rest = value.removeprefix(prefix)
    return rest != value and len(rest) == _ID_LENGTH and all(char in _ID_CHARS for char in rest)


@dataclass(frozen=True)
class UploadRecord:
    """One upload's record: the OpenAI upload object's fields, its tenant, and its file once completed."""

    id: str
    tenant: str
    filename: str
    purpose: str
    size: int  # the upload object's "bytes"
    mime_type: str
    created_at: int
    expires_at: int
    status: Status = "pending"
    file_id: str | None = None

    def status_at(self, now: float) -> Status:
        return "expired" if self.status == "pending" and now >= self.expires_at else self.status

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> UploadRecord:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class PartRecord:
    id: str
    size: int


# How long a part's URL may be used: an hour at most, never past the upload's own expiry.
PART_URL_TTL_S = 3600


class UploadStore(Protocol):
    """Where a file store backend keeps uploads' records and parts. Methods block, as the file store's do.

    A part is stored whole or not at all (a refused or broken one leaves nothing), so ``parts`` lists only
    parts that arrived complete.
    """

    def save(self, record: UploadRecord) -> None:
        """Write ``record`` (new, or its new status)."""
        ...

    def load(self, tenant: str, upload_id: str) -> UploadRecord | None: ...

    def add_part(self, tenant: str, upload_id: str, part_id: str, measured: Measured) -> None:
        """Store what ``measured`` reads as part ``part_id``."""
        ...

    def parts(self, tenant: str, upload_id: str) -> list[PartRecord]: ...

    def part_url(self, tenant: str, upload_id: str, part_id: str, size: int, expires_s: int) -> str | None:
        """A URL a client PUTs part ``part_id`` to directly, exactly ``size`` bytes, for ``expires_s`` seconds;
        None where the store has none to give (a local folder): parts then come through the API."""
        ...

    def open_part(self, tenant: str, upload_id: str, part_id: str) -> Iterator[bytes] | None:
        """A stored part's content in chunks; None if it is not there."""
        ...

    def claim(self, tenant: str, upload_id: str) -> bool:
        """Mark the upload as being ended (completed or cancelled); False if it already is."""
        ...

    def release(self, tenant: str, upload_id: str) -> None:
        """Undo ``claim`` after an end that failed, so that the client may try again."""
        ...

    def drop_parts(self, tenant: str, upload_id: str) -> None: ...

    def sweep(self, tenant: str, before: float) -> None:
        """Remove ``tenant``'s uploads that expired before ``before`` (every status), parts and all."""
        ...


class Uploads:
    """The Uploads API's rules over a file store and its upload store."""

    def __init__(
        self, files: FileStore, store: UploadStore, *, max_file_bytes: int, now: Callable[[], float] = time.time
    ) -> None:
        self.files = files
        self.store = store
        self.max_file_bytes = max_file_bytes
        self._now = now

    def create(self, tenant: str, *, filename: str, purpose: str, size: int, mime_type: str) -> UploadRecord:
        if size > self.max_file_bytes:
            raise PayloadTooLarge(
                f"bytes is over the limit of {self.max_file_bytes} bytes (AIMASS_MAX_FILE_BYTES), got {size}",
                param="bytes",
            )
        now = int(self._now())
        # Ended uploads are removed as their tenant starts another: the store's cleaning costs no extra process.
        self.store.sweep(tenant, now)
        record = UploadRecord(
            id=new_id(UPLOAD_PREFIX),
            tenant=tenant,
            filename=filename,
            purpose=purpose,
            size=size,
            mime_type=mime_type,
            created_at=now,
            expires_at=now + UPLOAD_TTL_S,
        )
        self.store.save(record)
        return record

    def add_part(self, tenant: str, upload_id: str, source: Readable) -> tuple[str, int]:
        """A new part of the upload from ``source``: its id and creation time."""
        upload = self._pending(tenant, upload_id)
        held = sum(part.size for part in self.store.parts(tenant, upload_id))
        room = 2 * upload.size - held
        if room <= 0:
            raise InvalidInput(
                f"upload {upload_id!r} already holds {held} bytes of parts, twice its {upload.size} bytes; complete "
                "it with the parts you mean, or start a new upload",
                param="data",
            )
        limit = min(PART_MAX_BYTES, upload.size, room)
        why = f"a part is at most {PART_MAX_BYTES} bytes and the upload's {upload.size} bytes"
        part_id = new_id(PART_PREFIX)
        self.store.add_part(tenant, upload_id, part_id, Measured(source, limit, param="data", why=why))
        return part_id, int(self._now())

    def part_url(self, tenant: str, upload_id: str, size: int) -> tuple[str, str, int]:
        """A new part's id, the URL its bytes are PUT to (straight to storage, past any request body limit) and
        when that URL expires; the part counts once it is there, as a part sent through the API does."""
        upload = self._pending(tenant, upload_id)
        most = min(PART_MAX_BYTES, upload.size)
        if not 1 <= size <= most:
            raise InvalidInput(
                f"bytes must be from 1 to {most} (a part is at most {PART_MAX_BYTES} bytes and the upload's "
                f"{upload.size} bytes), got {size}",
                param="bytes",
            )
        now = int(self._now())
        expires_at = min(upload.expires_at, now + PART_URL_TTL_S)
        part_id = new_id(PART_PREFIX)
        url = self.store.part_url(tenant, upload_id, part_id, size, max(1, expires_at - now))
        if url is None:
            raise InvalidInput(
                "this server keeps files on its own disk and gives no part URLs; send each part to "
                f"POST /v1/uploads/{upload_id}/parts",
                param="upload_id",
            )
        return part_id, url, expires_at

    def complete(
        self, tenant: str, upload_id: str, part_ids: Sequence[str], md5: str | None
    ) -> tuple[UploadRecord, FileRecord]:
        upload = self._pending(tenant, upload_id)
        sizes = self._listed(upload, part_ids)
        total = sum(sizes)
        if total != upload.size:
            raise InvalidInput(
                f"bytes of upload {upload_id!r} is {upload.size}, but the parts listed hold {total} bytes; list every "
                "part, in order (send the missing ones first)",
                param="bytes",
            )
        with self._ending(upload):
            joined = _Joined(self.store, upload, part_ids, md5)
            record = self.files.put(tenant, joined, filename=upload.filename, purpose=upload.purpose, limit=total)
            done = replace(upload, status="completed", file_id=record.id)
            self.store.save(done)
        self.store.drop_parts(tenant, upload_id)
        return done, record

    def cancel(self, tenant: str, upload_id: str) -> UploadRecord:
        upload = self._pending(tenant, upload_id)
        with self._ending(upload):
            cancelled = replace(upload, status="cancelled")
            self.store.save(cancelled)
        self.store.drop_parts(tenant, upload_id)
        return cancelled

    def status(self, record: UploadRecord) -> Status:
        return record.status_at(self._now())

    def _pending(self, tenant: str, upload_id: str) -> UploadRecord:
        upload = self.store.load(tenant, upload_id)
        if upload is None:
            raise NotFound(f"no upload {upload_id!r}", param="upload_id")
        status = self.status(upload)
        if status != "pending":
            raise InvalidInput(
                f"upload {upload_id!r} is {status}; only a pending upload takes parts, completion or cancellation",
                param="upload_id",
            )
        return upload

    def _listed(self, upload: UploadRecord, part_ids: Sequence[str]) -> list[int]:
        if not part_ids:
            raise InvalidInput("part_ids must list the upload's parts in order, got none", param="part_ids")
        stored = {part.id: part.size for part in self.store.parts(upload.tenant, upload.id)}
        seen: set[str] = set()
        for part_id in part_ids:
            if part_id not in stored:
                raise InvalidInput(f"part_ids names {part_id!r}, not a part of upload {upload.id!r}", param="part_ids")
            if part_id in seen:
                raise InvalidInput(f"part_ids names {part_id!r} twice; list each part once", param="part_ids")
            seen.add(part_id)
        return [stored[part_id] for part_id in part_ids]

    def _ending(self, upload: UploadRecord) -> _Ending:
        return _Ending(self.store, upload)


class _Ending:
    """Holds an upload's claim while it is completed or cancelled, and gives it back if that fails."""

    def __init__(self, store: UploadStore, upload: UploadRecord) -> None:
        self.store, self.upload = store, upload

    def __enter__(self) -> None:
        if not self.store.claim(self.upload.tenant, self.upload.id):
            raise InvalidInput(
                f"upload {self.upload.id!r} is being completed or cancelled by another request", param="upload_id"
            )

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.store.release(self.upload.tenant, self.upload.id)


class _Joined:
    """The listed parts read one after another, as one ``Readable``; at its end, the md5 the client gave checked."""

    def __init__(self, store: UploadStore, upload: UploadRecord, part_ids: Sequence[str], md5: str | None) -> None:
        self._store, self._upload, self._md5 = store, upload, md5
        self._pending = list(part_ids)
        self._chunks: Iterator[bytes] = iter(())
        self._buffer = b""
        self._hash = hashlib.md5(usedforsecurity=False)  # a checksum the client compares, not a security check
        self._size = 0

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is not None:
                self._buffer = chunk
            elif self._pending:
                self._chunks = self._open(self._pending.pop(0))
            else:
                self._end()
                return b""
        taken = self._buffer if size < 0 else self._buffer[:size]
        self._buffer = self._buffer[len(taken) :]
        self._hash.update(taken)
        self._size += len(taken)
        return taken

    def _open(self, part_id: str) -> Iterator[bytes]:
        chunks = self._store.open_part(self._upload.tenant, self._upload.id, part_id)
        if chunks is None:
            raise InvalidInput(f"part {part_id!r} of part_ids is gone; send it again", param="part_ids")
        return chunks

    def _end(self) -> None:
        if self._size != self._upload.size:  # a part changed since it was listed
            raise InvalidInput(
                f"bytes of upload {self._upload.id!r} is {self._upload.size}, but its parts held {self._size}",
                param="bytes",
            )
        if self._md5 is not None and self._hash.hexdigest() != self._md5.lower():
            raise InvalidInput(
                f"md5 {self._md5!r} does not match the parts' content (md5 {self._hash.hexdigest()}); check the "
                "parts listed and their order",
                param="md5",
            )
