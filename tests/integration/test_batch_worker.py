"""Batch workers as processes (``python -m aimass.worker``): one is SIGKILLed mid-batch, another finishes it.

GIVEN a batch of 1,500 embedding lines queued with no worker running, WHEN a worker process is killed with
SIGKILL after it has written some chunks and a second worker is started, THEN the batch completes with
exactly one output line per input line, in input order, and its usage is billed once: the billed units are
the sum of the answered lines' own usage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Plan, Settings
from tests.tiny_models import TINY_TEXT

LINES = 1500
PLANS = {"default": Plan(rate_per_s=1000, burst=1000, monthly_units=100_000_000)}
ENV = {
    "AIMASS_METERING": "sqlite",
    "AIMASS_BATCH_SHARD_LINES": "500",
    "AIMASS_BATCH_CHUNK_LINES": "25",
    "AIMASS_BATCH_LEASE_S": "1",
    "AIMASS_ALIAS_CHECK_S": "0",
    "AIMASS_PLANS": json.dumps({name: plan.model_dump() for name, plan in PLANS.items()}),
}


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aimass.worker", "--threads", "1"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def chunks_written(state: Path) -> int:
    return sum(1 for path in (state / "batches").rglob("*") if path.is_file() and not path.name.startswith("."))


def test_a_killed_worker_is_resumed_by_another_with_no_duplicate_no_gap_and_one_bill(
    tiny_store: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = {**ENV, "AIMASS_MODEL_STORE": str(tiny_store), "AIMASS_STATE_DIR": str(state)}
    settings = Settings(
        model_store=tiny_store,
        metering="sqlite",
        state_dir=state,
        plans=PLANS,
        alias_check_s=0,
        batch_workers=0,  # only the worker processes run shards
        batch_shard_lines=500,
        batch_chunk_lines=25,
    )
    secret = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    ).clear_text
    headers = {"authorization": f"Bearer {secret}"}
    lines = [
        json.dumps(
            {
                "custom_id": f"line-{n}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": TINY_TEXT, "input": f"sentence {n} " + "word " * (n % 7)},
            }
        )
        for n in range(LINES)
    ]
    with TestClient(build_app(settings)) as client:
        upload = client.post(
            "/v1/files",
            headers=headers,
            files={"file": ("in.jsonl", "\n".join(lines).encode())},
            data={"purpose": "batch"},
        )
        batch_id = client.post(
            "/v1/batches",
            headers=headers,
            json={"input_file_id": upload.json()["id"], "endpoint": "/v1/embeddings", "completion_window": "24h"},
        ).json()["id"]

        first = start_worker(env)
        deadline = time.monotonic() + 60
        while chunks_written(state) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = chunks_written(state)
        assert 3 <= killed_at < LINES // 25, "the worker was killed mid-batch"
        assert client.get(f"/v1/batches/{batch_id}", headers=headers).json()["status"] == "in_progress"

        second = start_worker(env)
        try:
            batch: dict[str, Any] = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                batch = client.get(f"/v1/batches/{batch_id}", headers=headers).json()
                if batch["status"] not in ("in_progress", "finalizing"):
                    break
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        assert batch["status"] == "completed", batch
        assert batch["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
        output = client.get(f"/v1/files/{batch['output_file_id']}/content", headers=headers).text.splitlines()

    rows = [json.loads(row) for row in output]
    assert [row["custom_id"] for row in rows] == [f"line-{n}" for n in range(LINES)]
    answered_tokens = sum(row["response"]["body"]["usage"]["prompt_tokens"] for row in rows)
    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    billed = [
        record
        for record in usage.query(now - timedelta(hours=1), now + timedelta(hours=1), "acme")
        if record.route == "BATCH /v1/embeddings"
    ]
    assert len(billed) == 3  # one record per shard
    assert sum(record.units for record in billed) == answered_tokens
    assert not (state / "batches" / batch_id).exists()  # the shards' work is removed once joined
