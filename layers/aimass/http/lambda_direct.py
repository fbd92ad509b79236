"""A function's direct Lambda path: its inference routes answered from the API Gateway event, without ASGI.

On a function, Mangum, asyncio and Starlette's middleware cost more than the rest of a small model's request
together, and importing them is a large share of a small function's cold start. The routes that carry a plain
handler (``HotRoute.call``: V2 infer, embeddings) are answered here: the event read as Mangum reads it, the
request put through the same steps as the ASGI app's middleware (request id, body limit, model update check,
metering with the one ``MeteringGate``, errors rendered from the one error base), the route's own handler called,
and the answer shaped as Mangum shapes it. Every other request (another path or method, a ``Prefer:
respond-async``, an ALB or other event) goes to the Starlette app, which is built, with the web stack imported, on
the first such request.

tests/functional/test_lambda_direct_parity.py replays every recorded event through both paths and requires the
same answers.
"""

from __future__ import annotations

import base64
import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aimass.contract import is_open_path
from aimass.errors import AimassError
from aimass.http.answers import (
    REQUEST_ID_HEADER,
    Call,
    choose_request_id,
    client_error,
    declared_length_refusal,
    error_body,
    too_large,
)
from aimass.http.hot_routes import RESPOND_ASYNC, HotRoute, HotTable
from aimass.http.media import MULTIPART, accepted_media

if TYPE_CHECKING:
    from aimass.http.metered import MeteringGate
    from aimass.serving.updater import ModelUpdater
    from aimass.settings import Settings

ASGIApp = Callable[..., Any]
Headers = list[tuple[str, str]]
# Mangum's default: the bodies it answers as text, every other one base64-encoded.
TEXT_MIME_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/vnd.api+json",
    "application/vnd.oai.openapi",
)


@dataclass(frozen=True, slots=True)
class EventRequest:
    """An API Gateway proxy event, read as Mangum reads it into an ASGI scope."""

    http_api: bool  # an HTTP API payload 2.0 (else REST, or HTTP API 1.0: answered in REST's shape)
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased; values as Starlette reads them (latin-1 of the UTF-8)
    body: bytes
    gateway_id: str | None


def read_event(event: object) -> EventRequest | None:
    """The request of an API Gateway proxy event; None for any other (Mangum answers those)."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    if not isinstance(context, dict) or "elb" in context:
        return None
    if "version" in event:
        http_api = event["version"] == "2.0"
    elif "resource" in event:
        http_api = False
    else:
        return None
    if http_api:
        http = context.get("http")
        if not isinstance(http, dict):
            return None
        headers = _headers_read(event.get("headers", {}), None)
        if event.get("cookies") and headers is not None:
            headers["cookie"] = _as_read("; ".join(event["cookies"]))
        method, path = http.get("method"), http.get("path")
    else:
        headers = _headers_read(event.get("headers") or {}, event.get("multiValueHeaders"))
        method, path = event.get("httpMethod"), event.get("path")
    if headers is None or not isinstance(method, str) or not (path is None or isinstance(path, str)):
        return None
    found = context.get("requestId")
    return EventRequest(
        http_api,
        method,
        unquote(path) if path else "/",
        headers,
        _body(event),
        found if isinstance(found, str) and found else None,
    )


def _headers_read(single: object, multi: object) -> dict[str, str] | None:
    """The event's headers as Mangum puts them in the scope (names lower-cased; a REST event's multi-value ones
    joined, over the single ones) and Starlette reads them back; None where they are not strings."""
    if not isinstance(single, dict) or not (multi is None or isinstance(multi, dict)):
        return None
    read: dict[str, str] = {}
    for name, value in single.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return None
        read[_as_read(name.lower())] = _as_read(value)
    for name, values in (multi or {}).items():
        if not isinstance(name, str) or not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            return None
        read[_as_read(name.lower())] = _as_read(", ".join(values))
    return read


def _as_read(text: str) -> str:
    # Mangum encodes the event's strings as UTF-8 and Starlette decodes header bytes as latin-1.
    return text if text.isascii() else text.encode().decode("latin-1")


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or b""
    if event.get("isBase64Encoded", False):
        return base64.b64decode(body)
    return body if isinstance(body, bytes) else str(body).encode()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Headers
    body: bytes


class LambdaApp:
    """A function's app: the hot routes with a handler answered directly (``answer``), and, as an ASGI app, the
    Starlette app from ``build``, built on first need, for everything else."""

    def __init__(
        self,
        table: HotTable,
        settings: Settings,
        build: Callable[[], ASGIApp],
        *,
        updater: ModelUpdater | None,
        gate: MeteringGate | None,
    ) -> None:
        self.table = table
        self.limit = settings.max_body_bytes  # a Lambda's body comes whole with its event: no per-path limits
        self.updater = updater
        self.gate = gate
        self._build = build
        self._built: ASGIApp | None = None

    @property
    def asgi(self) -> ASGIApp:
        if self._built is None:
            self._built = self._build()
        return self._built

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)

    def route(self, request: EventRequest) -> tuple[HotRoute, dict[str, str]] | None:
        """The direct route the request takes with its path parameters; None where the ASGI app must answer."""
        if request.method != "POST" or request.headers.get("content-type", "").startswith(MULTIPART):
            return None  # a form is read by Starlette's parser: the ASGI route reads it
        for pattern, declared in self.table.direct:
            found = pattern.match(request.path)
            if found is not None:
                route = declared()
                if route.call is None:
                    return None  # a form or a stream: the ASGI route answers it
                if self.table.deferred and RESPOND_ASYNC in request.headers.get("prefer", "").lower():
                    return None  # it may be answered 202 and run as a batch: the ASGI route knows how
                return route, found.groupdict()
        return None

    def answer(self, request: EventRequest, route: HotRoute, params: dict[str, str]) -> Reply:
        """The request through the ASGI app's steps, outermost first: its id, the declared body size, the model
        update check, metering, then the route (its media type, body size and handler) and its errors. Run in a
        context of its own, as each ASGI request runs in a task of its own: the tenant and meter it sets end with it.
        """
        return contextvars.copy_context().run(self._answer, request, route, params)

    def _answer(self, request: EventRequest, route: HotRoute, params: dict[str, str]) -> Reply:
        path = request.path
        request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER), request.gateway_id)
        id_header = (REQUEST_ID_HEADER, request_id)
        declared = request.headers.get("content-length")
        refusal = None if declared is None else declared_length_refusal(declared, self.limit)
        if refusal is not None:
            return _with(_error(refusal, request_id, path), id_header)
        try:
            if self.updater is not None and self.updater.due():
                self.updater.check_if_due()
            if self.gate is None or is_open_path(path):
                return _with(self._run(request, route, params, request_id), id_header)
            return _with(self._metered(self.gate, request, route, params, request_id), id_header)
        except Exception as exc:  # as Starlette's outermost handler: logged, a 500 with the id to quote
            error = client_error(request.method, path, exc)
            return _error(error, request_id, path, {REQUEST_ID_HEADER: request_id})

    def _metered(
        self, gate: MeteringGate, request: EventRequest, route: HotRoute, params: dict[str, str], request_id: str
    ) -> Reply:
        from aimass.http.metered import key_of, route_label  # a function with keys: not for every cold start

        key, path = key_of(request.headers.items()), request.path
        try:  # a refusal's record is labelled as the ASGI middleware labels it, before any route is matched
            admitted = gate.admit(key, path, route_label(request.method, path, None), request.gateway_id)
        except AimassError as exc:
            return _error(exc, request_id, request.path)
        reply = self._run(request, route, params, request_id)
        settled_route = route_label(request.method, request.path, params, route.path)
        refused = gate.settle(admitted, settled_route, reply.status)
        return reply if refused is None else _error(refused, request_id, request.path)

    def _run(self, request: EventRequest, route: HotRoute, params: dict[str, str], request_id: str) -> Reply:
        """The route itself, as its ASGI endpoint runs it (``HotRoute.handler``, ``calling``), with its errors
        rendered as the app's error handlers render them."""
        assert route.call is not None  # only such routes are in the table's direct ones
        try:
            accepted_media(request.headers.get("content-type"), tuple(route.body), request.method, request.path)
            if len(request.body) > self.limit:
                raise too_large(len(request.body), self.limit)
            answer = route.call(Call(request.method, request.path, params, request.headers, request.body, request_id))
        except AimassError as exc:
            return _error(client_error(request.method, request.path, exc), request_id, request.path)
        return Reply(answer.status, _headers(answer.headers, answer.body, answer.media_type), answer.body)


def _error(error: AimassError, request_id: str, path: str, extra: Mapping[str, str] | None = None) -> Reply:
    body = error_body(error, request_id, path)
    return Reply(error.status_code, _headers({**error.headers, **(extra or {})}, body, "application/json"), body)


def _headers(given: Mapping[str, str], body: bytes, media_type: str) -> Headers:
    """A Starlette Response's headers: those given (names lower-cased), then its length and type where not given."""
    headers = [(name.lower(), value) for name, value in given.items()]
    names = {name for name, _ in headers}
    if "content-length" not in names:
        headers.append(("content-length", str(len(body))))
    if "content-type" not in names:
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"
        headers.append(("content-type", media_type))
    return headers


def _with(reply: Reply, header: tuple[str, str]) -> Reply:
    return Reply(reply.status, [*reply.headers, header], reply.body)


def shaped(request: EventRequest, reply: Reply) -> dict[str, Any]:
    """The proxy response Mangum's handler of the event's kind returns for the same status, headers and body."""
    if request.http_api:
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in reply.headers:
            if name == "set-cookie":
                cookies.append(value)
            else:
                headers[name] = f"{headers[name]},{value}" if name in headers else value
        if "content-type" not in headers:
            headers["content-type"] = "application/json"
        body, encoded = _response_body(reply.body, headers)
        out: dict[str, Any] = {"statusCode": reply.status, "body": body}
        if headers:
            out["headers"] = headers
        if cookies:
            out["cookies"] = cookies
        out["isBase64Encoded"] = encoded
        return out
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in reply.headers:
        if name in multi:
            multi[name].append(value)
        elif name in single:
            multi[name] = [single.pop(name), value]
        else:
            single[name] = value
    body, encoded = _response_body(reply.body, single)
    return {
        "statusCode": reply.status,
        "headers": single,
        "multiValueHeaders": multi,
        "body": body,
        "isBase64Encoded": encoded,
    }


def _response_body(body: bytes, headers: Mapping[str, str]) -> tuple[str, bool]:
    if body == b"":
        return "", False
    content_type = headers.get("content-type", "")
    if any(text in content_type for text in TEXT_MIME_TYPES):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


class DirectHandler:
    """The Lambda handler of a ``LambdaApp``: its direct routes answered here, every other event by ``fallback``
    (Mangum over the app), made on first need."""

    def __init__(self, app: LambdaApp, fallback: Callable[[], Callable[[Any, Any], dict[str, Any]]]) -> None:
        self.app = app
        self._fallback = fallback
        self._mangum: Callable[[Any, Any], dict[str, Any]] | None = None

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        request = read_event(event)
        found = None if request is None else self.app.route(request)
        if request is None or found is None:
            if self._mangum is None:
                self._mangum = self._fallback()
            return self._mangum(event, context)
        return shaped(request, self.app.answer(request, *found))
