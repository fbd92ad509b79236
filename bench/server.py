"""The local server (`aimass serve`) in its own process, and a keep-alive client to it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import free_port
from bench.workload import Request

REPO = Path(__file__).resolve().parents[1]


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, as a real client with connection reuse would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, request: Request) -> bytes:
        headers = {"Content-Type": request.content_type, **request.headers}
        self.connection.request("POST", request.path, request.body, headers)
        response = self.connection.getresponse()
        data = response.read()  # read it all, or the connection cannot be reused
        if response.status != 200:
            raise RuntimeError(f"POST {request.path} answered {response.status}: {data[:500]!r}")
        return data

    def close(self) -> None:
        self.connection.close()


def serve_command(store: Path, port: int, workers: int, *options: str) -> list[str]:
    """The command line of `aimass serve` over ``store`` on ``port`` with ``workers`` worker processes."""
    command = [sys.executable, "-m", "aimass_tools.cli", "serve", "--port", str(port), "--store", str(store)]
    return [*command, "--workers", str(workers), *options]


@contextmanager
def server_process(
    command: list[str], port: int, log: Path, env: dict[str, str], *, ready: str = "/v2/health/ready"
) -> Iterator[subprocess.Popen[bytes]]:
    """A server started in a session of its own, once it answers ``ready`` on ``port``.

    Servers spawn workers (LitServe's outlive a terminated parent), so the whole process group goes at the end:
    no server of one run takes CPU from the next.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
    try:
        wait_ready(port, process, log, path=ready)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def local_server(store: Path, env: dict[str, str], log: Path, *, workers: int = 1) -> Iterator[KeepAliveClient]:
    """`aimass serve` in its own process (AIMASS_DOMAINS narrows it to one domain); one worker process unless
    asked, as the latency benchmarks compare one request at a time with the engine on every core."""
    port = free_port()
    with server_process(serve_command(store, port, workers), port, log, env):
        client = KeepAliveClient(port)
        try:
            yield client
        finally:
            client.close()


def wait_ready(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120, *, path: str = "/v2/health/ready"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s:\n{log.read_text()[-2000:]}")
