"""Files in a local folder (``<state_dir>/files``), for the local server: ``<tenant>/<file_id>/{content,meta.json}``.

An upload is written into a hidden staging folder beside the tenant's files and renamed into place once its
content and record are complete, so a file appears whole or not at all; a refused upload's staging folder is
removed. Deleting renames the file's folder out of the listing first, then removes it. Folders are made 0700
and files 0600, as the metering database: the files are tenants' data, for no other local user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from aimass.files.base import (
    CHUNK_BYTES,
    CONTENT_FILE,
    FILE_ID,
    META_FILE,
    FileRecord,
    Measured,
    checked_tenant,
    new_file_id,
    ordered,
)
from aimass.private import FOLDER_MODE, new_private_file, private_folder


class LocalFileStore:
    def __init__(self, root: Path, *, now: Callable[[], float] = time.time) -> None:
        self.root = root
        self._now = now

    def put(self, tenant: str, source: BinaryIO, *, filename: str, purpose: str, limit: int) -> FileRecord:
        folder = self._tenant(tenant)
        private_folder(self.root)
        private_folder(folder)
        file_id = new_file_id()
        staging = folder / f".{file_id}.partial"
        staging.mkdir(mode=FOLDER_MODE)
        try:
            measured = Measured(source, limit)
            with new_private_file(staging / CONTENT_FILE) as out:
                for chunk in measured:
                    out.write(chunk)
            record = FileRecord(
                id=file_id,
                tenant=tenant,
                size=measured.size,
                created_at=int(self._now()),
                filename=filename,
                purpose=purpose,
                sha256=measured.sha256,
            )
            with new_private_file(staging / META_FILE) as out:
                out.write(record.to_json())
            os.rename(staging, folder / file_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return record

    def get(self, tenant: str, file_id: str) -> FileRecord | None:
        path = self._file(tenant, file_id)
        try:
            return FileRecord.from_json((path / META_FILE).read_bytes()) if path is not None else None
        except FileNotFoundError:
            return None

    def open(
        self, tenant: str, file_id: str, *, start: int = 0, end: int | None = None
    ) -> tuple[FileRecord, Iterator[bytes]] | None:
        path = self._file(tenant, file_id)
        record = self.get(tenant, file_id)
        if path is None or record is None:
            return None
        try:
            handle = (path / CONTENT_FILE).open("rb")
        except FileNotFoundError:
            return None
        handle.seek(start)
        return record, _chunks(handle, (record.size if end is None else end) - start)

    def list(self, tenant: str, *, purpose: str | None = None) -> list[FileRecord]:
        folder = self._tenant(tenant)
        if not folder.is_dir():
            return []
        records = []
        for entry in folder.iterdir():
            if FILE_ID.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    records.append(FileRecord.from_json((entry / META_FILE).read_bytes()))
        return ordered(records, purpose)

    def delete(self, tenant: str, file_id: str) -> bool:
        path = self._file(tenant, file_id)
        if path is None:
            return False
        doomed = path.with_name(f".{file_id}.deleted")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return False
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def _tenant(self, tenant: str) -> Path:
        return self.root / checked_tenant(tenant)

    def _file(self, tenant: str, file_id: str) -> Path | None:
        return self._tenant(tenant) / file_id if FILE_ID.fullmatch(file_id) else None


def _chunks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    with handle:
        while size > 0 and (data := handle.read(min(CHUNK_BYTES, size))):
            size -= len(data)
            yield data
