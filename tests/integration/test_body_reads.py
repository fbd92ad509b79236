"""Request bodies that never arrive, against the real local server (`aimass serve`) over raw sockets.

A client that declares a body and closes the connection part way through has left: the server writes one
INFO line and no error or traceback. A client that stops sending part way through gets a 408 in the usual
error shape once AIMASS_BODY_TIMEOUT_S has passed, and its request stops holding the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.tiny_models import TINY_TEXT
from tests.tiny_vision import build_tiny_vision

TIMEOUT_S = 1.0
LEFT = "the client left before sending the whole request body"
# Each kind of route reads its body its own way: a hot route, a multipart form, a FastAPI route.
ROUTES = [
    (f"/v2/models/{TINY_TEXT}/infer", "application/json"),
    ("/v1/embeddings", "application/json"),
    ("/v1/vision/classify", "multipart/form-data; boundary=xyz"),
    ("/v2/repository/index", "application/json"),
]
# The first 10 bytes of a well-formed body of each type.
STARTS = {"application/json": b'{"inputs":', "multipart/form-data; boundary=xyz": b"--xyz\r\nCon"}


@dataclass
class Server:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("body-store")
    (store / TINY_TEXT).symlink_to(tiny_store / TINY_TEXT)
    build_tiny_vision(store)
    port = free_port()
    log = tmp_path_factory.mktemp("body-log") / "serve.log"
    env = {**os.environ, "PORT": str(port), "AIMASS_MODEL_STORE": str(store), "AIMASS_BODY_TIMEOUT_S": str(TIMEOUT_S)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "aimass_tools.cli", "serve"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1):
                break
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server not ready in 30 s"
            time.sleep(0.1)
    yield Server(port, log, process)
    process.terminate()
    process.wait(timeout=10)


def partial_request(port: int, path: str, content_type: str) -> socket.socket:
    """A POST that declares 100 bytes of body and sends 10."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
    )
    sock.sendall(head.encode() + STARTS[content_type])
    return sock


def wait_for(server: Server, text: str, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in server.lines() if text in line]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_client_that_leaves_mid_body_is_one_info_line(server: Server) -> None:
    before = len(wait_for(server, LEFT, 0))
    # WHEN clients declare a body, send part of it and close the connection, on every kind of route
    for path, content_type in ROUTES:
        partial_request(server.port, path, content_type).close()
        # THEN each leaves one INFO line naming the request, and no error
        lines = wait_for(server, LEFT, before + 1)
        assert len(lines) == before + 1, server.log.read_text()
        assert (
            " INFO aimass.http " in lines[-1] and f"POST {path} " in lines[-1] and "10 of 100 body bytes" in lines[-1]
        )
        before += 1
    time.sleep(0.5)  # anything else the server would write about them
    log = server.log.read_text()
    assert "Traceback" not in log and " ERROR " not in log and "Exception" not in log, log
    # AND the server goes on serving
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/v2/health/live", timeout=5) as reply:
        assert reply.status == 200


@pytest.mark.parametrize(("path", "content_type"), ROUTES)
def test_a_body_that_stops_arriving_gets_a_408(server: Server, path: str, content_type: str) -> None:
    started = time.monotonic()
    with partial_request(server.port, path, content_type) as sock:
        # WHEN the client sends part of its body and then nothing, keeping the connection open
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            answer += chunk
    waited = time.monotonic() - started
    # THEN after the body timeout it gets a 408 in the route's error shape, and the connection is closed
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert TIMEOUT_S <= waited < TIMEOUT_S + 5
    error = json.loads(body)["error"]
    message = error if path.startswith("/v2") else error["message"]
    assert "the request body did not arrive within 1 s (AIMASS_BODY_TIMEOUT_S)" in message
    if not path.startswith("/v2"):
        assert (error["code"], error["param"]) == ("request_timeout", "body")
    assert b"x-request-id: " in head.lower() and b"connection: close" in head.lower()
    log = server.log.read_text()
    assert "Traceback" not in log and " ERROR " not in log, log
