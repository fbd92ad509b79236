"""The local server (`aimass serve`) in its own process, and a keep-alive client to it."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import free_port
from bench.workload import Request


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


@contextmanager
def local_server(store: Path, env: dict[str, str], log: Path, *, workers: int = 1) -> Iterator[KeepAliveClient]:
    """`aimass serve` in its own process (AIMASS_DOMAINS narrows it to one domain); one worker process unless
    asked, as the latency benchmarks compare one request at a time with the engine on every core."""
    port = free_port()
    command = [sys.executable, "-m", "aimass_tools.cli", "serve", "--port", str(port), "--store", str(store)]
    command += ["--workers", str(workers)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(port, process, log)
        client = KeepAliveClient(port)
        try:
            yield client
        finally:
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
