"""A stand-in for Lambda's Runtime API, as Lambda documents it: events out, answers in, streamed ones chunk by chunk.

``GET /2018-06-01/runtime/invocation/next`` hands out the queued events (with their request id and deadline);
``POST .../<id>/response`` takes an answer, buffered or streamed (``Lambda-Runtime-Function-Response-Mode:
streaming``, chunked, with trailers), and notes when each chunk arrived; ``POST .../<id>/error`` and
``/runtime/init/error`` note the errors. Tests run a runtime loop against it over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass
class Answer:
    request_id: str
    streamed: bool
    headers: dict[str, str]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (monotonic arrival time, data)
    trailers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    def prelude(self) -> tuple[dict[str, Any], bytes]:
        """A streamed HTTP answer split at its delimiter: the prelude's JSON and the body after it."""
        head, delimiter, rest = self.body.partition(b"\0" * 8)
        assert delimiter, "no prelude delimiter"
        prelude: dict[str, Any] = json.loads(head)
        return prelude, rest


class RuntimeApi:
    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.init_errors: list[dict[str, Any]] = []
        self.address = ""

    def invoke(self, request_id: str, event: dict[str, Any]) -> None:
        self.events.put((request_id, event))

    def answer(self, timeout_s: float = 30.0) -> Answer:
        return self.answers.get(timeout=timeout_s)


@contextmanager
def runtime_api() -> Iterator[RuntimeApi]:
    api = RuntimeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404, b"{}")
                return
            request_id, event = api.events.get()
            data = json.dumps(event).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 29_000))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path == f"{PREFIX}/init/error":
                api.init_errors.append(json.loads(self._whole()))
                self._reply(202, b"{}")
                return
            parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
            request_id, kind = parts[0], parts[1]
            headers = {name.lower(): value for name, value in self.headers.items()}
            streamed = headers.get("lambda-runtime-function-response-mode") == "streaming"
            answer = Answer(request_id, streamed, headers)
            if headers.get("transfer-encoding") == "chunked":
                self._chunks(answer)
            else:
                answer.chunks.append((time.monotonic(), self._whole()))
            if kind == "error":
                answer.error = json.loads(answer.body)
            api.answers.put(answer)
            self._reply(202, b"{}")

        def _whole(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _chunks(self, answer: Answer) -> None:
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    break
                data = self.rfile.read(size)
                self.rfile.readline()  # the chunk's CRLF
                answer.chunks.append((time.monotonic(), data))
            while line := self.rfile.readline().strip():  # trailers, up to the empty line
                name, _, value = line.decode().partition(":")
                answer.trailers[name.strip().lower()] = value.strip()

        def _reply(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
