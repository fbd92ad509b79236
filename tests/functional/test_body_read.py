"""Bodies that never arrive, or arrive too large, through the metered app: every kind of route answers the same.

A FastAPI route turns a missing body into its own 400; a plain route raises ClientDisconnect. Either way the
client that left is recorded as 499 and the one that stalled gets the 408, and the usage record says so.
(tests/integration/test_body_reads.py does the same over sockets against `aimass serve`.) A body too large is
a 413 on both kinds too, though FastAPI's body parser makes a 400 of any error it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from aimass.http.app import build_app
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.metering.stores.usage_factory import open_usage
from aimass.settings import Settings
from tests.tiny_models import TINY_TEXT

ROUTES = [f"/v2/models/{TINY_TEXT}/infer", "/v1/embeddings", "/v1/admin/keys", "/v2/repository/index"]


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("body-state")
    return Settings(model_store=tiny_store, metering="sqlite", state_dir=state, alias_check_s=0, body_timeout_s=0.2)


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return build_app(settings)


def admin_key(settings: Settings) -> str:
    store = open_key_store(settings)
    issued = create_key(
        store, tenant="ops", scopes=("invoke", "admin"), plan="default", plans=settings.plans, now=datetime.now(UTC)
    )
    return issued.clear_text


@pytest.fixture(scope="module")
def key(settings: Settings) -> str:
    return admin_key(settings)


@pytest.fixture
def key_for() -> Callable[[Settings], str]:
    return admin_key


def call(app: FastAPI, path: str, key: str, *, then: Message | None) -> list[Message]:
    """POST ``path`` declaring 100 bytes of JSON and sending 10; then ``then``, or nothing ever again."""
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": b'{"tenant":', "more_body": True}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return then
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100"), (b"x-api-key", key.encode())]
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app,
    }  # fmt: skip

    async def run() -> None:
        with anyio.fail_after(5):
            await app(scope, receive, send)

    anyio.run(run)
    return sent


def answer(sent: list[Message]) -> tuple[int, dict[str, Any]]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), json.loads(body)


def statuses(settings: Settings, path: str) -> list[int]:
    usage, _ = open_usage(settings)
    now = datetime.now(UTC)
    return [r.status for r in usage.query(now - timedelta(hours=1), now + timedelta(hours=1)) if path in r.route]


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_that_leaves_is_recorded_as_499(app: FastAPI, settings: Settings, key: str, path: str) -> None:
    status, body = answer(call(app, path, key, then={"type": "http.disconnect"}))
    assert status == 499
    error = body["error"] if path.startswith("/v2") else body["error"]["message"]
    assert "the client left before sending the whole request body" in error
    assert statuses(settings, path.replace(TINY_TEXT, "{name}"))[-1:] == [499]


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_that_stalls_is_a_408(app: FastAPI, settings: Settings, key: str, path: str) -> None:
    status, body = answer(call(app, path, key, then=None))
    assert status == 408
    error = body["error"] if path.startswith("/v2") else body["error"]["message"]
    assert "the request body did not arrive within 0.2 s" in error
    assert statuses(settings, path.replace(TINY_TEXT, "{name}"))[-1:] == [408]


@pytest.mark.parametrize("path", ROUTES)
def test_a_streamed_body_over_the_limit_is_413_on_every_route(
    tiny_store: Path, tmp_path: Path, key_for: Callable[[Settings], str], path: str
) -> None:
    # GIVEN a body sent without a Content-Length (chunked), so that only its bytes can show it is too large
    settings = Settings(model_store=tiny_store, metering="sqlite", state_dir=tmp_path, max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"tenant": "acme", "description": "'
        yield from (b"x" * 500 for _ in range(10))
        yield b'"}'

    # WHEN it is posted to a route, a FastAPI one (whose body parser makes its own 400 of other errors) included
    with TestClient(build_app(settings)) as client:
        headers = {"x-api-key": key_for(settings), "content-type": "application/json"}
        response = client.post(path, content=chunks(), headers=headers)
    # THEN it is the 413 that names the limit
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert "over the limit of 1000 bytes" in (error if path.startswith("/v2") else error["message"])
