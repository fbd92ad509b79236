"""Metering a request, whichever adapter carries it: the key checked before the route runs, the usage settled after.

The ASGI middleware (``aimass.http.middleware.metering``) and a function's direct Lambda path
(``aimass.http.lambda_direct``) both go through one ``MeteringGate``, so a request is refused, recorded and billed
alike on either. Nothing here imports the web stack.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aimass.errors import AimassError
from aimass.metering.key_check import presented_key
from aimass.metering.keys import Caller
from aimass.metering.meter import Meter, open_meter
from aimass.metering.service import MeteringService
from aimass.serving.tenancy import acting_for

if TYPE_CHECKING:
    from aimass.observability import Observer

ADMIN_PREFIX = "/v1/admin/"
_KEY_HEADERS = ("authorization", "x-api-key")


def key_of(headers: Iterable[tuple[str, str]]) -> str | None:
    """The API key the request presents, from its (lower-cased name, value) headers."""
    return presented_key({name: value for name, value in headers if name in _KEY_HEADERS})


def route_label(method: str, path: str, path_params: Mapping[str, object] | None, template: str | None = None) -> str:
    """``POST /v2/models/{name}/infer``: the route's template where the router named it, else the path with the
    matched parameters' names put back, so reports group by route."""
    if template is None:
        by_value = {str(value): name for name, value in (path_params or {}).items()}
        template = "/".join(f"{{{by_value[part]}}}" if part in by_value else part for part in path.split("/"))
    return f"{method} {template}"


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request let through: who sent it, and what its usage record will need."""

    caller: Caller
    metering_id: str
    at: datetime
    started: float
    meter: Meter


class MeteringGate:
    def __init__(self, service: MeteringService, observer: Observer | None = None) -> None:
        self.service = service
        self.observer = observer
        self._cold = True  # the container's first record is marked as its cold start's

    def admit(self, key: str | None, path: str, route: str, gateway_id: str | None) -> Admitted:
        """Check the key (scope, rate, quota): the request's meter opened, its tenant set, or an AimassError raised
        once a known caller's refusal is recorded. ``route`` labels that refusal's record."""
        started, at = time.perf_counter(), self.service.now()
        # API Gateway's id is the same for a retried invocation of one request: the record is written once.
        metering_id = gateway_id or uuid.uuid4().hex
        caller: Caller | None = None
        try:
            caller = self.service.authenticate(key)
            self.service.admit(caller, "admin" if path.startswith(ADMIN_PREFIX) else "invoke")
        except AimassError as exc:
            if caller is not None:
                self.service.record_refusal(metering_id=metering_id, caller=caller, route=route, at=at, error=exc)
            raise
        acting_for(caller.tenant)  # models scoped to another tenant are not this caller's to see
        return Admitted(caller, metering_id, at, started, open_meter())

    def settle(self, admitted: Admitted, route: str, status: int, *, delivered: bool = False) -> AimassError | None:
        """Record (and bill) the answer; the error that replaces it where the charge is refused, else None."""
        try:
            record = self.service.settle(
                metering_id=admitted.metering_id,
                caller=admitted.caller,
                route=route,
                at=admitted.at,
                status=status,
                metered=admitted.meter.metered,
                total_ms=(time.perf_counter() - admitted.started) * 1e3,
                delivered=delivered,
            )
        except AimassError as exc:
            return exc
        if self.observer is not None:
            self.observer.request(record, cold_start=self._cold)
        self._cold = False
        return None
