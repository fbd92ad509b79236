"""Who is calling: a presented API key checked against the key store, with a short cache.

Shared by the metering service (every metered request in a function) and the API Gateway authorizer
(``aimass.metering.authorizer``), so the two refuse exactly the same keys with the same messages.

Key records are cached for ``cache_s`` (``AIMASS_KEY_CACHE_S``, 30 s): revoking, rotating or expiring a key
takes effect within that time. Unknown key ids are cached too, so a stream of made-up keys costs one lookup
per id and interval, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aimass.errors import ServiceUnavailable, Unauthorized
from aimass.metering.keys import ApiKey, Caller, KeyStore, matches, parse
from aimass.metering.usage import Unavailable

log = logging.getLogger("aimass.metering")

ASK_FOR_KEY = "send an API key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
# One message for a malformed, unknown or wrong key: nothing in it helps guess one.
INVALID_KEY = f"invalid API key; {ASK_FOR_KEY}"
MISSING_KEY = f"missing API key; {ASK_FOR_KEY}"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="aimass"'}


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a request carries (header names lower-case): ``Authorization: Bearer <key>``, else ``x-api-key``."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key is not None and key.strip() else None


class KeyChecker:
    def __init__(self, keys: KeyStore, *, cache_s: float, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def authenticate(self, presented: str | None) -> Caller:
        """The caller a valid key stands for; Unauthorized (401) or ServiceUnavailable (key store down)."""
        if not presented:
            raise Unauthorized(MISSING_KEY, headers=CHALLENGE)
        parsed = parse(presented)
        if parsed is None:
            raise Unauthorized(INVALID_KEY, headers=CHALLENGE)
        key_id, secret = parsed
        record = self._lookup(key_id)
        if record is None or not matches(record, secret):
            raise Unauthorized(INVALID_KEY, headers=CHALLENGE)
        now = self.now()
        # Past this point the caller holds the real secret: saying why it no longer works gives nothing away.
        if record.revoked_at is not None and now >= record.revoked_at:
            raise Unauthorized(f"this API key was revoked at {record.revoked_at:%Y-%m-%dT%H:%M:%SZ}", headers=CHALLENGE)
        if record.expires_at is not None and now >= record.expires_at:
            raise Unauthorized(f"this API key expired at {record.expires_at:%Y-%m-%dT%H:%M:%SZ}", headers=CHALLENGE)
        return Caller(tenant=record.tenant, key_id=record.key_id, scopes=record.scopes, plan=record.plan)

    def _lookup(self, key_id: str) -> ApiKey | None:
        now = self._clock()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        try:
            record = self.keys.get(key_id)
        except Unavailable as exc:
            # Where the store lives and why it failed is for the operators' log, not the client.
            log.error("key store unavailable; refusing a request: %s", exc)
            raise ServiceUnavailable("API keys cannot be checked right now; retry shortly") from None
        with self._lock:
            self._cache[key_id] = (now, record)
        return record
