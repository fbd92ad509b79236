"""The metering rules, free of any web framework: who is calling, may they, and what the request cost.

``authenticate`` turns the presented key into a ``Caller`` (``aimass.metering.key_check``, which the API Gateway
authorizer shares: keys are cached for ``key_cache_s``); ``admit`` applies the plan's request rate (a token
bucket per key, in this process: on Lambda each warm container holds its own buckets, so here a key's rate
is enforced per container; across containers API Gateway throttles each key by its plan's usage plan, whose
API key the authorizer names) and refuses a tenant already known to be over its monthly quota; ``settle``
charges the quota and writes the usage record once the answer is known, before it is sent.

``keys`` is the key store as the admin API should write to it (``ForgetfulKeyStore``): a key revoked or
rotated there is forgotten by this process's key cache at once.

Every table a request adds to is bounded (``aimass.metering.bounded``): cached keys (``KeyChecker``), the rate
buckets (``BUCKETS`` keys, least recently used evicted: a bucket left alone long enough is full again, the
same as a new one, so eviction only forgives a key that has been idle while ``BUCKETS`` others were used),
and the tenants known to be over quota (``EXHAUSTED`` tenants: forgetting one costs a refused charge in
``settle``, never a free answer). Buckets and quotas are only ever added for a valid key.

Failing closed: if the usage store cannot be reached, ``settle`` raises ServiceUnavailable and the client gets
a 503 instead of the answer. A request is then neither served for free nor billed without a record; the
client retries. (Buffering records to flush later would keep serving through an outage, but a crash before
the flush would lose them, and a lost record is revenue nobody can reconcile.)

Exactly once: a usage record is keyed by its metering id, API Gateway's request id on AWS (the same for a
retried invocation of one request) or an id this process draws. The record and its quota charge are written
as one atomic step (``UsageStore.record_billed``): a retry finds its record there and charges nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from aimass.errors import AimassError, Forbidden, QuotaExceeded, RateLimited, ServiceUnavailable
from aimass.metering.bounded import BoundedCache
from aimass.metering.key_check import KNOWN_KEYS, UNKNOWN_KEYS, ForgetfulKeyStore, KeyChecker
from aimass.metering.keys import Caller, KeyStore, Scope
from aimass.metering.meter import Metered
from aimass.metering.usage import QuotaCounter, Unavailable, UsageRecord, UsageStore
from aimass.settings import Plan, Settings

log = logging.getLogger("aimass.metering")

BUCKETS = 10_000  # keys with a rate bucket in this process
EXHAUSTED = 10_000  # tenants remembered as over their monthly quota


class TokenBucket:
    """``burst`` requests at once, then ``rate`` per second; thread-safe."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = float(burst), now
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """0 if a request may go now, else the seconds until one may."""
        with self._lock:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


def month_of(at: datetime) -> str:
    return at.strftime("%Y-%m")


def next_month(at: datetime) -> datetime:
    first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def over_quota(name: str, plan: Plan, at: datetime) -> QuotaExceeded:
    """The 429 of a tenant whose plan's monthly units are used up at ``at``: when the quota resets."""
    resets = next_month(at)
    return QuotaExceeded(
        f"monthly quota of plan '{name}' ({plan.monthly_units} units) is used up for "
        f"{month_of(at)}; it resets at {resets:%Y-%m-%dT%H:%M:%SZ}",
        param="quota",
        headers={"Retry-After": str(max(1, int((resets - at).total_seconds())))},
    )


# The limit of a charge that must be made whatever the quota (what a stream wrote was delivered).
PAST_ANY_QUOTA = 2**62


class MeteringService:
    def __init__(
        self,
        keys: KeyStore,
        usage: UsageStore,
        settings: Settings,
        *,
        memory_mb: int = 0,
        clock: Callable[[], float] = time.time,
        known_keys: int = KNOWN_KEYS,
        unknown_keys: int = UNKNOWN_KEYS,
        buckets: int = BUCKETS,
        counter: QuotaCounter | None = None,
    ) -> None:
        # ``counter``: the quota counter the usage store charges (UsageStore.record_billed), for reading what is
        # left (GET /v1/usage); None where nothing reads it here.
        self.counter = counter
        self.checker = KeyChecker(
            keys, cache_s=settings.key_cache_s, clock=clock, known_keys=known_keys, unknown_keys=unknown_keys
        )
        self.keys: KeyStore = ForgetfulKeyStore(keys, self.checker)
        self.usage = usage
        self.settings = settings
        self.memory_mb = memory_mb
        self._clock = clock
        self._buckets: BoundedCache[str, TokenBucket] = BoundedCache(buckets)
        self._exhausted: BoundedCache[str, str] = BoundedCache(EXHAUSTED)  # tenant -> the month its quota ran out in

    def now(self) -> datetime:
        return self.checker.now()

    # --- before the request ---------------------------------------------------------------------

    def authenticate(self, presented: str | None) -> Caller:
        return self.checker.authenticate(presented)

    def admit(self, caller: Caller, scope: Scope) -> None:
        """Scope, rate and known-exhausted quota; raises Forbidden, RateLimited or QuotaExceeded."""
        if scope not in caller.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope (it has: {', '.join(caller.scopes)})")
        plan = self.settings.plans.get(caller.plan)
        if plan is None:
            raise Forbidden(f"this API key's plan '{caller.plan}' does not exist; ask an administrator")
        if plan.rate_per_s is not None and plan.burst is not None:
            self._take_token(caller, plan.rate_per_s, plan.burst)
        at = self.now()
        if self._exhausted.get(caller.tenant) == month_of(at):
            raise self._over_quota(caller, at)

    def _take_token(self, caller: Caller, rate_per_s: float, burst: int) -> None:
        now = self._clock()
        bucket = self._buckets.get_or_put(caller.key_id, lambda: TokenBucket(rate_per_s, burst, now))
        wait = bucket.take(now)
        if wait > 0:
            raise RateLimited(
                f"rate limit of plan '{caller.plan}' reached ({rate_per_s:g} requests/s, burst {burst}); "
                f"retry after {wait:.2f} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def _over_quota(self, caller: Caller, at: datetime) -> QuotaExceeded:
        return over_quota(caller.plan, self.settings.plans[caller.plan], at)

    # --- after the answer, before it is sent ------------------------------------------------------

    def settle(
        self,
        *,
        metering_id: str,
        caller: Caller,
        route: str,
        at: datetime,
        status: int,
        metered: Metered | None,
        total_ms: float,
        delivered: bool = False,
    ) -> UsageRecord:
        """Charge the quota and write the record; raise QuotaExceeded (nothing billed) or ServiceUnavailable.

        ``delivered``: the answer has already gone out (a stream, settled when it ends), so there is nothing
        left to refuse: a charge that crosses the month's quota is still made and billed, since what it
        counts was written, and the tenant's next request is refused.
        """
        billed = metered is not None and 200 <= status < 400
        record = self._record(metering_id, caller, route, at, status, metered, total_ms, billed)
        try:
            if not billed:
                self.usage.record(record)
                return record
            limit = self.settings.plans[caller.plan].monthly_units
            # The record and the charge are one atomic step: a retried request (same gateway id) is neither
            # recorded nor charged twice, and a refused charge leaves no billed record behind.
            if self.usage.record_billed(record, caller.tenant, limit) != "over_quota":
                return record
            self._exhausted.put(caller.tenant, month_of(at))
            if delivered:
                self.usage.record_billed(record, caller.tenant, PAST_ANY_QUOTA)
                return record
            self.usage.record(self._record(metering_id, caller, route, at, 429, metered, total_ms, False))
        except Unavailable as exc:
            log.error("usage store unavailable; refusing request %s: %s", metering_id, exc)
            raise ServiceUnavailable(
                "usage metering is unavailable; the request was not served or billed, retry shortly"
            ) from None
        raise self._over_quota(caller, at)

    def record_refusal(self, *, metering_id: str, caller: Caller, route: str, at: datetime, error: AimassError) -> None:
        """A known caller refused before reaching a model (scope, rate, quota): recorded, not billed."""
        try:
            self.usage.record(self._record(metering_id, caller, route, at, error.status_code, None, 0.0, False))
        except Unavailable as exc:
            log.error("usage store unavailable; refusal of %s not recorded: %s", metering_id, exc)

    def _record(
        self,
        metering_id: str,
        caller: Caller,
        route: str,
        at: datetime,
        status: int,
        metered: Metered | None,
        total_ms: float,
        billed: bool,
    ) -> UsageRecord:
        unit = metered.unit if metered is not None else "requests"
        units = metered.units if metered is not None else 0
        price = self.settings.prices.get(unit, 0.0)
        return UsageRecord(
            request_id=metering_id,
            at=at,
            tenant=caller.tenant,
            key_id=caller.key_id,
            model=metered.model if metered is not None else "",
            version=metered.version if metered is not None else "",
            domain=metered.domain if metered is not None else "",
            route=route,
            unit=unit,
            units=units,
            inference_ms=round(metered.inference_ms, 3) if metered is not None else 0.0,
            total_ms=round(total_ms, 3),
            memory_mb=self.memory_mb,
            unit_price=price,
            cost=round(units * price, 12) if billed else 0.0,  # 12 places: exact cents of micro-prices, no float noise
            status=status,
            billed=billed,
        )
