"""The Files API over HTTP: the real app (build_app) with metering on SQLite and real keys, files kept locally.

GIVEN keys of two tenants (and an admin key of a third), WHEN they upload, list, read and delete files,
THEN each sees its own files only, another tenant's file is the same 404 as an unknown one, bad input is
refused by name, and a refused upload leaves nothing on disk.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Plan, Settings

PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000)}
FILES = "/v1/files"
LINES = b'{"custom_id": "1", "method": "POST", "url": "/v1/embeddings", "body": {"input": "a cat"}}\n'
MISSING_ID = "file-" + "A" * 24


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


def auth(settings: Settings, tenant: str, scopes: tuple[str, ...] = ("invoke",)) -> dict[str, str]:
    issued = create_key(
        open_key_store(settings), tenant=tenant, scopes=scopes, plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    return {"authorization": f"Bearer {issued.clear_text}"}


@pytest.fixture
def acme(settings: Settings) -> dict[str, str]:
    return auth(settings, "acme")


@pytest.fixture
def globex(settings: Settings) -> dict[str, str]:
    return auth(settings, "globex")


def upload(
    client: TestClient, headers: dict[str, str], content: bytes = LINES, name: str = "in.jsonl", purpose: str = "batch"
) -> Any:
    return client.post(FILES, headers=headers, files={"file": (name, content)}, data={"purpose": purpose})


def stored(settings: Settings) -> list[Path]:
    root = settings.state_dir / "files"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def error(answer: Any) -> dict[str, Any]:
    detail: dict[str, Any] = answer.json()["error"]
    return detail


def test_upload_list_retrieve_read_and_delete(client: TestClient, acme: dict[str, str], settings: Settings) -> None:
    made = upload(client, acme)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body == {
        "id": body["id"],
        "object": "file",
        "bytes": len(LINES),
        "created_at": body["created_at"],
        "filename": "in.jsonl",
        "purpose": "batch",
        "status": "processed",
    }
    file_id = body["id"]
    assert file_id.startswith("file-") and len(file_id) == 29

    listed = client.get(FILES, headers=acme).json()
    assert listed["object"] == "list" and listed["data"] == [body] and listed["has_more"] is False
    assert listed["first_id"] == listed["last_id"] == file_id
    assert client.get(f"{FILES}/{file_id}", headers=acme).json() == body
    content = client.get(f"{FILES}/{file_id}/content", headers=acme)
    assert content.status_code == 200 and content.content == LINES
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.headers["content-length"] == str(len(LINES))

    gone = client.delete(f"{FILES}/{file_id}", headers=acme)
    assert gone.json() == {"id": file_id, "object": "file", "deleted": True}
    for method, path in (
        ("GET", f"{FILES}/{file_id}"),
        ("GET", f"{FILES}/{file_id}/content"),
        ("DELETE", f"{FILES}/{file_id}"),
    ):
        again = client.request(method, path, headers=acme)
        assert again.status_code == 404 and error(again)["param"] == "file_id", path
    assert client.get(FILES, headers=acme).json()["data"] == []
    assert stored(settings) == []


def test_files_are_kept_owner_only_with_their_sha256(
    client: TestClient, acme: dict[str, str], settings: Settings
) -> None:
    file_id = upload(client, acme).json()["id"]
    folder = settings.state_dir / "files" / "acme" / file_id
    assert (folder / "content").read_bytes() == LINES
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["sha256"] == hashlib.sha256(LINES).hexdigest() and meta["tenant"] == "acme"
    for path in (settings.state_dir / "files", folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_pages_by_after_and_limit_newest_first(client: TestClient, acme: dict[str, str]) -> None:
    ids = [upload(client, acme, f"{n}\n".encode(), name=f"{n}.jsonl").json()["id"] for n in range(5)]
    everything = client.get(FILES, headers=acme).json()["data"]
    newest_first = [item["id"] for item in everything]
    assert sorted(newest_first) == sorted(ids)
    assert [item["created_at"] for item in everything] == sorted(
        (item["created_at"] for item in everything), reverse=True
    )

    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = client.get(FILES, headers=acme, params=params).json()
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == newest_first
    ascending = client.get(FILES, headers=acme, params={"order": "asc"}).json()["data"]
    assert [item["id"] for item in ascending] == newest_first[::-1]
    assert client.get(FILES, headers=acme, params={"purpose": "batch"}).json()["data"] == everything
    assert client.get(FILES, headers=acme, params={"purpose": "fine-tune"}).json()["data"] == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": "file-1"}, "after"),
        ({"after": MISSING_ID}, "after"),
    ],
)
def test_bad_list_parameters_are_named(
    client: TestClient, acme: dict[str, str], params: dict[str, str], param: str
) -> None:
    answer = client.get(FILES, headers=acme, params=params)
    assert answer.status_code == 400 and error(answer)["param"] == param


def test_another_tenants_file_is_not_there_for_any_route(
    client: TestClient, acme: dict[str, str], globex: dict[str, str], settings: Settings
) -> None:
    file_id = upload(client, acme).json()["id"]
    admin = auth(settings, "ops", ("invoke", "admin"))
    for other in (globex, admin):
        assert client.get(FILES, headers=other).json()["data"] == []
        for method, path in (
            ("GET", f"{FILES}/{file_id}"),
            ("GET", f"{FILES}/{file_id}/content"),
            ("DELETE", f"{FILES}/{file_id}"),
        ):
            theirs = client.request(method, path, headers=other)
            unknown = client.request(method, path.replace(file_id, MISSING_ID), headers=other)
            assert theirs.status_code == unknown.status_code == 404, path
            assert error(theirs)["message"] == error(unknown)["message"].replace(MISSING_ID, file_id)
        listed = client.get(FILES, headers=other, params={"after": file_id})
        assert listed.status_code == 400
    assert client.get(f"{FILES}/{file_id}/content", headers=acme).content == LINES


def test_every_route_needs_a_key(client: TestClient) -> None:
    for method, path in (
        ("POST", FILES),
        ("GET", FILES),
        ("GET", f"{FILES}/{MISSING_ID}"),
        ("GET", f"{FILES}/{MISSING_ID}/content"),
        ("DELETE", f"{FILES}/{MISSING_ID}"),
    ):
        assert client.request(method, path).status_code == 401, path


def test_bad_uploads_are_named_and_leave_nothing(client: TestClient, acme: dict[str, str], settings: Settings) -> None:
    no_file = client.post(FILES, headers=acme, data={"purpose": "batch"}, files={"other": ("x", b"1")})
    assert no_file.status_code == 400 and error(no_file)["param"] == "file"
    no_purpose = client.post(FILES, headers=acme, files={"file": ("in.jsonl", LINES)})
    assert no_purpose.status_code == 400 and error(no_purpose)["param"] == "purpose"
    output = upload(client, acme, purpose="batch_output")
    assert output.status_code == 400 and error(output)["param"] == "purpose"
    assert "batch" in error(output)["message"] and "batch_output" in error(output)["message"]
    empty = upload(client, acme, b"")
    assert empty.status_code == 400 and error(empty)["param"] == "file" and "empty" in error(empty)["message"]
    as_json = client.post(FILES, headers=acme, json={"file": "x", "purpose": "batch"})
    assert as_json.status_code == 415 and "multipart/form-data" in error(as_json)["message"]
    assert stored(settings) == []


def test_a_file_over_the_limit_is_a_413_and_nothing_is_written(
    client: TestClient, acme: dict[str, str], settings: Settings
) -> None:
    limit = settings.max_file_bytes
    # Over the file limit but within the form's framing: refused while the store reads it.
    over = upload(client, acme, b"x" * (limit + 1))
    assert over.status_code == 413 and str(limit) in error(over)["message"] and error(over)["param"] == "file"
    # Over the whole body limit of the route: refused while the body arrives.
    far_over = upload(client, acme, b"x" * (limit + 128 * 1024))
    assert far_over.status_code == 413 and error(far_over)["param"] == "body"
    assert stored(settings) == []
    assert [p for p in (settings.state_dir / "files").rglob("*") if p.name.startswith(".")] == []
    # The file limit, not max_body_bytes (64 KiB), bounds an upload; other routes keep max_body_bytes.
    assert upload(client, acme, b"x" * limit).status_code == 200
    big = client.post("/v1/embeddings", headers=acme, content=b"{" + b" " * (100 * 1024) + b"}")
    assert big.status_code == 413


@pytest.mark.parametrize("bad", ["file-short", "file-" + "A" * 23 + "!", "notafile"])
def test_malformed_ids_are_named_on_every_route(client: TestClient, acme: dict[str, str], bad: str) -> None:
    for method, path in (("GET", f"{FILES}/{bad}"), ("GET", f"{FILES}/{bad}/content"), ("DELETE", f"{FILES}/{bad}")):
        answer = client.request(method, path, headers=acme)
        assert answer.status_code == 400 and error(answer)["param"] == "file_id", path
        assert "file id" in error(answer)["message"]


def test_the_document_lists_each_routes_statuses(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths[FILES]["post"]["responses"]) >= {"200", "400", "401", "403", "408", "413", "415", "429", "503"}
    assert set(paths[f"{FILES}/{{file_id}}"]["get"]["responses"]) >= {"200", "400", "404", "401"}
    assert set(paths[f"{FILES}/{{file_id}}"]["delete"]["responses"]) >= {"200", "400", "404"}
    content = paths[f"{FILES}/{{file_id}}/content"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["application/octet-stream"]
    assert "422" not in json.dumps(paths[FILES])
