"""Sharing a file read-only with another tenant, over HTTP: the real app, files kept locally.

GIVEN an owner (acme), a grantee (globex) and a stranger (initech), WHEN the owner shares, lists and revokes
grants and deletes the file, THEN the grantee reads the file and nothing more, the stranger sees an unknown
id everywhere, a revocation holds from the next request, and a deleted file leaves no grant behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass.files.local import LocalFileStore
from aimass.http.app import build_app
from aimass.settings import Settings
from tests.functional.test_files_api import FILES, LINES, MISSING_ID, auth, error, upload

Headers = dict[str, str]


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> Settings:
    from tests.functional.test_files_api import PLANS

    return Settings(
        model_store=tiny_store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS, alias_check_s=0
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tenants(settings: Settings) -> tuple[Headers, Headers, Headers]:
    return auth(settings, "acme"), auth(settings, "globex"), auth(settings, "initech")


def share(client: TestClient, headers: Headers, file_id: str, tenant: str) -> Any:
    return client.post(f"{FILES}/{file_id}/shares", headers=headers, json={"tenant": tenant})


def routes(file_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route that names a file, with a body where it takes one."""
    return [
        ("GET", f"{FILES}/{file_id}", None),
        ("GET", f"{FILES}/{file_id}/content", None),
        ("DELETE", f"{FILES}/{file_id}", None),
        ("POST", f"{FILES}/{file_id}/shares", {"tenant": "initech"}),
        ("GET", f"{FILES}/{file_id}/shares", None),
        ("DELETE", f"{FILES}/{file_id}/shares/globex", None),
    ]


def test_owner_grantee_and_stranger_on_every_route(client: TestClient, tenants: tuple[Headers, ...]) -> None:
    acme, globex, initech = tenants
    file = upload(client, acme).json()
    file_id = file["id"]
    granted = share(client, acme, file_id, "globex")
    assert granted.status_code == 200, granted.text
    grant = granted.json()
    assert grant == {"object": "file.share", "file_id": file_id, "tenant": "globex", "created_at": grant["created_at"]}
    assert share(client, acme, file_id, "globex").json() == grant  # again: the same grant
    assert client.get(f"{FILES}/{file_id}/shares", headers=acme).json() == {"object": "list", "data": [grant]}

    # The grantee reads the file, and nothing more: the rest answers as to a stranger.
    assert client.get(f"{FILES}/{file_id}", headers=globex).json() == file
    assert client.get(f"{FILES}/{file_id}/content", headers=globex).content == LINES
    assert client.get(FILES, headers=globex).json()["data"] == []
    for method, path, body in routes(file_id)[2:]:
        theirs = client.request(method, path, headers=globex, json=body)
        unknown = client.request(method, path.replace(file_id, MISSING_ID), headers=globex, json=body)
        assert theirs.status_code == unknown.status_code == 404, path
        assert error(theirs)["message"] == error(unknown)["message"].replace(MISSING_ID, file_id), path
    # The stranger sees an unknown id on every route.
    for method, path, body in routes(file_id):
        theirs = client.request(method, path, headers=initech, json=body)
        unknown = client.request(method, path.replace(file_id, MISSING_ID), headers=initech, json=body)
        assert theirs.status_code == unknown.status_code == 404, path
        assert error(theirs)["message"] == error(unknown)["message"].replace(MISSING_ID, file_id), path
    # None of that changed anything.
    assert client.get(f"{FILES}/{file_id}/shares", headers=acme).json()["data"] == [grant]
    assert client.get(f"{FILES}/{file_id}/content", headers=acme).content == LINES


def test_a_revocation_holds_at_once(client: TestClient, tenants: tuple[Headers, ...]) -> None:
    acme, globex, initech = tenants
    file_id = upload(client, acme).json()["id"]
    for tenant in ("initech", "globex"):
        assert share(client, acme, file_id, tenant).status_code == 200
    listed = client.get(f"{FILES}/{file_id}/shares", headers=acme).json()["data"]
    assert sorted(item["tenant"] for item in listed) == ["globex", "initech"]
    revoked = client.delete(f"{FILES}/{file_id}/shares/globex", headers=acme)
    assert revoked.json() == {"object": "file.share", "file_id": file_id, "tenant": "globex", "deleted": True}
    assert client.get(f"{FILES}/{file_id}", headers=globex).status_code == 404
    assert client.get(f"{FILES}/{file_id}/content", headers=globex).status_code == 404
    assert client.get(f"{FILES}/{file_id}/content", headers=initech).content == LINES
    again = client.delete(f"{FILES}/{file_id}/shares/globex", headers=acme)
    assert again.status_code == 404 and error(again)["param"] == "tenant"
    assert [item["tenant"] for item in client.get(f"{FILES}/{file_id}/shares", headers=acme).json()["data"]] == [
        "initech"
    ]


def test_deleting_a_file_removes_its_grants(
    client: TestClient, tenants: tuple[Headers, ...], settings: Settings
) -> None:
    acme, globex, _ = tenants
    file_id = upload(client, acme).json()["id"]
    share(client, acme, file_id, "globex")
    assert client.delete(f"{FILES}/{file_id}", headers=acme).status_code == 200
    assert client.get(f"{FILES}/{file_id}", headers=globex).status_code == 404
    root = settings.state_dir / "files"
    assert [path for path in root.rglob("*") if path.is_file()] == []
    assert LocalFileStore(root).readable("globex", file_id) is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tenant": "acme"}, "tenant"),
        ({"tenant": "Not A Tenant"}, "tenant"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": 7}, "tenant"),
        ({}, "tenant"),
        ({"tenant": "globex", "write": True}, "write"),
    ],
)
def test_bad_shares_are_named(
    client: TestClient, tenants: tuple[Headers, ...], body: dict[str, Any], param: str
) -> None:
    acme = tenants[0]
    file_id = upload(client, acme).json()["id"]
    answer = client.post(f"{FILES}/{file_id}/shares", headers=acme, json=body)
    assert answer.status_code == 400 and error(answer)["param"] == param, answer.text
    assert client.get(f"{FILES}/{file_id}/shares", headers=acme).json()["data"] == []
    as_text = client.post(f"{FILES}/{file_id}/shares", headers={**acme, "content-type": "text/plain"}, content=b"x")
    assert as_text.status_code == 415


def test_grants_are_kept_under_the_file_and_the_grantee(
    client: TestClient, tenants: tuple[Headers, ...], settings: Settings
) -> None:
    acme = tenants[0]
    file_id = upload(client, acme).json()["id"]
    share(client, acme, file_id, "globex")
    root = settings.state_dir / "files"
    forward = json.loads((root / "acme" / file_id / "shares" / "globex").read_text())
    reverse = json.loads((root / ".shared" / "globex" / file_id).read_text())
    assert forward == reverse and reverse["owner"] == "acme" and reverse["tenant"] == "globex"
    record = LocalFileStore(root).readable("globex", file_id)
    assert record is not None and record.tenant == "acme"
    assert LocalFileStore(root).readable("initech", file_id) is None
    # A listing of the owner's files is unchanged by the grant folders.
    assert [item["id"] for item in client.get(FILES, headers=acme).json()["data"]] == [file_id]
