"""Uploads in parts in the files bucket: ``<prefix>.uploads/<tenant>/<upload_id>/{upload.json,parts/<part_id>,claim}``.

Each part is an object of its own, written as a file's content is (one PUT, or an S3 multipart upload past
``part_bytes``, aborted if it fails), and the file is made at completion by reading the listed parts in order
into the file store's ``put``. S3's own multipart upload cannot take the API's parts directly: it wants parts
of 5 MiB or more (a part here may be a byte) numbered in their final order (known only at completion), and
UploadPartCopy has the same floor. The parts are read at completion anyway, for the file record's sha256 and
the client's md5, so writing them on the way costs no extra read, and one code path serves every part size.

``claim`` is a conditional PUT (``If-None-Match: *``): of two requests ending one upload, S3 lets one write it.
Uploads that expired are removed as their tenant starts another; the bucket's lifecycle rule removes the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aimass.files.base import Measured, checked_tenant
from aimass.files.s3 import PART_BYTES, chunks_of, missing, put_content, read_object, unavailable
from aimass.files.uploads import (
    PART_PREFIX,
    PARTS,
    UPLOAD_FILE,
    UPLOAD_PREFIX,
    UPLOAD_TTL_S,
    PartRecord,
    UploadRecord,
    is_id,
)

UPLOADS = ".uploads"
_CLAIM = "claim"
_MOST_PER_DELETE = 1000  # S3's DeleteObjects limit


class S3UploadStore:
    def __init__(self, s3: Any, bucket: str, prefix: str = "", *, part_bytes: int = PART_BYTES) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes

    def save(self, record: UploadRecord) -> None:
        with unavailable("upload"):
            self.s3.put_object(
                Bucket=self.bucket, Key=self._upload(record.tenant, record.id) + UPLOAD_FILE, Body=record.to_json()
            )

    def load(self, tenant: str, upload_id: str) -> UploadRecord | None:
        if not is_id(upload_id, UPLOAD_PREFIX):
            return None
        raw = read_object(self.s3, self.bucket, self._upload(tenant, upload_id) + UPLOAD_FILE)
        return UploadRecord.from_json(raw) if raw is not None else None

    def add_part(self, tenant: str, upload_id: str, part_id: str, measured: Measured) -> None:
        key = self._upload(tenant, upload_id) + f"{PARTS}/{part_id}"
        with unavailable("upload"):
            put_content(self.s3, self.bucket, key, measured, self.part_bytes)

    def parts(self, tenant: str, upload_id: str) -> list[PartRecord]:
        folder = self._upload(tenant, upload_id) + PARTS + "/"
        return [
            PartRecord(id=key[len(folder) :], size=int(item["Size"]))
            for key, item in self._listed(folder)
            if is_id(key[len(folder) :], PART_PREFIX)
        ]

    def part_url(self, tenant: str, upload_id: str, part_id: str, size: int, expires_s: int) -> str | None:
        # A presigned PUT of the part's own key, its length signed in: S3 refuses any other size, so the
        # client cannot store more than it asked to. Parts are listed from the bucket (``parts``), so a part
        # PUT there counts as one sent through the API.
        key = self._upload(tenant, upload_id) + f"{PARTS}/{part_id}"
        with unavailable("sign"):
            url: str = self.s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentLength": size},
                ExpiresIn=expires_s,
            )
        return url

    def open_part(self, tenant: str, upload_id: str, part_id: str) -> Iterator[bytes] | None:
        if not is_id(part_id, PART_PREFIX):
            return None
        key = self._upload(tenant, upload_id) + f"{PARTS}/{part_id}"
        with unavailable("read"):
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            except Exception as exc:
                if missing(exc):
                    return None
                raise
        return chunks_of(body)

    def claim(self, tenant: str, upload_id: str) -> bool:
        with unavailable("upload"):
            try:
                self.s3.put_object(
                    Bucket=self.bucket, Key=self._upload(tenant, upload_id) + _CLAIM, Body=b"", IfNoneMatch="*"
                )
            except Exception as exc:
                if _precondition_failed(exc):
                    return False
                raise
        return True

    def release(self, tenant: str, upload_id: str) -> None:
        with unavailable("upload"):
            self.s3.delete_object(Bucket=self.bucket, Key=self._upload(tenant, upload_id) + _CLAIM)

    def drop_parts(self, tenant: str, upload_id: str) -> None:
        self._delete([key for key, _ in self._listed(self._upload(tenant, upload_id) + PARTS + "/")])

    def sweep(self, tenant: str, before: float) -> None:
        # By the objects' times, so that the sweep is one listing and no reads: every object of an upload is
        # written before it expires, so one older than a lifetime before ``before`` is an expired upload's.
        cutoff = before - UPLOAD_TTL_S
        folder = f"{self.prefix}{UPLOADS}/{checked_tenant(tenant)}/"
        self._delete([key for key, item in self._listed(folder) if item["LastModified"].timestamp() < cutoff])

    def _listed(self, folder: str) -> list[tuple[str, Any]]:
        with unavailable("list"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
            return [(str(item["Key"]), item) for page in pages for item in page.get("Contents", ())]

    def _delete(self, keys: list[str]) -> None:
        with unavailable("delete"):
            for first in range(0, len(keys), _MOST_PER_DELETE):
                batch = [{"Key": key} for key in keys[first : first + _MOST_PER_DELETE]]
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _upload(self, tenant: str, upload_id: str) -> str:
        if not is_id(upload_id, UPLOAD_PREFIX):
            raise ValueError(f"{upload_id!r} is not an upload id")
        return f"{self.prefix}{UPLOADS}/{checked_tenant(tenant)}/{upload_id}/"


def _precondition_failed(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")
