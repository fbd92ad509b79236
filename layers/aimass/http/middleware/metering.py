"""The metering middleware: every model route needs a key, and every request it serves leaves one usage record.

Open without a key: liveness and readiness, server metadata, the API documents, ``/metrics`` and the console
(``aimass.contract.is_open_path``, which API Gateway leaves open too). The listings a front function asks its
peers for (``aimass.http.peers``) carry a marker only a direct invocation can set (``aimass.http.gateway``), so
peers answer their front function without a key and clients still need one.

The answer of a billed request (one whose runtime ran: ``aimass.metering.meter``) is held until it is settled
(``MeteringService.settle``): a request whose quota charge is refused gets a 429 instead, and one whose usage
cannot be recorded gets a 503, never a free answer. Those answers are whole JSON documents, so holding one
costs a list of its chunks. A request with nothing to bill (a file download, say) is settled as its answer
starts, before any of its body is sent, and the body then streams through: a 512 MiB file is never held in
memory, and a usage store that cannot be written still turns it into a 503. Its record's total_ms is then the
time to the answer's start.

A streamed answer (``aimass.metering.meter.streaming``: server-sent events, written as the model writes) is
neither held nor settled at its start: its body goes out as it comes, and it is settled once the body has
ended, with what the stream noted it consumed. What it wrote has then been sent, so a charge refused at that
point no longer changes the answer: a stream that crosses the month's quota is billed in full, for it was
delivered, and the quota check refuses the tenant's next request; a usage store that cannot be written is
logged.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimass.contract import is_open_path
from aimass.errors import AimassError
from aimass.http import gateway
from aimass.http.errors import render
from aimass.http.metered import Admitted, MeteringGate, key_of, route_label
from aimass.http.peers import LISTING_PATHS
from aimass.serving.tenancy import acting_for

log = logging.getLogger("aimass.metering")


def _route(scope: Scope) -> str:
    """``POST /v2/models/{name}/infer``: the path with its parameters named, so reports group by route."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return route_label(
        scope.get("method", ""),
        str(scope.get("path", "")),
        scope.get("path_params"),
        template if isinstance(template, str) else None,
    )


def _key(scope: Scope) -> str | None:
    return key_of((name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", ()))


class MeteringMiddleware:
    def __init__(self, app: ASGIApp, *, gate: MeteringGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or is_open_path(path):
            await self.app(scope, receive, send)
            return
        if path in LISTING_PATHS and gateway.from_peer(scope):
            acting_for(gateway.peer_tenant(scope))  # the front function's caller's tenant: what it may see
            await self.app(scope, receive, send)
            return
        try:
            admitted = self.gate.admit(_key(scope), path, _route(scope), gateway.request_id(scope))
        except AimassError as exc:
            await render(scope, exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = admitted.caller
        await self._metered(admitted, scope, receive, send)

    async def _metered(self, admitted: Admitted, scope: Scope, receive: Receive, send: Send) -> None:
        meter = admitted.meter
        held: list[Message] = []
        streaming = False
        settle_at_end: int | None = None  # a streamed answer's status, settled once its body has ended
        refused: AimassError | None = None

        def settle(status: int, *, delivered: bool = False) -> bool:
            nonlocal refused
            refused = self.gate.settle(admitted, _route(scope), status, delivered=delivered)
            return refused is None

        async def forward(message: Message) -> None:
            nonlocal streaming, settle_at_end
            if refused is not None:
                return  # the app's answer was replaced by the refusal
            if streaming:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.start" and meter.metered is None and meter.streaming:
                streaming, settle_at_end = True, int(message["status"])
                await send(message)
                held.clear()
                return
            if message["type"] == "http.response.start" and meter.metered is None and settle(int(message["status"])):
                streaming = True  # nothing billed: the record is written, the body streams
                for start in held:
                    await send(start)
                held.clear()

        try:
            await self.app(scope, receive, forward)
        finally:
            if settle_at_end is not None and not settle(settle_at_end, delivered=True):
                log.error("streamed request %s was answered but not settled: %s", admitted.metering_id, refused)
        if settle_at_end is not None:
            return
        if not streaming and refused is None:
            status = next((int(m["status"]) for m in held if m["type"] == "http.response.start"), 500)
            settle(status)
        if refused is not None:
            await render(scope, refused)(scope, receive, send)
            return
        for message in held:
            await send(message)
