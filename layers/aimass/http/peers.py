"""The other domain functions, as the front function sees them: for the listings of the whole namespace.

On AWS every domain is its own function and knows only its own models, yet ``GET /v1/models`` and
``POST /v2/repository/index`` must list every model under the base URL. API Gateway sends those two routes
to the front function, which asks each peer for its own list and merges it with its own. A peer is asked
with a direct Lambda invocation carrying an API Gateway event, so it answers through the very routes it
serves to clients: one code path, no private protocol between functions.

The answers are cached for a few seconds (``AIMASS_PEER_CACHE_S``): a listing is a rare, cheap call for a
client, and without the cache each one would wake every domain function. A peer that fails to answer does
not fail the listing: its catalogued models are reported ``UNAVAILABLE`` with the reason in the V2 index,
and left out of ``/v1/models`` (which lists only what can be called).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from aimass import aws
from aimass.http.gateway import listing_event
from aimass.protocol.openai import ModelCard, ModelList
from aimass.protocol.v2_types import RepositoryModel
from aimass.serving.registry import ModelState
from aimass.serving.tenancy import current_tenant
from aimass.settings import PeerSpec

log = logging.getLogger("aimass.http.peers")

# (function name, API Gateway event) -> the function's API Gateway proxy response.
Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
T = TypeVar("T")

INDEX_PATH = "/v2/repository/index"
MODELS_PATH = "/v1/models"
LISTING_PATHS = frozenset({INDEX_PATH, MODELS_PATH})  # what a peer answers its front function without a key
MAX_CACHED = 2048  # listings kept, two per tenant: a bound on what callers' keys can make the cache hold
_INDEX = TypeAdapter(list[RepositoryModel])


class PeerError(Exception):
    """A peer did not answer a listing; the message says how."""


class Peers:
    """Asks the peer functions for their listings, concurrently, and caches the answers for ``ttl_s``."""

    def __init__(
        self,
        specs: Sequence[PeerSpec],
        invoke: Invoke,
        *,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.specs = tuple(specs)
        self._invoke = invoke
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        # Two entries per tenant that lists ("states", "cards"), dropped together past MAX_CACHED.
        self._cache: dict[tuple[str, str | None], tuple[float, Any]] = {}

    def states(self, request_id: str = "") -> list[ModelState]:
        """Every peer's models as its V2 repository index reports them (UNAVAILABLE if it cannot answer), as the
        caller's tenant may see them (``aimass.serving.tenancy``)."""
        tenant = current_tenant()

        def ask(peer: PeerSpec) -> list[ModelState]:
            try:
                listed = self._call(peer, "POST", INDEX_PATH, request_id, _INDEX.validate_json, tenant)
            except PeerError as exc:
                reason = f"domain function '{peer.domain}' did not answer: {exc}"
                return [ModelState(name, "", "UNAVAILABLE", reason) for name in peer.models]
            return [ModelState(m.name, m.version, m.state, m.reason) for m in listed]

        return self._cached(("states", tenant), ask)

    def cards(self, request_id: str = "") -> list[ModelCard]:
        """Every peer's callable models, as its ``/v1/models`` lists them for the caller's tenant (none from a peer
        that fails)."""
        tenant = current_tenant()

        def ask(peer: PeerSpec) -> list[ModelCard]:
            try:
                return self._call(peer, "GET", MODELS_PATH, request_id, ModelList.model_validate_json, tenant).data
            except PeerError:
                return []

        return self._cached(("cards", tenant), ask)

    def _cached(self, key: tuple[str, str | None], ask: Callable[[PeerSpec], list[T]]) -> list[T]:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and self._clock() - hit[0] < self._ttl_s:
                cached: list[T] = hit[1]
                return cached
        if not self.specs:
            return []
        with ThreadPoolExecutor(max_workers=len(self.specs), thread_name_prefix="aimass-peer") as pool:
            answers = [item for items in pool.map(ask, self.specs) for item in items]
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (self._clock(), answers)
        return answers

    def _call(
        self,
        peer: PeerSpec,
        method: str,
        path: str,
        request_id: str,
        parse: Callable[[bytes], T],
        tenant: str | None = None,
    ) -> T:
        try:
            response = self._invoke(peer.function, listing_event(method, path, request_id, tenant))
        except Exception as exc:  # any transport failure is the peer's, never the client's
            log.warning("peer %s (%s) did not answer %s %s: %s", peer.domain, peer.function, method, path, exc)
            raise PeerError(type(exc).__name__) from exc
        status = response.get("statusCode")
        if status != 200:
            log.warning("peer %s answered %s %s with status %s", peer.domain, method, path, status)
            raise PeerError(f"status {status}")
        body = response.get("body") or ""
        raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
        try:
            return parse(raw)
        except ValidationError as exc:
            log.warning("peer %s answered %s %s with an unexpected body: %s", peer.domain, method, path, exc)
            raise PeerError("unexpected answer") from exc


def lambda_invoke(client: Any) -> Invoke:
    """``Invoke`` over a boto3 Lambda client (synchronous ``RequestResponse`` invocations)."""

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        answer = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise PeerError(f"function error {answer['FunctionError']}: {payload[:200]!r}")
        response: dict[str, Any] = json.loads(payload)
        return response

    return invoke


def peers_from_settings(specs: Sequence[PeerSpec], ttl_s: float, timeout_s: float) -> Peers | None:
    """The front function's peers over boto3, or None where there are none (the local server, a peer)."""
    if not specs:
        return None
    # boto3 is imported when the client is made: only a front function pays for it. A peer may have to start
    # before it answers: its answer is the one wait aimass.aws leaves to a setting.
    return Peers(specs, lambda_invoke(aws.client("lambda", read_timeout_s=timeout_s)), ttl_s=ttl_s)
