"""Uploads in parts in the local file store's folder: ``.uploads/<tenant>/<upload_id>/{upload.json,parts/<part_id>}``.

A part is written to a hidden name in ``parts/`` and renamed to its id once whole, so a part cut off halfway
is never listed; ``claim`` is a file made exclusively (``O_EXCL``), so of two requests ending one upload, one
wins. Folders are 0700 and files 0600 (``aimass.private``), as the files themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aimass.files.base import CHUNK_BYTES, Measured, checked_tenant
from aimass.files.local import private_tree
from aimass.files.uploads import PART_PREFIX, PARTS, UPLOAD_FILE, UPLOAD_PREFIX, PartRecord, UploadRecord, is_id
from aimass.private import new_private_file

UPLOADS = ".uploads"
_CLAIM = "claim"


class LocalUploadStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, record: UploadRecord) -> None:
        folder = self._upload(record.tenant, record.id)
        private_tree(self.root, folder)
        staging = folder / f".{UPLOAD_FILE}.{os.getpid()}"
        staging.unlink(missing_ok=True)
        with new_private_file(staging) as out:
            out.write(record.to_json())
        os.replace(staging, folder / UPLOAD_FILE)

    def load(self, tenant: str, upload_id: str) -> UploadRecord | None:
        if not is_id(upload_id, UPLOAD_PREFIX):
            return None
        try:
            return UploadRecord.from_json((self._upload(tenant, upload_id) / UPLOAD_FILE).read_bytes())
        except FileNotFoundError:
            return None

    def add_part(self, tenant: str, upload_id: str, part_id: str, measured: Measured) -> None:
        folder = self._upload(tenant, upload_id) / PARTS
        private_tree(self.root, folder)
        staging = folder / f".{part_id}.partial"
        try:
            with new_private_file(staging) as out:
                for chunk in measured:
                    out.write(chunk)
            os.rename(staging, folder / part_id)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    def parts(self, tenant: str, upload_id: str) -> list[PartRecord]:
        folder = self._upload(tenant, upload_id) / PARTS
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            if is_id(entry.name, PART_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    found.append(PartRecord(id=entry.name, size=entry.stat().st_size))
        return found

    def part_url(self, tenant: str, upload_id: str, part_id: str, size: int, expires_s: int) -> str | None:
        return None  # a folder on this machine: parts come through the API

    def open_part(self, tenant: str, upload_id: str, part_id: str) -> Iterator[bytes] | None:
        if not is_id(part_id, PART_PREFIX):
            return None
        try:
            handle = (self._upload(tenant, upload_id) / PARTS / part_id).open("rb")
        except FileNotFoundError:
            return None
        return _chunks(handle)

    def claim(self, tenant: str, upload_id: str) -> bool:
        try:
            new_private_file(self._upload(tenant, upload_id) / _CLAIM).close()
        except FileExistsError:
            return False
        return True

    def release(self, tenant: str, upload_id: str) -> None:
        (self._upload(tenant, upload_id) / _CLAIM).unlink(missing_ok=True)

    def drop_parts(self, tenant: str, upload_id: str) -> None:
        shutil.rmtree(self._upload(tenant, upload_id) / PARTS, ignore_errors=True)

    def sweep(self, tenant: str, before: float) -> None:
        folder = self.root / UPLOADS / checked_tenant(tenant)
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            try:
                record = UploadRecord.from_json((entry / UPLOAD_FILE).read_bytes())
            except FileNotFoundError:  # being made now, or removed meanwhile
                continue
            if record.expires_at < before:
                shutil.rmtree(entry, ignore_errors=True)

    def _upload(self, tenant: str, upload_id: str) -> Path:
        if not is_id(upload_id, UPLOAD_PREFIX):
            raise ValueError(f"{upload_id!r} is not an upload id")
        return self.root / UPLOADS / checked_tenant(tenant) / upload_id


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while data := handle.read(CHUNK_BYTES):
            yield data
