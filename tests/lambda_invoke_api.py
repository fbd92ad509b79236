"""A stand-in for the Lambda service's Invoke API over real HTTP on 127.0.0.1, running real handlers.

moto's Lambda runs a function's code only in Docker; without it, ``invoke`` answers results queued beforehand
and never looks at the payload (moto 5, ``LambdaFunction.invoke``), so a caller's event would reach no
handler. Here each function name is bound to a handler (a real ``functions/<domain>/handler.py``'s
``handler``), and ``POST /2015-03-31/functions/<name>/invocations`` runs it on the exact payload the client
sent, as Lambda's synchronous (``RequestResponse``) invocation documents it:

* the answer is the handler's return value as JSON, status 200, with ``X-Amz-Executed-Version``;
* a handler that raises is a function error: status 200, ``X-Amz-Function-Error: Unhandled`` and the runtime's
  ``errorMessage``/``errorType`` document (a function that runs past its timeout is reported the same way);
* a name no function has is a 404 ``ResourceNotFoundException``.

Every invocation is kept (function, payload bytes, answer), so a test can hold what the caller sent and what
the function answered to what the caller made of it. A boto3 client reaches it through ``endpoint``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aimass.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/?]+)/invocations(?:\?.*)?$")


@dataclass(frozen=True)
class Invocation:
    function: str
    payload: bytes  # the request body, byte for byte as the client sent it
    answer: Any  # what the handler returned (None when it raised)

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.payload)
        return event


@dataclass
class LambdaService:
    functions: dict[str, Handler]
    endpoint: str = ""
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, function: str) -> list[Invocation]:
        with self._lock:
            return [call for call in self.invocations if call.function == function]

    def environment(self) -> dict[str, str]:
        """What a process needs to send its boto3 Lambda calls here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    def _run(self, name: str, payload: bytes) -> tuple[dict[str, str], bytes]:
        handler = self.functions[name]
        context = LocalLambdaContext(
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            log_group_name=f"/aws/lambda/{name}",
        )
        # The Lambda runtime calls a handler on its main thread, which has an event loop for Mangum to use; this
        # server's request thread has none until it is given one.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        answer: Any = None
        try:
            answer = handler(json.loads(payload), context)
            headers, body = {"X-Amz-Executed-Version": "$LATEST"}, json.dumps(answer).encode()
        except Exception as exc:
            document = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            headers = {"X-Amz-Executed-Version": "$LATEST", "X-Amz-Function-Error": "Unhandled"}
            body = json.dumps(document).encode()
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            with self._lock:
                self.invocations.append(Invocation(name, payload, answer))
        return headers, body


@contextmanager
def lambda_service(functions: Mapping[str, Handler]) -> Iterator[LambdaService]:
    """Serve ``functions`` (name -> handler) on a free port of 127.0.0.1 until the block ends."""
    service = LambdaService(dict(functions))

    class Server(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            matched = _INVOKE.match(self.path)
            if matched is None:
                self._reply(404, {"x-amzn-ErrorType": "UnknownOperationException"}, b'{"message": null}')
                return
            name = matched["name"]
            if name not in service.functions:
                arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
                message = json.dumps({"Type": "User", "message": f"Function not found: {arn}"}).encode()
                self._reply(404, {"x-amzn-ErrorType": "ResourceNotFoundException"}, message)
                return
            headers, body = service._run(name, payload)
            self._reply(200, headers, body)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {**headers, "x-amzn-RequestId": str(uuid.uuid4())}.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    service.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll: the server stops within it when the block ends (each test starts its own).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
