"""A Lambda runtime loop that streams the app's answers to API Gateway as they are written.

API Gateway's REST integrations stream a Lambda function's response when the integration's transfer mode is
STREAM (it then calls InvokeWithResponseStream). The Python runtime interface client cannot stream, so a
function that must (a generated answer, token by token) runs this loop instead of ``awslambdaric``. It speaks
Lambda's Runtime API (``AWS_LAMBDA_RUNTIME_API``) over plain HTTP/1.1:

* ``GET /2018-06-01/runtime/invocation/next``: the next event, and its request id and deadline in headers;
* ``POST /2018-06-01/runtime/invocation/<id>/response`` with ``Lambda-Runtime-Function-Response-Mode:
  streaming`` and ``Transfer-Encoding: chunked``: the answer, each chunk sent when the app writes it, in the
  format API Gateway reads (``application/vnd.awslambda.http-integration-response``): a JSON prelude of the
  status and headers, eight NUL bytes, then the body. An error after the answer has started is reported in
  the ``Lambda-Runtime-Function-Error-Type`` and ``-Body`` trailers, as Lambda documents;
* ``POST .../<id>/error`` for an event that could not be read, and ``/runtime/init/error`` if the app cannot
  be built.

An event is turned into the app's ASGI request by Mangum's own API Gateway adapter, so the app sees exactly
what it sees under Mangum. A front function's listing call (``aimass.http.gateway.from_peer``) is a direct
Invoke that reads a buffered proxy response, so it is answered buffered, as Mangum would answer it.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, cast

from mangum import Mangum
from starlette.types import ASGIApp, Message, Scope

from aimass.http import gateway
from aimass.lambda_context import LocalLambdaContext

log = logging.getLogger("aimass.http.lambda_streaming")

API_VERSION = "2018-06-01"
PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"


class StreamingRuntime:
    """Serves ``app`` to Lambda's Runtime API at ``api`` (``host:port``), one invocation at a time."""

    def __init__(self, app: ASGIApp, api: str | None = None, *, timeout_s: float | None = None) -> None:
        self.app = app
        self.api = api or os.environ["AWS_LAMBDA_RUNTIME_API"]
        self.timeout_s = timeout_s  # None: wait for the next event as long as Lambda keeps the environment
        # Mangum types the app as returning a coroutine, Starlette's as returning an awaitable: the same apps.
        self.adapter = Mangum(cast("Any", app), lifespan="off")
        self.loop = asyncio.new_event_loop()

    def run_forever(self) -> None:  # pragma: no cover - the function's whole life
        while True:
            self.handle_next()

    def handle_next(self) -> None:
        """Take the next event and answer it, streamed (or buffered, for a peer's listing call)."""
        # The loop runs the app (and Mangum's own cycle, which asks for the thread's current loop).
        asyncio.set_event_loop(self.loop)
        connection = http.client.HTTPConnection(self.api, timeout=self.timeout_s)
        try:
            connection.request("GET", f"/{API_VERSION}/runtime/invocation/next")
            reply = connection.getresponse()
            raw = reply.read()
            request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id", "")
            deadline_ms = int(reply.getheader("Lambda-Runtime-Deadline-Ms", "0") or 0)
        finally:
            connection.close()
        try:
            event = json.loads(raw)
            remaining = (
                max(0, deadline_ms - int(time.time() * 1000)) if deadline_ms else LocalLambdaContext.remaining_ms
            )
            context = LocalLambdaContext(aws_request_id=request_id, remaining_ms=remaining)
            handler = self.adapter.infer(event, context)
        except Exception as exc:  # an event no adapter reads: the invocation fails, the runtime goes on
            self._post_error(request_id, exc)
            return
        scope = handler.scope
        if gateway.from_peer(scope):
            self._post_buffered(request_id, self.adapter(event, context))
            return
        self._stream(request_id, scope, handler.body)

    # --- answers --------------------------------------------------------------------------------------

    def _stream(self, request_id: str, scope: Scope, body: bytes) -> None:
        connection = http.client.HTTPConnection(self.api, timeout=self.timeout_s)
        connection.putrequest("POST", f"/{API_VERSION}/runtime/invocation/{request_id}/response")
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", PRELUDE_TYPE)
        connection.putheader("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}")
        connection.endheaders()
        writer = _ChunkWriter(connection)
        failure: BaseException | None = None
        try:
            self.loop.run_until_complete(_run(self.app, scope, body, writer))
        except BaseException as exc:  # the app failed: report it in the trailers, after what was sent
            failure = exc
            log.error("request %s failed while streaming: %s", request_id, exc)
        if not writer.started:
            # The app failed before it answered: the client still gets a status and the error shape.
            writer.start(500, [(b"content-type", b"application/json")])
            writer.write(json.dumps({"error": {"message": "internal error", "type": "server_error"}}).encode())
        writer.finish(failure)
        try:
            connection.getresponse().read()
        finally:
            connection.close()

    def _post_buffered(self, request_id: str, response: dict[str, Any]) -> None:
        self._post(f"/{API_VERSION}/runtime/invocation/{request_id}/response", json.dumps(response).encode())

    def _post_error(self, request_id: str, exc: BaseException) -> None:
        log.error("invocation %s could not be read: %s", request_id, exc)
        document = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exc().splitlines(),
        }
        self._post(f"/{API_VERSION}/runtime/invocation/{request_id}/error", json.dumps(document).encode())

    def _post(self, path: str, data: bytes) -> None:
        connection = http.client.HTTPConnection(self.api, timeout=self.timeout_s)
        try:
            connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            connection.getresponse().read()
        finally:
            connection.close()


def init_error(api: str, exc: BaseException) -> None:
    """Tell Lambda that the function could not start (the app or its models could not be built)."""
    document = {"errorMessage": str(exc), "errorType": type(exc).__name__}
    connection = http.client.HTTPConnection(api)
    try:
        connection.request("POST", f"/{API_VERSION}/runtime/init/error", body=json.dumps(document).encode())
        connection.getresponse().read()
    finally:
        connection.close()


class _ChunkWriter:
    """Writes the streamed answer as HTTP/1.1 chunks: the prelude and its delimiter first, then the body."""

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection
        self.started = False

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        named: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            if key == "set-cookie":
                cookies.append(text)
            else:
                named[key] = f"{named[key]},{text}" if key in named else text
        prelude: dict[str, Any] = {"statusCode": status, "headers": named}
        if cookies:
            prelude["cookies"] = cookies
        self._chunk(json.dumps(prelude).encode() + DELIMITER)
        self.started = True

    def write(self, data: bytes) -> None:
        if data:
            self._chunk(data)

    def finish(self, failure: BaseException | None) -> None:
        trailers = b""
        if failure is not None:
            kind = type(failure).__name__.replace("\r", "").replace("\n", "")
            detail = json.dumps({"errorType": kind, "errorMessage": str(failure)[:1000]}).encode()
            trailers = (
                f"{ERROR_TYPE_TRAILER}: {kind}\r\n".encode()
                + f"{ERROR_BODY_TRAILER}: ".encode()
                + base64.b64encode(detail)
                + b"\r\n"
            )
        self.connection.send(b"0\r\n" + trailers + b"\r\n")

    def _chunk(self, data: bytes) -> None:
        self.connection.send(b"%x\r\n%s\r\n" % (len(data), data))


async def _run(app: ASGIApp, scope: Scope, body: bytes, writer: _ChunkWriter) -> None:
    sent = False
    finished = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await finished.wait()  # the answer is done: then, as a server says, the client is gone
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            writer.start(int(message["status"]), list(message.get("headers", [])))
        elif message["type"] == "http.response.body":
            writer.write(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    finished.set()


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a function's whole life
    """The image's entry point (``python3.11 -m aimass.http.lambda_streaming handler.app``), as awslambdaric's
    is for buffered functions: import the app the CMD names from the task root, then serve it; a failed
    import (the models, say) is reported to Lambda as an init error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or "." not in args[0]:
        raise SystemExit("usage: python -m aimass.http.lambda_streaming <module>.<app>")
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    module, _, name = args[0].rpartition(".")
    try:
        app = getattr(importlib.import_module(module), name)
    except BaseException as exc:
        init_error(api, exc)
        raise
    StreamingRuntime(app, api).run_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
