"""Files in a local folder (``<state_dir>/files``), for the local server: ``<tenant>/<file_id>/{content,meta.json}``.

A file's grants are ``<tenant>/<file_id>/shares/<grantee>``, each mirrored by ``.shared/<grantee>/<file_id>``
(what ``readable`` reads); uploads in parts are under ``.uploads/<tenant>/`` (``aimass.files.local_uploads``).
No tenant name starts with a dot, so neither folder is ever a tenant's.

An upload is written into a hidden staging folder beside the tenant's files and renamed into place once its
content and record are complete, so a file appears whole or not at all; a refused upload's staging folder is
removed. Deleting renames the file's folder out of the listing first, then removes it. Folders are made 0700
and files 0600, as the metering database: the files are tenants' data, for no other local user.
"""

from __future__ import annotations

import builtins
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
from aimass.private import FOLDER_MODE, new_private_file, private_folder


class LocalFileStore:
    def __init__(self, root: Path, *, now: Callable[[], float] = time.time) -> None:
        self.root = root
        self._now = now

    def put(self, tenant: str, source: Readable, *, filename: str, purpose: str, limit: int) -> FileRecord:
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
        # Unreadable to grantees from the rename on (readable reads the owner's record); then their entries go.
        if (doomed / SHARES).is_dir():
            for grant in (doomed / SHARES).iterdir():
                (self.root / SHARED / grant.name / file_id).unlink(missing_ok=True)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def readable(self, tenant: str, file_id: str) -> FileRecord | None:
        if not FILE_ID.fullmatch(file_id):
            return None
        try:
            owner = FileShare.from_json((self.root / SHARED / checked_tenant(tenant) / file_id).read_bytes()).owner
        except FileNotFoundError:
            owner = tenant
        return self.get(owner, file_id)

    def share(self, owner: str, file_id: str, tenant: str) -> FileShare | None:
        path = self._file(owner, file_id)
        if path is None or self.get(owner, file_id) is None:
            return None
        granted = FileShare(file_id=file_id, owner=owner, tenant=checked_tenant(tenant), created_at=int(self._now()))
        forward = path / SHARES / tenant
        try:
            granted = FileShare.from_json(forward.read_bytes())  # granted before: the first grant stands
        except FileNotFoundError:
            private_folder(path / SHARES)
            _write_whole(forward, granted.to_json())
        private_tree(self.root, self.root / SHARED / tenant)
        _write_whole(self.root / SHARED / tenant / file_id, granted.to_json())
        return granted

    def shares(self, owner: str, file_id: str) -> builtins.list[FileShare]:
        path = self._file(owner, file_id)
        folder = path / SHARES if path is not None else None
        if folder is None or not folder.is_dir():
            return []
        grants = []
        for entry in folder.iterdir():
            if not entry.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):  # revoked meanwhile
                    grants.append(FileShare.from_json(entry.read_bytes()))
        return ordered_shares(grants)

    def unshare(self, owner: str, file_id: str, tenant: str) -> bool:
        path = self._file(owner, file_id)
        if path is None or not (path / SHARES / checked_tenant(tenant)).is_file():
            return False
        (self.root / SHARED / tenant / file_id).unlink(missing_ok=True)  # access ends here, before the listing
        (path / SHARES / tenant).unlink(missing_ok=True)
        return True

    def _tenant(self, tenant: str) -> Path:
        return self.root / checked_tenant(tenant)

    def _file(self, tenant: str, file_id: str) -> Path | None:
        return self._tenant(tenant) / file_id if FILE_ID.fullmatch(file_id) else None


def private_tree(root: Path, folder: Path) -> None:
    """``folder`` and every folder from ``root`` down to it made 0700 (a parent made on the way would not be)."""
    for level in (*reversed(folder.relative_to(root).parents), folder.relative_to(root)):
        private_folder(root / level)


def _write_whole(path: Path, content: bytes) -> None:
    """``content`` at ``path``, replacing what is there, never seen half-written."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    with new_private_file(staging) as out:
        out.write(content)
    os.replace(staging, path)


def _chunks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    with handle:
        while size > 0 and (data := handle.read(min(CHUNK_BYTES, size))):
            size -= len(data)
            yield data
