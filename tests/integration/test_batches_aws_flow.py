"""A batch on the AWS backends, end to end, against moto's server: the real app and the real worker.

GIVEN the front function's settings (files in S3, batches in DynamoDB, shards submitted to AWS Batch, metering in
DynamoDB), WHEN a tenant uploads a file and makes a batch over HTTP, THEN one array job is submitted with a child
per shard; WHEN each child runs as AWS Batch would run it (``python -m aimass.worker`` with the job's environment
and its array index), THEN the last one finalizes the batch: its output file in S3, one line per input, each
shard billed once in DynamoDB; and the EventBridge handler, told the job ended, finds it final. A cancelled batch
is finalized by that handler: what ran is kept, every other line is in the error file.

moto runs no container: the test runs each shard's worker itself, with the environment the job would give it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass import contract
from aimass.batches import events
from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.keys_dynamodb import keys_table_definition
from aimass.metering.stores.usage_dynamodb import counters_table_definition, usage_table_definition
from aimass.settings import Settings, get_settings
from tests.integration.test_batches_aws import TARGETS, batch_queue
from tests.moto_server import MotoServer
from tests.moto_server import start as start_moto
from tests.tiny_models import TINY_TEXT

BUCKET = "aimass-files"
TABLES = {"AIMASS_KEYS_TABLE": "k", "AIMASS_USAGE_TABLE": "u", "AIMASS_COUNTERS_TABLE": "c", "AIMASS_JOBS_TABLE": "j"}


@pytest.fixture(scope="module")
def serial_moto() -> Iterator[MotoServer]:
    yield from start_moto(serial=True)


@pytest.fixture
def environment(serial_moto: MotoServer, tiny_store: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The front function's environment, as the CDK app sets it, pointed at moto; set for this process too."""
    serial_moto.reset()
    dynamodb = serial_moto.client("dynamodb")
    for definition in (keys_table_definition("k"), usage_table_definition("u"), counters_table_definition("c")):
        dynamodb.create_table(**definition)
    dynamodb.create_table(**contract.JOBS_TABLE.create_table("j"))
    serial_moto.bucket(BUCKET)
    batch_queue(serial_moto)
    values = {
        **serial_moto.environment(),
        **TABLES,
        "AIMASS_MODEL_STORE": str(tiny_store),
        "AIMASS_METERING": "dynamodb",
        "AIMASS_AWS_ENDPOINT_URL": serial_moto.endpoint,
        "AIMASS_FILES_BUCKET": BUCKET,
        "AIMASS_BATCH_TARGETS": json.dumps({d: t.model_dump() for d, t in TARGETS.items()}),
        "AIMASS_BATCH_SHARD_LINES": "3",
        "AIMASS_ALIAS_CHECK_S": "0",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    monkeypatch.setattr(events, "_runner", None)
    return values


def key(settings: Settings) -> dict[str, str]:
    issued = create_key(
        open_key_store(settings),
        tenant="acme",
        scopes=("invoke",),
        plan="default",
        plans=settings.plans,
        now=datetime.now(UTC),
    )
    return {"authorization": f"Bearer {issued.clear_text}"}


def lines(count: int) -> bytes:
    return "".join(
        json.dumps(
            {
                "custom_id": f"r{n}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": TINY_TEXT, "input": f"text {n}"},
            }
        )
        + "\n"
        for n in range(count)
    ).encode()


def submit(client: TestClient, headers: dict[str, str], count: int) -> dict[str, Any]:
    source = client.post(
        "/v1/files", headers=headers, files={"file": ("in.jsonl", lines(count))}, data={"purpose": "batch"}
    )
    assert source.status_code == 200, source.text
    made = client.post(
        "/v1/batches",
        headers=headers,
        json={"input_file_id": source.json()["id"], "endpoint": "/v1/embeddings", "completion_window": "24h"},
    )
    assert made.status_code == 200, made.text
    batch: dict[str, Any] = made.json()
    return batch


def run_shard(environment: dict[str, str], batch_id: str, index: int) -> None:
    """One array child, as AWS Batch runs it: the worker command, the job's variables, its array index."""
    child = {
        **os.environ,
        **environment,
        "AIMASS_DOMAINS": json.dumps(["text"]),
        contract.BATCH_ID_ENV: batch_id,
        contract.BATCH_TENANT_ENV: "acme",
        contract.ARRAY_INDEX_ENV: str(index),
    }
    done = subprocess.run([sys.executable, "-m", contract.WORKER_MODULE], env=child, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def job_event(batch_id: str, status: str) -> dict[str, Any]:
    """An EventBridge "Batch Job State Change" of a batch's array job (the parent: no array index)."""
    return {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {
            "jobName": f"aimass-{batch_id}",
            "jobId": "parent",
            "status": status,
            "arrayProperties": {"size": 2},
            "container": {"environment": [{"name": contract.BATCH_TENANT_ENV, "value": "acme"}]},
        },
    }


def test_shards_run_as_array_children_and_the_last_one_finalizes(
    environment: dict[str, str], serial_moto: MotoServer
) -> None:
    settings = get_settings()
    headers = key(settings)
    with TestClient(build_app(settings)) as client:
        batch = submit(client, headers, 5)  # shards of 3 and 2 lines
        job = serial_moto.client("batch").describe_jobs(jobs=[_job_id(serial_moto, batch["id"])])["jobs"][0]
        assert job["arrayProperties"]["size"] == 2 and job["jobQueue"].endswith("aimass-text")

        run_shard(environment, batch["id"], 1)
        assert client.get(f"/v1/batches/{batch['id']}", headers=headers).json()["status"] == "in_progress"
        run_shard(environment, batch["id"], 0)
        run_shard(environment, batch["id"], 0)  # a retried child: nothing repeated, nothing billed again

        final = client.get(f"/v1/batches/{batch['id']}", headers=headers).json()
        assert final["status"] == "completed"
        assert final["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
        output = client.get(f"/v1/files/{final['output_file_id']}/content", headers=headers).text.splitlines()
        assert [json.loads(row)["custom_id"] for row in output] == [f"r{n}" for n in range(5)]
        assert events.handler(job_event(batch["id"], "SUCCEEDED"), None)["outcome"] == "already final"

    usage = serial_moto.client("dynamodb").scan(TableName="u")["Items"]
    billed = [item for item in usage if item["route"]["S"] == "BATCH /v1/embeddings"]
    assert len(billed) == 2  # one record per shard, the retried child's a duplicate
    tokens = sum(json.loads(row)["response"]["body"]["usage"]["prompt_tokens"] for row in output)
    assert sum(int(item["units"]["N"]) for item in billed) == tokens
    work = serial_moto.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="batches/").get("KeyCount", 0)
    assert work == 0  # the shards' work is removed once joined


def test_a_cancelled_batch_is_finalized_by_the_job_event(environment: dict[str, str], serial_moto: MotoServer) -> None:
    settings = get_settings()
    headers = key(settings)
    with TestClient(build_app(settings)) as client:
        batch = submit(client, headers, 5)
        run_shard(environment, batch["id"], 0)  # shard 1 never runs
        cancelled = client.post(f"/v1/batches/{batch['id']}/cancel", headers=headers).json()
        assert cancelled["status"] == "cancelling"
        job = serial_moto.client("batch").describe_jobs(jobs=[_job_id(serial_moto, batch["id"])])["jobs"][0]
        assert job["statusReason"] == f"AI Mass batch {batch['id']} was cancelled"  # its job was cancelled too

        # A child's event is not the job's end: ignored.
        child = job_event(batch["id"], "FAILED")
        child["detail"]["arrayProperties"] = {"index": 1}
        assert events.handler(child, None)["outcome"] == "ignored"
        assert events.handler(job_event(batch["id"], "FAILED"), None)["outcome"] == "cancelled"

        final = client.get(f"/v1/batches/{batch['id']}", headers=headers).json()
        assert final["status"] == "cancelled"
        assert final["request_counts"] == {"total": 5, "completed": 3, "failed": 2}
        errors = client.get(f"/v1/files/{final['error_file_id']}/content", headers=headers).text.splitlines()
        assert [(json.loads(r)["custom_id"], json.loads(r)["error"]["code"]) for r in errors] == [
            ("r3", "batch_cancelled"),
            ("r4", "batch_cancelled"),
        ]


def _job_id(moto: MotoServer, batch_id: str) -> str:
    jobs = moto.client("batch").list_jobs(
        jobQueue="aimass-text", filters=[{"name": "JOB_NAME", "values": [f"aimass-{batch_id}"]}]
    )
    summaries = [job for job in jobs["jobSummaryList"] if ":" not in job["jobId"]]  # the parent, not its children
    assert len(summaries) == 1
    job_id: str = summaries[0]["jobId"]
    return job_id
