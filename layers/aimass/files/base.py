"""The file store interface: what every backend keeps for an uploaded file, and the checks they share.

A file belongs to one tenant and is found only through that tenant: every method takes the tenant, and
another tenant's file id is simply not there. A file is its content and a small metadata record
(``FileRecord``, kept as JSON beside the content); a backend writes the content first and the record
last, and lists files by their records, so a half-written upload is never listed nor read.

A file's owner may grant other tenants read access (``share``): a grant is kept twice, under the file (what
the owner lists) and under the grantee (what ``readable`` reads, so a grantee's lookup is two reads at most).
The grantee's entry is written last and removed first, so access never outlives what the owner sees, and a
revocation holds from the next read. ``get``, ``open``, ``list`` and ``delete`` stay the owner's alone.

Uploads are read in chunks (``Measured``): the size limit is checked while reading, so a file over it is
refused before more than the limit (plus one chunk) is held, and the sha256 is computed on the way.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Protocol

from aimass.errors import InvalidInput, PayloadTooLarge

# "file-" and 24 URL-safe characters: 144 random bits.
FILE_ID = re.compile(r"^file-[A-Za-z0-9_-]{24}$")
# A tenant name as the key store writes it; checked again here because it becomes a path and a key prefix.
TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
CHUNK_BYTES = 1024 * 1024
META_FILE = "meta.json"
CONTENT_FILE = "content"
SHARES = "shares"  # a file's grants, beside its content: <owner>/<file_id>/shares/<grantee>
SHARED = ".shared"  # grants by grantee: .shared/<grantee>/<file_id>; no tenant name starts with "."


def new_file_id() -> str:
    return "file-" + secrets.token_urlsafe(18)  # 18 bytes: 24 characters of A-Z a-z 0-9 - _


def is_tenant(name: str) -> bool:
    return TENANT.fullmatch(name) is not None


def checked_tenant(tenant: str) -> str:
    if not is_tenant(tenant):
        raise ValueError(f"tenant {tenant!r} is not a tenant name")
    return tenant


class Readable(Protocol):
    """What an upload is read from: a file, a request's spooled body, a part after another."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class FileRecord:
    """One stored file's metadata: the OpenAI file object's fields, its tenant and its content's sha256."""

    id: str
    tenant: str
    size: int  # the file object's "bytes"
    created_at: int
    filename: str
    purpose: str
    sha256: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> FileRecord:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class FileShare:
    """A grant of read access to ``owner``'s file ``file_id`` for ``tenant``."""

    file_id: str
    owner: str
    tenant: str
    created_at: int

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> FileShare:
        return cls(**json.loads(raw))


class Measured:
    """``source`` read in chunks of at most ``chunk`` bytes, counted against ``limit`` and hashed.

    Iterating raises PayloadTooLarge as soon as more than ``limit`` bytes have come, and InvalidInput at the
    end when none came, both naming ``param`` (``why`` says where the limit comes from); after a whole
    iteration, ``size`` and ``sha256`` describe what was read.
    """

    def __init__(
        self,
        source: Readable,
        limit: int,
        *,
        chunk: int = CHUNK_BYTES,
        param: str = "file",
        why: str = "AIMASS_MAX_FILE_BYTES",
    ) -> None:
        self.source = source
        self.limit = limit
        self.chunk = chunk
        self.param = param
        self.why = why
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        while data := self.source.read(self.chunk):
            self.size += len(data)
            if self.size > self.limit:
                raise PayloadTooLarge(
                    f"{self.param} is over the limit of {self.limit} bytes ({self.why})", param=self.param
                )
            self._hash.update(data)
            yield data
        if self.size == 0:
            raise InvalidInput(f"{self.param} is empty; send at least one byte", param=self.param)


class FileStore(Protocol):
    """Where uploaded files live. Methods block (file system, S3): the HTTP layer calls them off its event loop.

    A backend raises ``ServiceUnavailable`` when its storage cannot be reached, ``PayloadTooLarge`` and
    ``InvalidInput`` (from ``Measured``) for an upload over the limit or empty; in either case nothing of the
    upload is left behind.
    """

    def put(self, tenant: str, source: Readable, *, filename: str, purpose: str, limit: int) -> FileRecord:
        """Store ``source`` (read to its end) as a new file of ``tenant``'s; its record once it is complete."""
        ...

    def get(self, tenant: str, file_id: str) -> FileRecord | None:
        """The record of ``tenant``'s file ``file_id``; None if there is none (or it is another tenant's)."""
        ...

    def open(
        self, tenant: str, file_id: str, *, start: int = 0, end: int | None = None
    ) -> tuple[FileRecord, Iterator[bytes]] | None:
        """``tenant``'s file ``file_id``: its record and its content in chunks (bytes ``[start, end)`` of it, to
        its end when ``end`` is None: a batch shard's lines); None if there is no such file."""
        ...

    def list(self, tenant: str, *, purpose: str | None = None) -> list[FileRecord]:
        """``tenant``'s files (of ``purpose``, if given), oldest first (by creation time, then id)."""
        ...

    def delete(self, tenant: str, file_id: str) -> bool:
        """Remove ``tenant``'s file ``file_id`` and its grants; False if there was none."""
        ...

    def readable(self, tenant: str, file_id: str) -> FileRecord | None:
        """The record of file ``file_id`` if ``tenant`` owns it or holds a grant to it (``.tenant`` is the owner,
        for ``open``); None otherwise, exactly as for an unknown id."""
        ...

    def share(self, owner: str, file_id: str, tenant: str) -> FileShare | None:
        """Grant ``tenant`` read access to ``owner``'s file (the grant there is, if any); None if no such file."""
        ...

    def shares(self, owner: str, file_id: str) -> builtins.list[FileShare]:
        """The grants of ``owner``'s file ``file_id``, oldest first (by time, then tenant)."""
        ...

    def unshare(self, owner: str, file_id: str, tenant: str) -> bool:
        """Revoke ``tenant``'s grant to ``owner``'s file; False if there was none."""
        ...


def ordered(records: list[FileRecord], purpose: str | None) -> list[FileRecord]:
    kept = [record for record in records if purpose is None or record.purpose == purpose]
    return sorted(kept, key=lambda record: (record.created_at, record.id))


def ordered_shares(shares: list[FileShare]) -> builtins.list[FileShare]:
    return sorted(shares, key=lambda share: (share.created_at, share.tenant))
