"""The S3 file store against moto's server over real HTTP: layout, tenants, and refused uploads leave nothing.

GIVEN a bucket, WHEN files are uploaded, listed, read and deleted through ``S3FileStore``, THEN each lives at
``<prefix><tenant>/<file_id>/{content,meta.json}``, another tenant never sees it, and an upload refused on
the way (over the limit, empty), whether one PUT or a multipart upload, leaves no object and no open upload.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from aimass.errors import InvalidInput, PayloadTooLarge, ServiceUnavailable
from aimass.files.factory import open_files
from aimass.files.s3 import S3FileStore
from aimass.settings import Settings
from tests.moto_server import MotoServer

BUCKET = "aimass-files"
PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    return moto.bucket(BUCKET)


@pytest.fixture
def store(s3: Any) -> S3FileStore:
    return S3FileStore(s3, BUCKET, "files", part_bytes=PART)


def keys(s3: Any) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", ()))


def open_uploads(s3: Any) -> list[Any]:
    uploads: list[Any] = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return uploads


def test_a_file_is_its_content_and_metadata_under_its_tenant(store: S3FileStore, s3: Any) -> None:
    record = store.put("acme", io.BytesIO(b"line\n"), filename="in.jsonl", purpose="batch", limit=100)
    assert keys(s3) == [f"files/acme/{record.id}/content", f"files/acme/{record.id}/meta.json"]
    meta = json.loads(s3.get_object(Bucket=BUCKET, Key=f"files/acme/{record.id}/meta.json")["Body"].read())
    assert meta["sha256"] == hashlib.sha256(b"line\n").hexdigest() and meta["size"] == 5
    assert store.get("acme", record.id) == record
    assert store.list("acme") == [record] and store.list("acme", purpose="other") == []
    opened = store.open("acme", record.id)
    assert opened is not None and opened[0] == record
    chunks = opened[1]
    assert chunks is not None and b"".join(chunks) == b"line\n"

    assert store.get("globex", record.id) is None and store.open("globex", record.id) is None
    assert store.list("globex") == [] and store.delete("globex", record.id) is False
    assert store.delete("acme", record.id) is True
    assert keys(s3) == [] and store.get("acme", record.id) is None and store.delete("acme", record.id) is False


def test_a_large_file_goes_in_parts(store: S3FileStore, s3: Any) -> None:
    content = bytes(range(256)) * (PART * 2 // 256 + 1000)
    record = store.put("acme", io.BytesIO(content), filename="big.jsonl", purpose="batch", limit=len(content))
    opened = store.open("acme", record.id)
    assert opened is not None and opened[0] == record
    chunks = opened[1]
    assert chunks is not None and b"".join(chunks) == content
    assert record.sha256 == hashlib.sha256(content).hexdigest() and open_uploads(s3) == []


@pytest.mark.parametrize("size", [1000, PART * 2 + 10])
def test_an_upload_over_the_limit_leaves_nothing(store: S3FileStore, s3: Any, size: int) -> None:
    with pytest.raises(PayloadTooLarge, match=str(size - 1)):
        store.put("acme", io.BytesIO(b"x" * size), filename="f", purpose="batch", limit=size - 1)
    assert keys(s3) == [] and open_uploads(s3) == [] and store.list("acme") == []


def test_an_empty_upload_leaves_nothing(store: S3FileStore, s3: Any) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        store.put("acme", io.BytesIO(b""), filename="f", purpose="batch", limit=10)
    assert keys(s3) == []


def test_a_content_object_without_metadata_is_not_listed(store: S3FileStore, s3: Any) -> None:
    half = "file-" + "B" * 24
    s3.put_object(Bucket=BUCKET, Key=f"files/acme/{half}/content", Body=b"partial")
    assert store.list("acme") == [] and store.get("acme", half) is None and store.open("acme", half) is None


def test_a_missing_bucket_is_unavailable_not_an_error(s3: Any) -> None:
    store = S3FileStore(s3, "no-such-bucket")
    with pytest.raises(ServiceUnavailable):
        store.list("acme")
    with pytest.raises(ServiceUnavailable):
        store.put("acme", io.BytesIO(b"x"), filename="f", purpose="batch", limit=10)


def test_the_factory_opens_the_bucket_the_settings_name(
    s3: Any, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto.environment().items():
        monkeypatch.setenv(name, value)
    files = open_files(Settings(files_bucket=BUCKET, files_prefix="up/", aws_endpoint_url=moto.endpoint))
    record = files.put("acme", io.BytesIO(b"x"), filename="f", purpose="batch", limit=10)
    assert keys(s3) == [f"up/acme/{record.id}/content", f"up/acme/{record.id}/meta.json"]
