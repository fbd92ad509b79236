"""The Uploads API over HTTP and through the official OpenAI SDK: the real app, files kept locally.

GIVEN keys of two tenants, WHEN a file is sent in parts (some re-sent after a failure), completed, cancelled
or refused, THEN the completed file is an ordinary file of its tenant, refusals name their field, another
tenant's upload id is a 404 as an unknown one, and nothing of a cancelled or refused upload is listed.
"""

from __future__ import annotations

import hashlib
import io
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openai import BadRequestError, NotFoundError, OpenAI

from aimass.errors import InvalidInput, NotFound
from aimass.files.factory import open_uploads
from aimass.files.local import LocalFileStore
from aimass.files.uploads import UPLOAD_TTL_S, Uploads
from aimass.http.app import build_app
from aimass.settings import Settings
from tests.functional.test_files_api import PLANS, auth, error

UPLOADS = "/v1/uploads"
CONTENT = b"".join(b'{"custom_id": "%d", "body": {"input": "line %d"}}\n' % (n, n) for n in range(400))
MISSING = "upload_" + "A" * 24


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_store=tiny_store,
        metering="sqlite",
        state_dir=tmp_path / "state",
        plans=PLANS,
        alias_check_s=0,
        max_body_bytes=64 * 1024,
        max_file_bytes=256 * 1024,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def acme(settings: Settings) -> dict[str, str]:
    return auth(settings, "acme")


@pytest.fixture
def globex(settings: Settings) -> dict[str, str]:
    return auth(settings, "globex")


def create(client: TestClient, headers: dict[str, str], size: int = len(CONTENT), **extra: Any) -> Any:
    body = {"filename": "big.jsonl", "purpose": "batch", "bytes": size, "mime_type": "application/jsonl", **extra}
    return client.post(UPLOADS, headers=headers, json=body)


def part(client: TestClient, headers: dict[str, str], upload_id: str, data: bytes) -> Any:
    return client.post(f"{UPLOADS}/{upload_id}/parts", headers=headers, files={"data": ("blob", data)})


def complete(client: TestClient, headers: dict[str, str], upload_id: str, part_ids: list[str], **extra: Any) -> Any:
    return client.post(f"{UPLOADS}/{upload_id}/complete", headers=headers, json={"part_ids": part_ids, **extra})


def thirds(content: bytes) -> list[bytes]:
    third = len(content) // 3
    return [content[:third], content[third : 2 * third], content[2 * third :]]


def test_parts_become_one_file_in_the_order_listed(
    client: TestClient, acme: dict[str, str], settings: Settings
) -> None:
    made = create(client, acme)
    assert made.status_code == 200, made.text
    upload = made.json()
    assert upload["object"] == "upload" and upload["status"] == "pending" and upload["id"].startswith("upload_")
    assert upload["bytes"] == len(CONTENT) and upload["expires_at"] == upload["created_at"] + 3600
    assert upload["filename"] == "big.jsonl" and upload["purpose"] == "batch" and upload["file"] is None
    pieces = thirds(CONTENT)
    # Sent out of order: the order is the one completion lists.
    ids = {n: part(client, acme, upload["id"], pieces[n]).json() for n in (2, 0, 1)}
    assert ids[0]["object"] == "upload.part" and ids[0]["upload_id"] == upload["id"]
    assert ids[0]["id"].startswith("part_") and len({item["id"] for item in ids.values()}) == 3

    done = complete(client, acme, upload["id"], [ids[n]["id"] for n in range(3)], md5=hashlib.md5(CONTENT).hexdigest())
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed" and body["id"] == upload["id"]
    file = body["file"]
    assert file["object"] == "file" and file["bytes"] == len(CONTENT) and file["filename"] == "big.jsonl"
    assert client.get(f"/v1/files/{file['id']}/content", headers=acme).content == CONTENT
    assert [item["id"] for item in client.get("/v1/files", headers=acme).json()["data"]] == [file["id"]]

    # Ended: no more parts, no second completion; the parts are gone from disk.
    again = complete(client, acme, upload["id"], [ids[0]["id"]])
    assert again.status_code == 400 and error(again)["param"] == "upload_id" and "completed" in error(again)["message"]
    late = part(client, acme, upload["id"], b"x")
    assert late.status_code == 400 and error(late)["param"] == "upload_id"
    folder = settings.state_dir / "files" / ".uploads" / "acme" / upload["id"]
    assert not (folder / "parts").exists()
    for path in (settings.state_dir / "files" / ".uploads", folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_a_resent_part_resumes_an_interrupted_upload(client: TestClient, acme: dict[str, str]) -> None:
    upload_id = create(client, acme).json()["id"]
    first, second, third = thirds(CONTENT)
    sent = [part(client, acme, upload_id, first).json()["id"]]
    # The second part is cut off by the limit of its body (a stand-in for a connection lost mid-part)...
    broken = client.post(
        f"{UPLOADS}/{upload_id}/parts",
        headers={**acme, "content-type": "multipart/form-data; boundary=x"},
        content=b'--x\r\nContent-Disposition: form-data; name="data"; filename="b"\r\n\r\n' + second[:10],
    )
    assert broken.status_code == 400
    # ...so completing now is short of bytes, and says so.
    short = complete(client, acme, upload_id, sent)
    assert short.status_code == 400 and error(short)["param"] == "bytes"
    assert str(len(CONTENT)) in error(short)["message"] and str(len(first)) in error(short)["message"]
    # The client sends it again (a new id), then the rest, and lists the ids that count.
    sent.append(part(client, acme, upload_id, second).json()["id"])
    stale = part(client, acme, upload_id, third).json()["id"]
    sent.append(part(client, acme, upload_id, third).json()["id"])  # a retry after a lost answer: two copies
    assert stale not in sent
    done = complete(client, acme, upload_id, sent).json()
    assert client.get(f"/v1/files/{done['file']['id']}/content", headers=acme).content == CONTENT


@pytest.mark.parametrize(
    ("listed", "param", "words"),
    [
        (lambda ids: [], "part_ids", "none"),
        (lambda ids: [ids[0], ids[0], ids[1]], "part_ids", "twice"),
        (lambda ids: [*ids, "part_" + "B" * 24], "part_ids", "not a part"),
        (lambda ids: ids[:1], "bytes", "hold"),
    ],
)
def test_a_wrong_completion_is_named_and_makes_no_file(
    client: TestClient, acme: dict[str, str], listed: Any, param: str, words: str
) -> None:
    upload_id = create(client, acme, size=6).json()["id"]
    ids = [part(client, acme, upload_id, data).json()["id"] for data in (b"abc", b"def")]
    wrong = complete(client, acme, upload_id, listed(ids))
    assert wrong.status_code == 400 and error(wrong)["param"] == param and words in error(wrong)["message"]
    assert client.get("/v1/files", headers=acme).json()["data"] == []
    # The upload is still pending: the right list completes it.
    assert complete(client, acme, upload_id, ids).json()["status"] == "completed"


def test_a_wrong_md5_makes_no_file(client: TestClient, acme: dict[str, str], settings: Settings) -> None:
    upload_id = create(client, acme, size=3).json()["id"]
    ids = [part(client, acme, upload_id, b"abc").json()["id"]]
    for md5, status in (("zz", 400), (hashlib.md5(b"abd").hexdigest(), 400)):
        wrong = complete(client, acme, upload_id, ids, md5=md5)
        assert wrong.status_code == status and error(wrong)["param"] == "md5"
    assert client.get("/v1/files", headers=acme).json()["data"] == []
    assert [p for p in (settings.state_dir / "files" / "acme").rglob("*") if p.is_file()] == []
    assert complete(client, acme, upload_id, ids, md5=hashlib.md5(b"abc").hexdigest()).status_code == 200


def test_sizes_over_the_limits_are_413s(client: TestClient, acme: dict[str, str], settings: Settings) -> None:
    over = create(client, acme, size=settings.max_file_bytes + 1)
    assert over.status_code == 413 and error(over)["param"] == "bytes"
    assert str(settings.max_file_bytes) in error(over)["message"]
    upload_id = create(client, acme, size=10).json()["id"]
    # A part is no larger than its upload.
    big = part(client, acme, upload_id, b"x" * 11)
    assert big.status_code == 413 and error(big)["param"] == "data"
    # A part's body is read up to 64 MiB (here the file limit, 256 KiB) and its form, not max_body_bytes.
    upload_id = create(client, acme, size=settings.max_file_bytes).json()["id"]
    assert part(client, acme, upload_id, b"x" * (128 * 1024)).status_code == 200
    far = part(client, acme, upload_id, b"x" * (settings.max_file_bytes + 128 * 1024))
    assert far.status_code == 413 and error(far)["param"] == "body"


def test_retries_are_bounded(client: TestClient, acme: dict[str, str]) -> None:
    upload_id = create(client, acme, size=4).json()["id"]
    for _ in range(2):
        assert part(client, acme, upload_id, b"abcd").status_code == 200
    full = part(client, acme, upload_id, b"a")
    assert full.status_code == 400 and error(full)["param"] == "data" and "twice" in error(full)["message"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"purpose": "batch_output"}, "purpose"),
        ({"filename": ""}, "filename"),
        ({"mime_type": ""}, "mime_type"),
        ({"bytes": 0}, "bytes"),
        ({"bytes": "10"}, "bytes"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_creations_are_named(client: TestClient, acme: dict[str, str], change: dict[str, Any], param: str) -> None:
    body = {"filename": "a.jsonl", "purpose": "batch", "bytes": 10, "mime_type": "application/jsonl", **change}
    answer = client.post(UPLOADS, headers=acme, json=body)
    assert answer.status_code == 400 and error(answer)["param"] == param, answer.text


def test_cancel_ends_an_upload(client: TestClient, acme: dict[str, str], settings: Settings) -> None:
    upload_id = create(client, acme, size=3).json()["id"]
    part_id = part(client, acme, upload_id, b"abc").json()["id"]
    cancelled = client.post(f"{UPLOADS}/{upload_id}/cancel", headers=acme)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    for answer in (
        complete(client, acme, upload_id, [part_id]),
        part(client, acme, upload_id, b"abc"),
        client.post(f"{UPLOADS}/{upload_id}/cancel", headers=acme),
    ):
        assert answer.status_code == 400 and "cancelled" in error(answer)["message"]
    assert client.get("/v1/files", headers=acme).json()["data"] == []
    assert not (settings.state_dir / "files" / ".uploads" / "acme" / upload_id / "parts").exists()


def test_an_expired_upload_takes_nothing_and_is_swept(tmp_path: Path) -> None:
    # The core over the local store, on a clock the test moves: an hour later, the upload is expired.
    clock = [1_000_000.0]
    files = LocalFileStore(tmp_path)
    uploads = Uploads(files, open_uploads(files), max_file_bytes=100, now=lambda: clock[0])
    upload = uploads.create("acme", filename="a", purpose="batch", size=3, mime_type="text/plain")
    part_id, _ = uploads.add_part("acme", upload.id, io.BytesIO(b"abc"))
    clock[0] += UPLOAD_TTL_S + 1
    with pytest.raises(InvalidInput, match="expired"):
        uploads.complete("acme", upload.id, [part_id], None)
    with pytest.raises(InvalidInput, match="expired"):
        uploads.add_part("acme", upload.id, io.BytesIO(b"abc"))
    uploads.create("acme", filename="b", purpose="batch", size=3, mime_type="text/plain")  # sweeps the old one
    with pytest.raises(NotFound):
        uploads.cancel("acme", upload.id)
    assert not (tmp_path / ".uploads" / "acme" / upload.id).exists()


def test_another_tenants_upload_is_not_there(client: TestClient, acme: dict[str, str], globex: dict[str, str]) -> None:
    upload_id = create(client, acme, size=3).json()["id"]
    part_id = part(client, acme, upload_id, b"abc").json()["id"]
    for other_id in (upload_id, MISSING):
        for answer in (
            part(client, globex, other_id, b"abc"),
            complete(client, globex, other_id, [part_id]),
            client.post(f"{UPLOADS}/{other_id}/cancel", headers=globex),
        ):
            assert answer.status_code == 404 and error(answer)["param"] == "upload_id"
            assert error(answer)["message"] == f"no upload {other_id!r}"
    assert complete(client, acme, upload_id, [part_id]).status_code == 200


def test_malformed_ids_and_keys(client: TestClient, acme: dict[str, str]) -> None:
    for path in (f"{UPLOADS}/upload_short/parts", f"{UPLOADS}/upload_short/complete", f"{UPLOADS}/x/cancel"):
        answer = client.post(path, headers=acme, json={"part_ids": ["p"]}, files=None)
        assert answer.status_code in (400, 415), path
    assert client.post(f"{UPLOADS}/x/cancel", headers=acme).json()["error"]["param"] == "upload_id"
    for path in (UPLOADS, f"{UPLOADS}/{MISSING}/parts", f"{UPLOADS}/{MISSING}/complete", f"{UPLOADS}/{MISSING}/cancel"):
        assert client.post(path).status_code == 401, path


def test_the_openai_sdk_uploads_in_parts(client: TestClient, acme: dict[str, str], tmp_path: Path) -> None:
    sdk = OpenAI(base_url="http://testserver/v1", api_key=acme["authorization"][7:], http_client=client, max_retries=0)
    upload = sdk.uploads.create(
        bytes=len(CONTENT), filename="big.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    assert upload.status == "pending" and upload.bytes == len(CONTENT)
    pieces = thirds(CONTENT)
    parts = [sdk.uploads.parts.create(upload.id, data=piece) for piece in pieces]
    assert all(item.upload_id == upload.id and item.object == "upload.part" for item in parts)
    with pytest.raises(BadRequestError, match="bytes"):
        sdk.uploads.complete(upload.id, part_ids=[parts[0].id])
    done = sdk.uploads.complete(upload.id, part_ids=[item.id for item in parts], md5=hashlib.md5(CONTENT).hexdigest())
    assert done.status == "completed" and done.file is not None and done.file.bytes == len(CONTENT)
    assert sdk.files.content(done.file.id).read() == CONTENT

    cancelled = sdk.uploads.cancel(
        sdk.uploads.create(bytes=3, filename="a", mime_type="text/plain", purpose="batch").id
    )
    assert cancelled.status == "cancelled"
    with pytest.raises(NotFoundError):
        sdk.uploads.cancel(MISSING)

    # The SDK's own helper: create, parts of part_size, complete.
    path = tmp_path / "requests.jsonl"
    path.write_bytes(CONTENT)
    chunked = sdk.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="batch", part_size=50_000
    )
    assert chunked.status == "completed" and chunked.file is not None
    assert sdk.files.content(chunked.file.id).read() == CONTENT
