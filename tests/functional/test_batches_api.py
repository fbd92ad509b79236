"""The Batch API over HTTP: the real app (build_app) with metering on SQLite, real keys, files kept locally and
the local worker threads running the shards.

GIVEN tenants with keys and a JSONL file of requests, WHEN they run batches through the OpenAI SDK and plain
HTTP, THEN every line is answered once, in input order, exactly as the synchronous route answers it (its
errors included), each tenant sees only its own batches, a cancel keeps what ran, and the work is billed
once per shard at the batch price.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from aimass.batches.backends import open_batches
from aimass.batches.local import SQLiteBatchStore
from aimass.batches.pool import WorkerPool
from aimass.batches.runner import ShardRunner
from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Plan, Settings
from tests.tiny_models import TINY_TEXT, reference_embedding

PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=1_000_000, batch_price_factor=0.5)}
PRICES = {"prompt_tokens": 1e-6, "requests": 0.0}
FINAL = ("completed", "failed", "expired", "cancelled")


def make_settings(tiny_store: Path, tmp_path: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "model_store": tiny_store,
        "metering": "sqlite",
        "state_dir": tmp_path / "state",
        "plans": PLANS,
        "prices": PRICES,
        "alias_check_s": 0,
        "max_body_bytes": 64 * 1024,
        "max_batch_items": 8,
        "max_file_bytes": 1024 * 1024,
        "batch_shard_lines": 4,
        "batch_chunk_lines": 3,
        "batch_workers": 1,
    }
    return Settings(**{**base, **changes})


@pytest.fixture
def settings(tiny_store: Path, tmp_path: Path) -> Settings:
    return make_settings(tiny_store, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def key(settings: Settings, tenant: str) -> str:
    issued = create_key(
        open_key_store(settings), tenant=tenant, scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    )
    return issued.clear_text


def auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def line(custom_id: str, body: dict[str, Any], url: str = "/v1/embeddings") -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def embed_line(custom_id: str, text: str | list[str]) -> str:
    return line(custom_id, {"model": TINY_TEXT, "input": text})


def upload(client: TestClient, secret: str, lines: list[str]) -> str:
    content = ("\n".join(lines) + "\n").encode()
    answer = client.post(
        "/v1/files", headers=auth(secret), files={"file": ("in.jsonl", content)}, data={"purpose": "batch"}
    )
    assert answer.status_code == 200, answer.text
    file_id: str = answer.json()["id"]
    return file_id


def create(client: TestClient, secret: str, file_id: str, endpoint: str = "/v1/embeddings") -> Any:
    return client.post(
        "/v1/batches",
        headers=auth(secret),
        json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"},
    )


def wait(client: TestClient, secret: str, batch_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(f"/v1/batches/{batch_id}", headers=auth(secret)).json()
        if batch["status"] in FINAL:
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end in {timeout_s} s")


def content(client: TestClient, secret: str, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    answer = client.get(f"/v1/files/{file_id}/content", headers=auth(secret))
    assert answer.status_code == 200
    return [json.loads(row) for row in answer.text.splitlines()]


def test_the_openai_sdk_runs_a_batch_whose_answers_equal_the_synchronous_ones(
    client: TestClient, settings: Settings
) -> None:
    secret = key(settings, "acme")
    sdk = OpenAI(base_url="http://testserver/v1", api_key=secret, http_client=client)
    texts = [f"sentence number {n} about cats" for n in range(23)]
    lines = [embed_line(f"req-{n}", text) for n, text in enumerate(texts)]
    source = sdk.files.create(file=("requests.jsonl", ("\n".join(lines)).encode()), purpose="batch")

    batch = sdk.batches.create(
        input_file_id=source.id, endpoint="/v1/embeddings", completion_window="24h", metadata={"job": "nightly"}
    )
    assert batch.status == "in_progress" and batch.request_counts is not None
    assert batch.request_counts.total == 23 and batch.metadata == {"job": "nightly"}
    deadline = time.monotonic() + 60
    while batch.status not in FINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.error_file_id is None
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (23, 0)
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.output_file_id is not None

    rows = [json.loads(row) for row in sdk.files.content(batch.output_file_id).text.splitlines()]
    assert [row["custom_id"] for row in rows] == [f"req-{n}" for n in range(23)]  # once each, in input order
    sync = client.post("/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": texts[5]}).json()
    for row, text in zip(rows, texts, strict=True):
        assert row["response"]["status_code"] == 200 and row["error"] is None
        vector = np.array(row["response"]["body"]["data"][0]["embedding"])
        expected = reference_embedding(text)
        assert float(vector @ expected / np.linalg.norm(vector) / np.linalg.norm(expected)) >= 0.9999
    assert rows[5]["response"]["body"]["data"] == sync["data"]
    assert rows[5]["response"]["body"]["usage"] == sync["usage"]
    listed = sdk.batches.list()
    assert [item.id for item in listed.data] == [batch.id]
    output = sdk.files.retrieve(batch.output_file_id)
    assert output.purpose == "batch_output" and output.filename == f"{batch.id}_output.jsonl"


def test_a_bad_line_goes_to_the_error_file_with_the_synchronous_error_and_the_rest_proceeds(
    client: TestClient, settings: Settings
) -> None:
    secret = key(settings, "acme")
    bad_bodies: dict[str, dict[str, Any]] = {
        "unknown-model": {"model": "no-such-model", "input": "a cat"},
        "empty-input": {"model": TINY_TEXT, "input": ""},
        "dimensions": {"model": TINY_TEXT, "input": "a cat", "dimensions": 3},
        "extra-field": {"model": TINY_TEXT, "input": "a cat", "colour": "red"},
    }
    lines = [embed_line("good-0", "a cat")]
    lines += [line(custom_id, body) for custom_id, body in bad_bodies.items()]
    lines += [
        "this is not json",
        json.dumps({"custom_id": "no-url", "method": "POST", "body": {}}),
        json.dumps({"custom_id": "get", "method": "GET", "url": "/v1/embeddings", "body": {}}),
        line("other-route", {"model": TINY_TEXT, "inputs": []}, url="/v2/models/tiny-text/infer"),
        # More strings than a synchronous request may hold: a batch line holds up to batch_max_items.
        embed_line("good-1", ["a dog"] * 9),
    ]
    batch = wait(client, secret, create(client, secret, upload(client, secret, lines)).json()["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 10, "completed": 2, "failed": 8}
    assert [row["custom_id"] for row in content(client, secret, batch["output_file_id"])] == ["good-0", "good-1"]
    errors = {
        row["custom_id"] or f"line {row['error']['line']}": row
        for row in content(client, secret, batch["error_file_id"])
    }
    assert sorted(errors) == sorted([*bad_bodies, "line 6", "no-url", "get", "other-route"])
    for custom_id, body in bad_bodies.items():
        sync = client.post("/v1/embeddings", headers=auth(secret), json=body)
        response = errors[custom_id]["response"]
        assert response["status_code"] == sync.status_code and 400 <= sync.status_code < 500
        assert response["body"]["error"] == sync.json()["error"]  # the same error, word for word
    assert errors["line 6"]["error"]["code"] == "invalid_json_line"
    assert errors["get"]["error"]["code"] == "invalid_method"
    assert errors["other-route"]["error"]["code"] == "invalid_url"


def test_a_file_that_cannot_be_run_whole_fails_the_batch_and_a_missing_one_is_refused(
    client: TestClient, settings: Settings
) -> None:
    secret = key(settings, "acme")
    twice = [embed_line("same", "a cat"), embed_line("other", "a dog"), embed_line("same", "a bird")]
    failed = create(client, secret, upload(client, secret, twice)).json()
    assert failed["status"] == "failed" and failed["failed_at"]
    assert failed["errors"]["data"][0]["code"] == "duplicate_custom_id"
    assert "line 3" in failed["errors"]["data"][0]["message"]

    missing = create(client, secret, "file-" + "A" * 24)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "input_file_id"
    wrong = {
        "endpoint": ("/v1/chat/completions", "endpoint"),
        "completion_window": ("48h", "completion_window"),
        "input_file_id": ("not-a-file", "input_file_id"),
    }
    good_file = upload(client, secret, [embed_line("a", "a cat")])
    for field, (value, param) in wrong.items():
        body = {"input_file_id": good_file, "endpoint": "/v1/embeddings", "completion_window": "24h", field: value}
        answer = client.post("/v1/batches", headers=auth(secret), json=body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
    listed = client.get("/v1/batches", headers=auth(secret)).json()["data"]
    assert [item["id"] for item in listed] == [failed["id"]]  # nothing was kept of the refused ones


def test_batches_and_their_files_are_invisible_to_other_tenants(client: TestClient, settings: Settings) -> None:
    acme, globex = key(settings, "acme"), key(settings, "globex")
    source = upload(client, acme, [embed_line("a", "a cat")])
    assert create(client, globex, source).status_code == 404  # another tenant's file is not there
    batch = wait(client, acme, create(client, acme, source).json()["id"])
    for method, path in (
        ("GET", f"/v1/batches/{batch['id']}"),
        ("POST", f"/v1/batches/{batch['id']}/cancel"),
        ("GET", f"/v1/files/{batch['output_file_id']}"),
        ("GET", f"/v1/files/{batch['output_file_id']}/content"),
    ):
        answer = client.request(method, path, headers=auth(globex))
        assert answer.status_code == 404, (method, path)
    assert client.get("/v1/batches", headers=auth(globex)).json()["data"] == []
    assert client.get("/v1/batches", headers=auth(acme)).json()["data"][0]["id"] == batch["id"]
    assert client.get("/v1/batches").status_code == 401


def test_cancel_stops_new_shards_and_keeps_finished_results(tiny_store: Path, tmp_path: Path) -> None:
    # No worker threads: the test runs the workers' steps itself, so it decides what runs before the cancel.
    settings = make_settings(tiny_store, tmp_path, batch_workers=0)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        lines = [embed_line(f"req-{n}", f"text {n}") for n in range(10)]  # shards of 4, 4, 2
        batch_id = create(client, secret, upload(client, secret, lines)).json()["id"]
        pool, runner = _pool(settings)
        assert pool.step(runner)  # shard 0 runs whole
        cancelled = client.post(f"/v1/batches/{batch_id}/cancel", headers=auth(secret)).json()
        assert cancelled["status"] == "cancelling" and cancelled["cancelling_at"]
        while pool.step(runner):
            pass
        batch = client.get(f"/v1/batches/{batch_id}", headers=auth(secret)).json()
        assert batch["status"] == "cancelled" and batch["cancelled_at"]
        assert batch["request_counts"] == {"total": 10, "completed": 4, "failed": 6}
        answered = [row["custom_id"] for row in content(client, secret, batch["output_file_id"])]
        assert answered == [f"req-{n}" for n in range(4)]
        not_run = content(client, secret, batch["error_file_id"])
        assert [row["custom_id"] for row in not_run] == [f"req-{n}" for n in range(4, 10)]
        assert {row["error"]["code"] for row in not_run} == {"batch_cancelled"}
        again = client.post(f"/v1/batches/{batch_id}/cancel", headers=auth(secret)).json()
        assert again["status"] == "cancelled"  # a cancel of an ended batch changes nothing


def test_each_shard_is_billed_once_at_the_batch_price(tiny_store: Path, tmp_path: Path) -> None:
    settings = make_settings(tiny_store, tmp_path, batch_workers=0)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        texts = [f"a sentence of some words {n}" for n in range(9)]
        batch_id = create(
            client, secret, upload(client, secret, [embed_line(f"r{n}", t) for n, t in enumerate(texts)])
        ).json()["id"]
        pool, runner = _pool(settings)
        store = runner.store
        batch = store.get("acme", batch_id)
        assert batch is not None
        runner.run(batch, 0)
        runner.run(batch, 0)  # a shard run again (a retried worker) is neither counted nor billed again
        while pool.step(runner):
            pass
        final = wait(client, secret, batch_id)
        assert final["request_counts"] == {"total": 9, "completed": 9, "failed": 0}
        sync_tokens = sum(
            client.post("/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": t}).json()["usage"][
                "prompt_tokens"
            ]
            for t in texts
        )
    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    records = [
        r
        for r in usage.query(now - timedelta(hours=1), now + timedelta(hours=1), "acme")
        if r.route == "BATCH /v1/embeddings"
    ]
    assert len(records) == 3, records  # one per shard (4, 4 and 1 lines), one unit
    assert sum(r.units for r in records) == sync_tokens
    assert all(r.billed and r.unit == "prompt_tokens" and r.unit_price == pytest.approx(0.5e-6) for r in records)
    assert {r.model for r in records} == {TINY_TEXT}


def _pool(settings: Settings) -> tuple[WorkerPool, ShardRunner]:
    from aimass.batches.backends import runner_factory
    from aimass.files.factory import open_files
    from aimass.http.app import batch_line_routes
    from aimass.serving.boot import load_models

    batches = open_batches(settings)
    assert isinstance(batches.local, SQLiteBatchStore)
    make = runner_factory(settings, batch_line_routes(load_models(settings), settings), batches, open_files(settings))
    return WorkerPool(batches.local, make, threads=0), make()


def test_a_batch_may_read_a_file_shared_with_its_tenant_until_the_grant_is_revoked(
    client: TestClient, settings: Settings
) -> None:
    acme, globex, initech = key(settings, "acme"), key(settings, "globex"), key(settings, "initech")
    source = upload(client, acme, [embed_line("a", "a cat"), embed_line("b", "a dog")])
    assert create(client, globex, source).status_code == 404  # not shared yet
    shared = client.post(f"/v1/files/{source}/shares", headers=auth(acme), json={"tenant": "globex"})
    assert shared.status_code == 200, shared.text

    batch = wait(client, globex, create(client, globex, source).json()["id"])
    assert batch["status"] == "completed" and batch["input_file_id"] == source
    # The results are the grantee's own: the owner of the input sees neither the batch nor its output.
    assert len(content(client, globex, batch["output_file_id"])) == 2
    assert client.get(f"/v1/batches/{batch['id']}", headers=auth(acme)).status_code == 404
    assert client.get(f"/v1/files/{batch['output_file_id']}", headers=auth(acme)).status_code == 404
    assert create(client, initech, source).status_code == 404  # a third tenant holds no grant

    client.delete(f"/v1/files/{source}/shares/globex", headers=auth(acme))
    assert create(client, globex, source).status_code == 404  # revoked: at once


def test_a_batch_past_its_window_expires_with_what_ran(tiny_store: Path, tmp_path: Path) -> None:
    settings = make_settings(tiny_store, tmp_path, batch_workers=0)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        lines = [embed_line(f"req-{n}", f"text {n}") for n in range(6)]  # shards of 4 and 2
        batch_id = create(client, secret, upload(client, secret, lines)).json()["id"]
        pool, runner = _pool(settings)
        assert pool.step(runner)  # shard 0 runs
        later = time.time() + 25 * 3600  # past the 24 h window
        runner.clock = pool.clock = lambda: later
        while pool.step(runner):
            pass
        batch = client.get(f"/v1/batches/{batch_id}", headers=auth(secret)).json()
        assert batch["status"] == "expired" and batch["expired_at"]
        assert batch["request_counts"] == {"total": 6, "completed": 4, "failed": 2}
        not_run = content(client, secret, batch["error_file_id"])
        assert [(row["custom_id"], row["error"]["code"]) for row in not_run] == [
            ("req-4", "batch_expired"),
            ("req-5", "batch_expired"),
        ]


def test_usage_shows_batch_work_apart_from_requests(client: TestClient, settings: Settings) -> None:
    secret = key(settings, "acme")
    client.post("/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": "a cat"})
    wait(client, secret, create(client, secret, upload(client, secret, [embed_line("a", "a dog")])).json()["id"])
    now = int(time.time())
    report = client.get(
        "/v1/usage",
        headers=auth(secret),
        params={"start_time": now - 3600, "end_time": now + 3600, "bucket_width": "1d", "group_by": "route"},
    )
    assert report.status_code == 200, report.text
    routes = {result["route"] for bucket in report.json()["data"] for result in bucket["results"] if result["units"]}
    assert {"POST /v1/embeddings", "BATCH /v1/embeddings"} <= routes


def test_a_gzip_input_is_read_and_a_bomb_or_an_archive_is_refused_with_nothing_kept(
    client: TestClient, settings: Settings
) -> None:
    import gzip
    import io
    import zipfile

    secret = key(settings, "acme")

    def upload_bytes(data: bytes, name: str) -> str:
        answer = client.post("/v1/files", headers=auth(secret), files={"file": (name, data)}, data={"purpose": "batch"})
        assert answer.status_code == 200, answer.text
        file_id: str = answer.json()["id"]
        return file_id

    lines = "\n".join(embed_line(f"req-{n}", f"text {n}") for n in range(6)).encode()
    batch = wait(client, secret, create(client, secret, upload_bytes(gzip.compress(lines), "in.jsonl.gz")).json()["id"])
    assert batch["status"] == "completed" and batch["request_counts"]["completed"] == 6
    assert [row["custom_id"] for row in content(client, secret, batch["output_file_id"])] == [
        f"req-{n}" for n in range(6)
    ]

    files_before = {item["id"] for item in client.get("/v1/files", headers=auth(secret)).json()["data"]}
    bomb = upload_bytes(gzip.compress(b"\n" * (settings.max_file_bytes + 1)), "bomb.jsonl.gz")
    refused = create(client, secret, bomb)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["param"] == "input_file_id" and "decompresses to more than" in refused.text
    cut = upload_bytes(gzip.compress(lines)[:-12], "cut.jsonl.gz")
    assert create(client, secret, cut).status_code == 400

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../etc/requests.jsonl", lines)
    zipped_id = upload_bytes(archive.getvalue(), "in.zip")
    answer = create(client, secret, zipped_id)
    assert answer.status_code == 400 and "zip or tar archive" in answer.json()["error"]["message"]

    # Nothing was written for the refused ones: no decompressed copy, no batch.
    files_after = {item["id"] for item in client.get("/v1/files", headers=auth(secret)).json()["data"]}
    assert files_after - files_before == {bomb, cut, zipped_id}
    assert [item["id"] for item in client.get("/v1/batches", headers=auth(secret)).json()["data"]] == [batch["id"]]


def test_audio_and_image_lines_run_through_their_routes(tmp_path: Path) -> None:
    import base64

    from tests.tiny_speech import TINY_SPEECH, build_tiny_speech, encoded, utterance
    from tests.tiny_vision import TINY_VISION, build_tiny_vision, image_bytes

    store = tmp_path / "store"
    build_tiny_speech(store, max_seconds=5.0)
    build_tiny_vision(store)
    settings = make_settings(store, tmp_path, max_body_bytes=2 * 1024 * 1024)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        audio = base64.b64encode(encoded(utterance(["down", "up"]), "FLAC")).decode()
        speech = [
            line("words", {"model": TINY_SPEECH, "file": audio, "response_format": "json"}, "/v1/audio/transcriptions"),
            line("text", {"model": TINY_SPEECH, "file": audio, "response_format": "text"}, "/v1/audio/transcriptions"),
            line("not-base64", {"model": TINY_SPEECH, "file": "%%%"}, "/v1/audio/transcriptions"),
            line(
                "corrupt",
                {"model": TINY_SPEECH, "file": base64.b64encode(b"OggS" + bytes(64)).decode()},
                "/v1/audio/transcriptions",
            ),
        ]
        batch = wait(
            client,
            secret,
            create(client, secret, upload(client, secret, speech), "/v1/audio/transcriptions").json()["id"],
        )
        assert batch["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
        answered = {
            row["custom_id"]: row["response"]["body"] for row in content(client, secret, batch["output_file_id"])
        }
        assert answered["words"]["text"] == "down up" and answered["text"] == "down up\n"  # a text answer, as JSON
        errors = {row["custom_id"]: row["response"] for row in content(client, secret, batch["error_file_id"])}
        assert (
            errors["not-base64"]["status_code"] == 400 and errors["not-base64"]["body"]["error"]["param"] == "body.file"
        )
        sync = client.post(
            "/v1/audio/transcriptions",
            headers=auth(secret),
            files={"file": ("f", b"OggS" + bytes(64))},
            data={"model": TINY_SPEECH},
        )
        assert errors["corrupt"]["body"]["error"] == sync.json()["error"]

        red, blue = (base64.b64encode(image_bytes(c)).decode() for c in ((255, 0, 0), (0, 0, 255)))
        images = [
            line(f"img-{n}", {"model": TINY_VISION, "images": [red, blue][: n + 1], "top_k": 1}, "/v1/vision/classify")
            for n in range(2)
        ]
        batch = wait(
            client, secret, create(client, secret, upload(client, secret, images), "/v1/vision/classify").json()["id"]
        )
        assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
        rows = content(client, secret, batch["output_file_id"])
        direct = client.post(
            "/v1/vision/classify", headers=auth(secret), json={"model": TINY_VISION, "images": [red, blue], "top_k": 1}
        ).json()
        assert rows[1]["response"]["body"]["outputs"] == direct["outputs"]


def test_a_tenant_whose_quota_is_used_up_makes_no_batch(tiny_store: Path, tmp_path: Path) -> None:
    # A plan of 5 units a month: the first request's five tokens use it up.
    small = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=5)}
    settings = make_settings(tiny_store, tmp_path, plans=small)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = create_key(
            open_key_store(settings),
            tenant="acme",
            scopes=("invoke",),
            plan="default",
            plans=small,
            now=datetime.now(UTC),
        ).clear_text
        source = upload(client, secret, [embed_line("a", "a cat")])
        spent = client.post(
            "/v1/embeddings", headers=auth(secret), json={"model": TINY_TEXT, "input": "a cat sat on a"}
        )
        assert spent.status_code == 200, spent.text
        assert spent.json()["usage"]["prompt_tokens"] == 5
        refused = create(client, secret, source)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
        assert "resets at" in refused.json()["error"]["message"] and refused.headers["retry-after"]
        assert client.get("/v1/batches", headers=auth(secret)).json()["data"] == []


def test_chat_lines_run_side_by_side_and_share_the_models_decode_steps(tmp_path: Path) -> None:
    from aimass.serving.boot import load_models
    from tests.tiny_llm import TINY_LLM, build_tiny_llm

    store = tmp_path / "store"
    build_tiny_llm(store, layout="prefix")
    settings = make_settings(store, tmp_path)
    registry = load_models(settings)
    runtime: Any = registry.get(TINY_LLM)
    real_step, rows = runtime.step, []

    def slow_step(ids: Any, *rest: Any) -> Any:  # slow enough for lines started together to overlap
        rows.append(len(ids))
        time.sleep(0.003)
        return real_step(ids, *rest)

    words = ["hello", "the cat", "a red car", "the blue sky", "sun", "moon", "tree", "the dog runs fast"]
    asks = [
        {"model": TINY_LLM, "messages": [{"role": "user", "content": w}], "max_tokens": 6, "temperature": 0}
        for w in words
    ]
    with TestClient(build_app(settings, registry=registry), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        direct = [client.post("/v1/chat/completions", headers=auth(secret), json=ask).json() for ask in asks]
        runtime.step = slow_step
        try:
            lines = [line(f"q{n}", ask, "/v1/chat/completions") for n, ask in enumerate(asks)]
            source = upload(client, secret, lines)
            batch = wait(client, secret, create(client, secret, source, "/v1/chat/completions").json()["id"])
        finally:
            del runtime.step
        assert batch["request_counts"] == {"total": len(asks), "completed": len(asks), "failed": 0}
        answered = {r["custom_id"]: r["response"]["body"] for r in content(client, secret, batch["output_file_id"])}
    for n, whole in enumerate(direct):
        assert answered[f"q{n}"]["choices"][0]["message"] == whole["choices"][0]["message"]
        assert answered[f"q{n}"]["usage"] == whole["usage"]
    assert max(rows) > 1, rows  # lines were in the same decode steps


def test_chat_lines_are_answered_as_the_chat_route_answers_them(tmp_path: Path) -> None:
    from tests.tiny_llm import TINY_LLM, build_tiny_llm

    store = tmp_path / "store"
    build_tiny_llm(store)
    settings = make_settings(store, tmp_path)
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        secret = key(settings, "acme")
        ask = {"model": TINY_LLM, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5, "temperature": 0}
        lines = [line("greedy", ask, "/v1/chat/completions"), line("bad", {**ask, "tools": []}, "/v1/chat/completions")]
        batch = wait(
            client, secret, create(client, secret, upload(client, secret, lines), "/v1/chat/completions").json()["id"]
        )
        assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
        answered = content(client, secret, batch["output_file_id"])[0]["response"]["body"]
        direct = client.post("/v1/chat/completions", headers=auth(secret), json=ask).json()
        assert answered["choices"][0]["message"] == direct["choices"][0]["message"]
        assert answered["usage"] == direct["usage"]
        refused = content(client, secret, batch["error_file_id"])[0]["response"]
        assert refused["status_code"] == 400 and refused["body"]["error"]["param"] == "tools"
