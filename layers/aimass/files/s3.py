"""Files in S3: ``<prefix><tenant>/<file_id>/content`` and, beside it, ``.../meta.json`` (the ``FileRecord``).

The content is written first and the record last, and files are listed by their records, so an upload that
fails halfway is never listed. Content up to one part (``part_bytes``, 8 MiB) is one PUT; a larger upload
goes in parts of a multipart upload as it is read, so no more than a part is held in memory, and an upload
refused on the way (over the limit, a failed part) is aborted: S3 then keeps nothing of it. Deleting removes
the record first (unlisted at once), then the file's grants, then the content.

A file's grants are ``<prefix><tenant>/<file_id>/shares/<grantee>``, each mirrored by
``<prefix>.shared/<grantee>/<file_id>`` (what ``readable`` reads: a grantee's lookup is two GETs); uploads in
parts are under ``<prefix>.uploads/<tenant>/`` (``aimass.files.s3_uploads``). No tenant name starts with a dot,
and both sit outside every tenant's prefix, so listing a tenant's files never pages through them.

The client is any boto3 S3 client (``aimass.files.factory`` makes it with ``aimass.aws``). A client error
other than a missing object is a ``ServiceUnavailable`` for the caller; its detail goes to the log.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from aimass.errors import ServiceUnavailable
from aimass.files.base import (
    CHUNK_BYTES,
    CONTENT_FILE,
    FILE_ID,
    META_FILE,
    SHARED,
    SHARES,
    FileRecord,
    FileShare,
    Measured,
    Readable,
    checked_tenant,
    new_file_id,
    ordered,
    ordered_shares,
)

log = logging.getLogger("aimass.files")

PART_BYTES = 8 * 1024 * 1024  # S3 takes parts of 5 MiB or more, but the last
_MISSING = ("NoSuchKey", "404", "NotFound")


class S3FileStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str = "",
        *,
        part_bytes: int = PART_BYTES,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
        self.part_bytes = part_bytes
        self._now = now

    def put(self, tenant: str, source: Readable, *, filename: str, purpose: str, limit: int) -> FileRecord:
        file_id = new_file_id()
        base = self._base(tenant, file_id)
        measured = Measured(source, limit)
        with unavailable("upload"):
            put_content(self.s3, self.bucket, base + CONTENT_FILE, measured, self.part_bytes)
            record = FileRecord(
                id=file_id,
                tenant=tenant,
                size=measured.size,
                created_at=int(self._now()),
                filename=filename,
                purpose=purpose,
                sha256=measured.sha256,
            )
            try:
                self.s3.put_object(Bucket=self.bucket, Key=base + META_FILE, Body=record.to_json())
            except BaseException:
                self._forget(base + CONTENT_FILE)
                raise
        return record

    def get(self, tenant: str, file_id: str) -> FileRecord | None:
        if not FILE_ID.fullmatch(file_id):
            return None
        raw = self._read(self._base(tenant, file_id) + META_FILE)
        return FileRecord.from_json(raw) if raw is not None else None

    def open(
        self, tenant: str, file_id: str, *, start: int = 0, end: int | None = None
    ) -> tuple[FileRecord, Iterator[bytes]] | None:
        record = self.get(tenant, file_id)
        if record is None:
            return None
        end = record.size if end is None else min(end, record.size)
        if start >= end:  # S3 refuses an empty range
            return record, iter(())
        key = self._base(tenant, file_id) + CONTENT_FILE
        ranged = {} if (start, end) == (0, record.size) else {"Range": f"bytes={start}-{end - 1}"}
        with unavailable("read"):
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key, **ranged)["Body"]
            except Exception as exc:
                if missing(exc):
                    return None
                raise
        return record, chunks_of(body)

    def list(self, tenant: str, *, purpose: str | None = None) -> list[FileRecord]:
        folder = self.prefix + checked_tenant(tenant) + "/"
        records = []
        with unavailable("list"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
                for item in page.get("Contents", ()):
                    file_id, _, name = str(item["Key"])[len(folder) :].partition("/")
                    if name == META_FILE and FILE_ID.fullmatch(file_id):
                        raw = self._read(item["Key"])
                        if raw is not None:  # deleted meanwhile
                            records.append(FileRecord.from_json(raw))
        return ordered(records, purpose)

    def delete(self, tenant: str, file_id: str) -> bool:
        if self.get(tenant, file_id) is None:
            return False
        base = self._base(tenant, file_id)
        with unavailable("delete"):
            self.s3.delete_object(Bucket=self.bucket, Key=base + META_FILE)
            for grant in self._grant_keys(base):
                self.s3.delete_object(Bucket=self.bucket, Key=self._shared(grant.rpartition("/")[2], file_id))
                self.s3.delete_object(Bucket=self.bucket, Key=grant)
            self.s3.delete_object(Bucket=self.bucket, Key=base + CONTENT_FILE)
        return True

    def readable(self, tenant: str, file_id: str) -> FileRecord | None:
        if not FILE_ID.fullmatch(file_id):
            return None
        granted = self._read(self._shared(tenant, file_id))
        return self.get(FileShare.from_json(granted).owner if granted is not None else tenant, file_id)

    def share(self, owner: str, file_id: str, tenant: str) -> FileShare | None:
        if self.get(owner, file_id) is None:
            return None
        forward = self._base(owner, file_id) + SHARES + "/" + checked_tenant(tenant)
        existing = self._read(forward)
        if existing is not None:  # granted before: the first grant stands
            granted = FileShare.from_json(existing)
        else:
            granted = FileShare(file_id=file_id, owner=owner, tenant=tenant, created_at=int(self._now()))
        with unavailable("share"):
            if existing is None:
                self.s3.put_object(Bucket=self.bucket, Key=forward, Body=granted.to_json())
            self.s3.put_object(Bucket=self.bucket, Key=self._shared(tenant, file_id), Body=granted.to_json())
        return granted

    def shares(self, owner: str, file_id: str) -> builtins.list[FileShare]:
        if not FILE_ID.fullmatch(file_id):
            return []
        grants = []
        for key in self._grant_keys(self._base(owner, file_id)):
            raw = self._read(key)
            if raw is not None:  # revoked meanwhile
                grants.append(FileShare.from_json(raw))
        return ordered_shares(grants)

    def unshare(self, owner: str, file_id: str, tenant: str) -> bool:
        if not FILE_ID.fullmatch(file_id):
            return False
        forward = self._base(owner, file_id) + SHARES + "/" + checked_tenant(tenant)
        if self._read(forward) is None:
            return False
        with unavailable("unshare"):
            # Access ends with the grantee's entry, before the owner's listing changes.
            self.s3.delete_object(Bucket=self.bucket, Key=self._shared(tenant, file_id))
            self.s3.delete_object(Bucket=self.bucket, Key=forward)
        return True

    def _grant_keys(self, base: str) -> builtins.list[str]:
        folder = base + SHARES + "/"
        with unavailable("list"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
            return [str(item["Key"]) for page in pages for item in page.get("Contents", ())]

    def _shared(self, tenant: str, file_id: str) -> str:
        return f"{self.prefix}{SHARED}/{checked_tenant(tenant)}/{file_id}"

    def _read(self, key: str) -> bytes | None:
        return read_object(self.s3, self.bucket, key)

    def _forget(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except Exception:
            log.exception("could not remove s3://%s/%s of a failed upload", self.bucket, key)

    def _base(self, tenant: str, file_id: str) -> str:
        return f"{self.prefix}{checked_tenant(tenant)}/{file_id}/"


def put_content(s3: Any, bucket: str, key: str, measured: Measured, part_bytes: int) -> None:
    """``measured`` at ``key``: one PUT up to ``part_bytes``, else a multipart upload (aborted on failure)."""
    chunks = iter(measured)
    first = _fill(chunks, part_bytes)
    if len(first) < part_bytes:  # the whole file: one PUT
        s3.put_object(Bucket=bucket, Key=key, Body=first)
        return
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        parts: list[dict[str, Any]] = []
        part = first
        while part:
            number = len(parts) + 1
            sent = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part)
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})
            part = _fill(chunks, part_bytes)
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        except Exception:
            log.exception("could not abort the multipart upload of s3://%s/%s", bucket, key)
        raise


def read_object(s3: Any, bucket: str, key: str) -> bytes | None:
    """The object at ``key``; None if there is none."""
    with unavailable("read"):
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            if missing(exc):
                return None
            raise
    return body


def _fill(chunks: Iterator[bytes], size: int) -> bytes:
    """The next ``size`` bytes of ``chunks`` (fewer at the end)."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = next(chunks, None)
        if chunk is None:
            break
        buffer += chunk
    return bytes(buffer)


def chunks_of(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in _MISSING


@contextlib.contextmanager
def unavailable(action: str) -> Iterator[None]:
    """A storage failure as a ServiceUnavailable; the AI Mass errors of the upload itself pass through."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.error("file storage %s failed: %s", action, exc)
        raise ServiceUnavailable("file storage cannot be reached now; retry shortly") from None
