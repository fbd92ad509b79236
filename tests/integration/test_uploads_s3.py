"""Uploads in parts and shared files on the S3 backend, against moto's server over real HTTP.

GIVEN a bucket, WHEN a file is sent in parts (one over a multipart part's size, one re-sent), completed,
cancelled or refused, and shared, revoked and deleted, THEN the completed file is an ordinary file of its
tenant, nothing of an ended upload is left, and grants live under the file and under the grantee.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

from aimass.errors import InvalidInput, NotFound
from aimass.files.factory import open_uploads
from aimass.files.s3 import S3FileStore
from aimass.files.uploads import Uploads
from tests.moto_server import MotoServer

BUCKET = "aimass-uploads"
PART = 5 * 1024 * 1024  # S3's smallest multipart part


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    return moto.bucket(BUCKET)


@pytest.fixture
def store(s3: Any) -> S3FileStore:
    return S3FileStore(s3, BUCKET, "files/", part_bytes=PART)


@pytest.fixture
def uploads(store: S3FileStore) -> Uploads:
    return Uploads(store, open_uploads(store), max_file_bytes=64 * 1024 * 1024)


def keys(s3: Any, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", ())
    return sorted(str(item["Key"]) for item in listed)


def test_parts_become_a_file_and_leave_nothing_behind(uploads: Uploads, store: S3FileStore, s3: Any) -> None:
    content = bytes(range(256)) * (PART // 256 + 4000)  # over one multipart part: the file goes in parts
    head, tail = content[: PART + 100], content[PART + 100 :]
    upload = uploads.create("acme", filename="big.jsonl", purpose="batch", size=len(content), mime_type="x/y")
    prefix = f"files/.uploads/acme/{upload.id}/"
    assert keys(s3) == [prefix + "upload.json"]
    tail_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(tail))
    with pytest.raises(InvalidInput, match="empty"):  # a part that never came: nothing stored
        uploads.add_part("acme", upload.id, io.BytesIO(b""))
    head_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(head))
    retried_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(head))  # re-sent: a new id, both kept
    assert len(keys(s3, prefix + "parts/")) == 3 and s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") is None

    with pytest.raises(InvalidInput, match="bytes"):
        uploads.complete("acme", upload.id, [retried_id], None)
    with pytest.raises(InvalidInput) as wrong_md5:
        uploads.complete("acme", upload.id, [retried_id, tail_id], hashlib.md5(b"x").hexdigest())
    assert wrong_md5.value.param == "md5" and store.list("acme") == []
    assert keys(s3, "files/acme/") == []  # the file's content was removed with its record never written

    done, record = uploads.complete("acme", upload.id, [retried_id, tail_id], hashlib.md5(content).hexdigest())
    assert done.status == "completed" and done.file_id == record.id
    assert record.size == len(content) and record.sha256 == hashlib.sha256(content).hexdigest()
    assert store.list("acme") == [record]
    opened = store.open("acme", record.id)
    assert opened is not None and b"".join(opened[1]) == content
    assert keys(s3, prefix) == [prefix + "claim", prefix + "upload.json"]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") is None
    with pytest.raises(InvalidInput, match="completed"):
        uploads.complete("acme", upload.id, [head_id, tail_id], None)


def test_one_of_two_endings_wins(uploads: Uploads, store: S3FileStore) -> None:
    upload = uploads.create("acme", filename="a", purpose="batch", size=3, mime_type="x/y")
    part_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(b"abc"))
    upload_store = open_uploads(store)
    assert upload_store.claim("acme", upload.id) is True  # another request is completing it
    with pytest.raises(InvalidInput, match="being completed"):
        uploads.complete("acme", upload.id, [part_id], None)
    upload_store.release("acme", upload.id)
    assert uploads.complete("acme", upload.id, [part_id], None)[0].status == "completed"


def test_cancel_and_other_tenants(uploads: Uploads, s3: Any) -> None:
    upload = uploads.create("acme", filename="a", purpose="batch", size=3, mime_type="x/y")
    part_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(b"abc"))
    for attempt in (
        lambda: uploads.add_part("globex", upload.id, io.BytesIO(b"abc")),
        lambda: uploads.complete("globex", upload.id, [part_id], None),
        lambda: uploads.cancel("globex", upload.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert uploads.cancel("acme", upload.id).status == "cancelled"
    assert keys(s3, f"files/.uploads/acme/{upload.id}/parts/") == []
    with pytest.raises(InvalidInput, match="cancelled"):
        uploads.complete("acme", upload.id, [part_id], None)


def test_expired_uploads_are_swept(store: S3FileStore, s3: Any) -> None:
    clock = [1.0e9]
    uploads = Uploads(store, open_uploads(store), max_file_bytes=100, now=lambda: clock[0])
    old = uploads.create("acme", filename="a", purpose="batch", size=3, mime_type="x/y")
    uploads.add_part("acme", old.id, io.BytesIO(b"abc"))
    # The objects' times are S3's (now): a clock two lifetimes ahead sees them as expired.
    import time

    clock[0] = time.time() + 3 * 3600
    new = uploads.create("acme", filename="b", purpose="batch", size=3, mime_type="x/y")
    assert keys(s3, "files/.uploads/") == [f"files/.uploads/acme/{new.id}/upload.json"]


def test_shares_on_s3(store: S3FileStore, s3: Any) -> None:
    record = store.put("acme", io.BytesIO(b"line\n"), filename="in.jsonl", purpose="batch", limit=100)
    assert store.share("globex", record.id, "initech") is None  # only the owner grants
    granted = store.share("acme", record.id, "globex")
    assert granted is not None and granted.owner == "acme" and granted.tenant == "globex"
    assert store.share("acme", record.id, "globex") == granted
    assert keys(s3, f"files/acme/{record.id}/shares/") == [f"files/acme/{record.id}/shares/globex"]
    assert keys(s3, "files/.shared/") == [f"files/.shared/globex/{record.id}"]
    assert store.shares("acme", record.id) == [granted] and store.shares("globex", record.id) == []
    assert store.list("acme") == [record] and store.list("globex") == []

    assert store.readable("acme", record.id) == record
    assert store.readable("globex", record.id) == record and record.tenant == "acme"
    assert store.readable("initech", record.id) is None
    # Owner-only as before: the grantee can neither get, open, nor delete it.
    assert store.get("globex", record.id) is None and store.open("globex", record.id) is None
    assert store.delete("globex", record.id) is False and store.unshare("globex", record.id, "globex") is False

    assert store.unshare("acme", record.id, "globex") is True and store.readable("globex", record.id) is None
    assert store.unshare("acme", record.id, "globex") is False
    store.share("acme", record.id, "globex")
    store.share("acme", record.id, "initech")
    assert store.delete("acme", record.id) is True
    assert keys(s3) == [] and store.readable("globex", record.id) is None
