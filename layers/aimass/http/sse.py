"""Server-sent events from a model's stream, stepped on the offload.

The stream is stepped one token at a time on the offload (a worker thread on the local server), so the event
loop never waits on the model, and every event goes out as soon as it is written. However the stream ends,
its ``close`` runs: a client that leaves (Starlette cancels the body when it sees the disconnect) stops the
model before its next step, and what was written is billed.

An error after the answer has started cannot change its status: it is sent as a last event holding the error
document of the route (``data: {"error": ...}``, which OpenAI's SDKs raise as an API error), and the stream
ends without its ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from aimass.http.errors import as_aimass_error, document
from aimass.http.offload import Offload
from aimass.protocol.generating import MeteredStream, sse

MEDIA_TYPE = "text/event-stream"


def sse_response(
    request: Request, stream: MeteredStream, offload: Offload, headers: dict[str, str]
) -> StreamingResponse:
    # Proxies and browsers must not keep a copy of an answer written for one request.
    headers = {**headers, "cache-control": "no-cache"}
    return StreamingResponse(_events(request, stream, offload), media_type=MEDIA_TYPE, headers=headers)


def _next(events: Iterator[bytes]) -> bytes | None:
    return next(events, None)


async def _events(request: Request, stream: MeteredStream, offload: Offload) -> AsyncIterator[bytes]:
    events = stream.events()
    try:
        while True:
            try:
                chunk = await offload(_next, events)
            except Exception as exc:
                yield sse(document(request.scope, as_aimass_error(request.scope, exc)))
                return
            if chunk is None:
                return
            yield chunk
    finally:
        stream.close()
