"""Metering end to end: `aimass serve` as `make serve` runs it, its development key, stock clients with keys,
and exact usage under concurrent load, on SQLite and on DynamoDB (moto's server over HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from openai import AuthenticationError, OpenAI

from aimass.metering.stores.keys_dynamodb import keys_table_definition
from aimass.metering.stores.usage_dynamodb import counters_table_definition, usage_table_definition
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Settings
from tests.moto_server import MotoServer
from tests.ports import free_port
from tests.tiny_models import TINY_TEXT, reference_embedding

TEXTS = ["the cat sat", "a red car"]  # 3 + 3 tokens
# A plan whose rate never binds: these tests count records, not refusals (the rate limit has its own tests).
UNTHROTTLED = {"AIMASS_PLANS": json.dumps({"default": {"rate_per_s": 1e6, "burst": 10**6, "monthly_units": 10**9}})}


class Server:
    def __init__(
        self, store: Path, state: Path, extra: dict[str, str] | None = None, args: tuple[str, ...] | list[str] = ()
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = state.parent / f"serve-{self.port}.log"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "AIMASS_MODEL_STORE": str(store),
            "AIMASS_METERING": "sqlite",
            "AIMASS_STATE_DIR": str(state),
            "AIMASS_ALIAS_CHECK_S": "0",
            "COLUMNS": "250",
            **UNTHROTTLED,
            **(extra or {}),
        }
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aimass_tools.cli", "serve", *args], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/v2/health/ready", timeout=1):
                    break
            except OSError:
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "server not ready in 30 s"
                time.sleep(0.1)
        self.key = (state / "dev-key").read_text().strip()

    def banner(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def server(tiny_store: Path, tmp_path: Path) -> Iterator[Server]:
    running = Server(tiny_store, tmp_path / "state")
    yield running
    running.stop()


def test_make_serve_prints_a_development_key_and_keeps_it(server: Server, tiny_store: Path, tmp_path: Path) -> None:
    assert server.key in server.banner() and "created in" in server.banner()
    assert f"Authorization: Bearer $(cat {tmp_path / 'state' / 'dev-key'})" in server.banner()
    assert oct((tmp_path / "state" / "dev-key").stat().st_mode & 0o777) == "0o600"
    server.stop()
    again = Server(tiny_store, tmp_path / "state")
    try:
        assert again.key == server.key and "kept in" in again.banner()
    finally:
        again.stop()


def test_the_development_key_has_no_rate_limit_and_real_plans_do(tiny_store: Path, tmp_path: Path) -> None:
    # The plans a deployment starts with (default: 50 requests/s, burst 100), as the README's `make serve` runs.
    shipped = {"AIMASS_PLANS": json.dumps({name: plan.model_dump() for name, plan in Settings().plans.items()})}
    running = Server(tiny_store, tmp_path / "state", extra=shipped)
    try:
        assert "plan 'development', no rate limit" in running.banner()
        made = subprocess.run(
            [sys.executable, "-m", "aimass_tools.cli", "keys", "create", "--tenant", "acme", "--plan", "default"],
            env={**os.environ, **shipped, "AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(tmp_path / "state")},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        default_key = next(word for line in made.stdout.splitlines() for word in line.split() if word.startswith("am_"))

        def statuses(key: str) -> list[int]:
            # 300 requests as fast as one client sends them: twice what the default plan's burst and a second of
            # its rate allow.
            with httpx.Client(base_url=running.base, headers={"Authorization": f"Bearer {key}"}) as client:
                return [client.get(f"/v2/models/{TINY_TEXT}").status_code for _ in range(300)]

        assert set(statuses(running.key)) == {200}
        on_default = statuses(default_key)
        assert on_default[:100] == [200] * 100 and 429 in on_default
    finally:
        running.stop()


def test_stock_clients_send_their_keys(server: Server) -> None:
    client = OpenAI(base_url=f"{server.base}/v1", api_key=server.key, max_retries=0)
    result = client.embeddings.create(model=TINY_TEXT, input=TEXTS)
    np.testing.assert_allclose(result.data[0].embedding, reference_embedding(TEXTS[0]), atol=1e-6)
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.base}/v1", api_key="not-a-key", max_retries=0).embeddings.create(
            model=TINY_TEXT, input="sun"
        )

    triton_client = triton.InferenceServerClient(server.base.removeprefix("http://"))
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"the cat sat"], dtype=object))
    answer = triton_client.infer(TINY_TEXT, [text], headers={"Authorization": f"Bearer {server.key}"})
    np.testing.assert_allclose(answer.as_numpy("embedding")[0], reference_embedding("the cat sat"), atol=1e-6)


# An overloaded server answers 503 with Retry-After (a model's requests in flight at their bound, or the usage store
# slow to answer on a busy machine); a client then tries again, as these do, a few times.
RETRIES = 5


def hammer(server: Server, requests: int) -> list[int]:
    """Each request's final status, sent 16 at a time; a 503 with Retry-After is sent again after its wait."""
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": TEXTS}]}

    def one(client: httpx.Client) -> int:
        for _ in range(RETRIES):
            response = client.post(f"/v2/models/{TINY_TEXT}/infer", json=body)
            if response.status_code != 503 or "retry-after" not in response.headers:
                break
            time.sleep(min(float(response.headers["retry-after"]), 1.0))
        return response.status_code

    headers = {"x-api-key": server.key}
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client, ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda _: one(client), range(requests)))


def test_a_thousand_concurrent_requests_make_a_thousand_records(server: Server, tmp_path: Path) -> None:
    statuses = hammer(server, 1000)
    assert statuses.count(200) == 1000

    usage, quota = open_usage(Settings(metering="sqlite", state_dir=tmp_path / "state"))
    now = datetime.now(UTC)
    rows = [r for r in usage.query(now - timedelta(hours=1), now + timedelta(hours=1)) if r.model == TINY_TEXT]
    assert len(rows) == 1000 and len({r.request_id for r in rows}) == 1000
    assert sum(r.units for r in rows) == 6000 and all(r.billed for r in rows)
    assert quota.used("dev", now.strftime("%Y-%m")) == 6000

    report = subprocess.run(
        [sys.executable, "-m", "aimass_tools.cli", "usage", "report", "--tenant", "dev", "--format", "json"],
        env={**os.environ, "AIMASS_METERING": "sqlite", "AIMASS_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        check=True,
    )
    invoice = json.loads(report.stdout)
    assert Decimal(invoice["total"]) == sum(Decimal(repr(r.cost)) for r in rows)
    (line,) = [line for line in invoice["lines"] if line["model"] == TINY_TEXT]
    assert line["units"] == 6000 and line["requests"] == 1000


def test_the_same_against_dynamodb(tiny_store: Path, tmp_path: Path, moto: MotoServer) -> None:
    dynamodb = moto.client("dynamodb")
    for definition in (keys_table_definition("k"), usage_table_definition("u"), counters_table_definition("c")):
        dynamodb.create_table(**definition)
    extra = {
        **moto.environment(),
        "AIMASS_METERING": "dynamodb",
        "AIMASS_AWS_ENDPOINT_URL": moto.endpoint,
        "AIMASS_KEYS_TABLE": "k",
        "AIMASS_USAGE_TABLE": "u",
        "AIMASS_COUNTERS_TABLE": "c",
    }
    server = Server(tiny_store, tmp_path / "state", extra)
    try:
        statuses = hammer(server, 200)
        assert statuses.count(200) == 200, sorted(set(statuses))
    finally:
        server.stop()
    items = dynamodb.scan(TableName="u", Select="COUNT")
    assert items["Count"] == 200
    units = sum(int(item["units"]["N"]) for item in dynamodb.scan(TableName="u")["Items"])
    assert units == 1200
