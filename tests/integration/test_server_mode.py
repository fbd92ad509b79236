"""Server mode over real HTTP: `aimass serve --workers 2`, TCP_NODELAY on a served connection, and explicit
overload (a bounded number of requests in flight per model, then 503 with Retry-After)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from aimass.http.app import build_app
from aimass.serving.boot import load_models
from aimass.settings import Settings
from aimass_server.protocol import NoDelayProtocol
from tests.integration.test_metering_server import Server
from tests.ports import free_port
from tests.tiny_models import TINY_TEXT

BOUND = 2


class InProcess:
    """The app on uvicorn with the server mode's protocol, on a thread, so that the test reaches its connections."""

    def __init__(self, settings: Settings, slow_s: float) -> None:
        registry = load_models(settings)
        runtime = registry.get(TINY_TEXT)
        predict = runtime.predict

        def slowed(*args: Any, **kwargs: Any) -> Any:
            time.sleep(slow_s)
            return predict(*args, **kwargs)

        runtime.predict = slowed  # type: ignore[method-assign]
        self.port = free_port()
        config = uvicorn.Config(
            build_app(settings, registry=registry),
            host="127.0.0.1",
            port=self.port,
            http=NoDelayProtocol,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        # A socket bound beforehand, as each worker gets it: asyncio sets TCP_NODELAY itself only on connections
        # of servers it binds (host and port), so this is the path that needs the protocol's own setting.
        sockets = [config.bind_socket()]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": sockets}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server not started in 10 s"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def slowed(tiny_store: Path) -> Iterator[InProcess]:
    settings = Settings(model_store=tiny_store, metering="off", alias_check_s=0, max_in_flight=BOUND)
    running = InProcess(settings, slow_s=0.3)
    yield running
    running.stop()


def embed(base: str, client: httpx.Client | None = None, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": TINY_TEXT, "input": "the cat sat"}
    if client is not None:
        return client.post(f"{base}/v1/embeddings", json=body, headers=headers)
    return httpx.post(f"{base}/v1/embeddings", json=body, headers=headers, timeout=10)


def test_a_served_connection_has_nagle_off(slowed: InProcess) -> None:
    # GIVEN a keep-alive connection the server has answered on
    with httpx.Client(base_url=f"http://127.0.0.1:{slowed.port}", timeout=10) as client:
        assert client.get("/v2/health/live").status_code == 200
        # WHEN the server's side of it is read
        connections = list(slowed.server.server_state.connections)
        assert connections
        # THEN TCP_NODELAY is set on every accepted socket
        for connection in connections:
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_past_the_bound_requests_are_refused_at_once_with_retry_after(slowed: InProcess) -> None:
    # GIVEN a model that takes 0.3 s a request, and at most 2 in flight
    base = f"http://127.0.0.1:{slowed.port}"
    # WHEN 8 requests arrive together
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: embed(base), range(8)))
    elapsed = time.monotonic() - started
    # THEN the bound answer, the others are refused in the one error shape with Retry-After, and nothing queues
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(200) >= BOUND
    assert statuses.count(503) >= 8 - 2 * BOUND  # a refused client never waits for a slot
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "1"
            error = answer.json()["error"]
            assert error["code"] == "model_overloaded"
            assert TINY_TEXT in error["message"]
        else:
            assert answer.status_code == 200
    assert elapsed < 2.0
    # AND once the burst is over, the model answers again
    assert embed(base).status_code == 200


def test_serve_with_two_workers_shares_the_port_the_key_and_the_usage(tiny_store: Path, tmp_path: Path) -> None:
    # GIVEN `aimass serve --workers 2` with SQLite metering and its development key
    server = Server(tiny_store, tmp_path / "state", args=["--workers", "2"])
    try:
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        # WHEN 40 keyed requests arrive on 8 connections at once
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: embed(server.base, key=server.key), range(40)))
        # THEN two worker processes serve them, every one answers, and each worker read the one key
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert f"2 worker process(es), {threads} ONNX Runtime thread(s) each" in server.banner()
        assert len(children) >= 2
        assert [answer.status_code for answer in answers] == [200] * 40
    finally:
        server.stop()
