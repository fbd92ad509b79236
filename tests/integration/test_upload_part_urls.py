"""Part URLs of the Uploads API: on S3 a part's bytes go straight to storage, past the API's request limits.

GIVEN the app with its files in S3 (moto's server), WHEN a client asks for a URL per part, PUTs each part's bytes
there and completes the upload, THEN the file is whole and its parts count as parts sent through the API; a
size outside the part limits is refused by name; another tenant's upload has no URLs; WHEN the files are on
the local disk, THEN the answer says to send the parts through the API instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Plan, Settings
from tests.moto_server import CREDENTIALS, REGION, MotoServer

BUCKET = "aimass-files"
PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000)}
CONTENT = b"".join(
    b'{"custom_id": "%d", "method": "POST", "url": "/v1/embeddings", "body": {}}\n' % n for n in range(3000)
)


def settings_for(tiny_store: Path, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        model_store=tiny_store, metering="sqlite", state_dir=tmp_path / "state", plans=PLANS, alias_check_s=0, **changes
    )


def key(settings: Settings, tenant: str) -> dict[str, str]:
    issued = create_key(
        open_key_store(settings), tenant=tenant, scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    return {"authorization": f"Bearer {issued.clear_text}"}


@pytest.fixture
def s3_client(
    moto: MotoServer, tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Settings]]:
    moto.bucket(BUCKET)
    for name, value in {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    settings = settings_for(tiny_store, tmp_path, files_bucket=BUCKET, aws_endpoint_url=moto.endpoint)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


def start(client: TestClient, headers: dict[str, str], size: int) -> str:
    made = client.post(
        "/v1/uploads",
        headers=headers,
        json={"filename": "in.jsonl", "purpose": "batch", "bytes": size, "mime_type": "application/jsonl"},
    )
    assert made.status_code == 200, made.text
    upload_id: str = made.json()["id"]
    return upload_id


def test_parts_put_to_their_urls_make_the_file(s3_client: tuple[TestClient, Settings]) -> None:
    client, settings = s3_client
    acme = key(settings, "acme")
    upload_id = start(client, acme, len(CONTENT))
    halves = [CONTENT[: len(CONTENT) // 2], CONTENT[len(CONTENT) // 2 :]]
    part_ids = []
    for half in halves:
        answer = client.post(f"/v1/uploads/{upload_id}/parts/url", headers=acme, json={"bytes": len(half)})
        assert answer.status_code == 200, answer.text
        part = answer.json()
        assert part["object"] == "upload.part.url" and part["method"] == "PUT" and part["bytes"] == len(half)
        put = httpx.put(part["url"], content=half, headers={"content-length": str(len(half))})
        assert put.status_code == 200, put.text
        part_ids.append(part["id"])
    done = client.post(f"/v1/uploads/{upload_id}/complete", headers=acme, json={"part_ids": part_ids})
    assert done.status_code == 200, done.text
    file = done.json()["file"]
    assert file["bytes"] == len(CONTENT)
    content = client.get(f"/v1/files/{file['id']}/content", headers=acme).content
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(CONTENT).hexdigest()


def test_a_part_url_is_refused_outside_the_limits_and_to_other_tenants(s3_client: tuple[TestClient, Settings]) -> None:
    client, settings = s3_client
    acme, globex = key(settings, "acme"), key(settings, "globex")
    upload_id = start(client, acme, 1000)
    for size in (0, 1001, -5):
        answer = client.post(f"/v1/uploads/{upload_id}/parts/url", headers=acme, json={"bytes": size})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "bytes", answer.text
    strange = client.post(f"/v1/uploads/{upload_id}/parts/url", headers=globex, json={"bytes": 10})
    assert strange.status_code == 404
    assert client.post(f"/v1/uploads/{upload_id}/parts/url", headers=acme, json={"bytes": "10"}).status_code == 400


def test_the_local_store_says_to_send_parts_through_the_api(tiny_store: Path, tmp_path: Path) -> None:
    settings = settings_for(tiny_store, tmp_path)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        acme = key(settings, "acme")
        upload_id = start(client, acme, 1000)
        answer = client.post(f"/v1/uploads/{upload_id}/parts/url", headers=acme, json={"bytes": 100})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["param"] == "upload_id" and f"POST /v1/uploads/{upload_id}/parts" in error["message"]
