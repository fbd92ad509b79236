"""Who is calling: a presented API key checked against the key store, with a short, bounded cache.

Shared by the metering service (every metered request in a function) and the API Gateway authorizer
(``aimass.metering.authorizer``), so the two refuse exactly the same keys with the same messages.

Key records are cached for ``cache_s`` (``AIMASS_KEY_CACHE_S``, 30 s): revoking, rotating or expiring a key
in another process (the CLI, another container's admin API) takes effect here within that time. A key
changed through this process's own key store (``ForgetfulKeyStore``, what the admin API writes through) is
forgotten at once, so the next request reads it again.

The cache is bounded, since clients choose what they present. Records of existing keys are held apart from
the ids found unknown, each in a ``BoundedCache`` of its own (``KNOWN_KEYS``, ``UNKNOWN_KEYS`` entries,
least recently used evicted, expired entries dropped): a flood of made-up keys evicts only other made-up
keys, and the real ones stay cached. An unknown id costs one store lookup per id and interval, not one per
request; a stream of distinct ids costs one lookup each, a single primary-key read, like any new key's. No
budget caps those lookups: it could not tell a made-up id from a real key not yet cached, so a flood would
lock out real clients instead of costing a read each. On AWS, API Gateway's stage throttle bounds the rate of
requests that reach the check at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aimass.contract import ASK_FOR_KEY, KEY_CHALLENGE
from aimass.errors import ServiceUnavailable, Unauthorized
from aimass.metering.bounded import BoundedCache
from aimass.metering.keys import ApiKey, Caller, KeyStore, matches, parse
from aimass.metering.usage import Unavailable

log = logging.getLogger("aimass.metering")

# One message for a malformed, unknown or wrong key: nothing in it helps guess one.
INVALID_KEY = f"invalid API key; {ASK_FOR_KEY}"
MISSING_KEY = f"missing API key; {ASK_FOR_KEY}"
CHALLENGE = dict(KEY_CHALLENGE)


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a request carries (header names lower-case): ``Authorization: Bearer <key>``, else ``x-api-key``."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key is not None and key.strip() else None


# Entries, not bytes: a cached record takes about 1.7 KB, an unknown id about 0.25 KB (17 MB and 1 MB when full).
# Records are bounded anyway by the keys that exist (only a real key id adds one); unknown ids are what a client
# can make up without end, hence the smaller bound.
KNOWN_KEYS = 10_000
UNKNOWN_KEYS = 4_096


class KeyChecker:
    def __init__(
        self,
        keys: KeyStore,
        *,
        cache_s: float,
        clock: Callable[[], float] = time.time,
        known_keys: int = KNOWN_KEYS,
        unknown_keys: int = UNKNOWN_KEYS,
    ) -> None:
        self.keys = keys
        self.cache_s = cache_s
        self._clock = clock
        self._known: BoundedCache[str, ApiKey] = BoundedCache(known_keys, ttl_s=cache_s, clock=clock)
        self._unknown: BoundedCache[str, bool] = BoundedCache(unknown_keys, ttl_s=cache_s, clock=clock)
        # Bumped by forget(): a lookup that read the store before a forget must not cache what it read.
        self._forgotten = 0
        self._lock = threading.Lock()

    @property
    def cached(self) -> int:
        """Key ids cached now, known and unknown; never more than ``max_cached``."""
        return len(self._known) + len(self._unknown)

    @property
    def max_cached(self) -> int:
        return self._known.max_entries + self._unknown.max_entries

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def forget(self, key_id: str) -> None:
        """Drop what is cached for ``key_id``: the next request with it reads the store again."""
        with self._lock:
            self._forgotten += 1
            self._known.pop(key_id)
            self._unknown.pop(key_id)

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
        cached = self._known.get(key_id)
        if cached is not None or self._unknown.get(key_id):
            return cached
        forgotten = self._forgotten
        try:
            record = self.keys.get(key_id)
        except Unavailable as exc:
            # Where the store lives and why it failed is for the operators' log, not the client.
            log.error("key store unavailable; refusing a request: %s", exc)
            raise ServiceUnavailable("API keys cannot be checked right now; retry shortly") from None
        with self._lock:
            if forgotten == self._forgotten:
                if record is None:
                    self._unknown.put(key_id, True)
                else:
                    self._known.put(key_id, record)
        return record


class ForgetfulKeyStore:
    """A key store whose writes make a ``KeyChecker`` forget the key ids written.

    The admin API of a process that also checks keys writes through it: a key revoked or rotated there is
    read again on its next request in this process, so a revocation takes effect at once (and a rotated key's
    new ``revoked_at``, the end of its grace period, applies as soon as it is set). Other processes keep
    their cached record for up to their ``cache_s``. The checker forgets even when a write fails, since a
    write that timed out may still have been applied; forgetting costs at most one lookup.
    """

    def __init__(self, store: KeyStore, checker: KeyChecker) -> None:
        self.store = store
        self.checker = checker

    def add(self, key: ApiKey) -> None:
        try:
            self.store.add(key)
        finally:
            self.checker.forget(key.key_id)  # the id may have been cached as unknown

    def get(self, key_id: str) -> ApiKey | None:
        return self.store.get(key_id)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        return self.store.list(tenant)

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        try:
            return self.store.revoke(key_id, at)
        finally:
            self.checker.forget(key_id)
