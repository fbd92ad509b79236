"""The metering rules, free of any web framework: who is calling, may they, and what the request cost.

``authenticate`` turns the presented key into a ``Caller`` (keys are cached for ``key_cache_s``: revoking,
rotating or expiring a key takes effect within that time); ``admit`` applies the plan's request rate (a token
bucket per key, in this process: on Lambda each warm container holds its own buckets, so a key's rate is
enforced per container; the stage throttle of API Gateway bounds the total at the edge) and refuses a tenant
already known to be over its monthly quota; ``settle`` charges the quota and writes the usage record once the
answer is known, before it is sent.

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
from datetime import UTC, datetime, timedelta

from aimass.errors import AimassError, Forbidden, QuotaExceeded, RateLimited, ServiceUnavailable, Unauthorized
from aimass.metering.keys import ApiKey, Caller, KeyStore, Scope, matches, parse
from aimass.metering.meter import Metered
from aimass.metering.usage import Unavailable, UsageRecord, UsageStore
from aimass.settings import Settings

log = logging.getLogger("aimass.metering")

ASK_FOR_KEY = "send an API key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
# One message for a malformed, unknown or wrong key: nothing in it helps guess one.
INVALID_KEY = f"invalid API key; {ASK_FOR_KEY}"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="aimass"'}


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


class MeteringService:
    def __init__(
        self,
        keys: KeyStore,
        usage: UsageStore,
        settings: Settings,
        *,
        memory_mb: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys, self.usage = keys, usage
        self.settings = settings
        self.memory_mb = memory_mb
        self._clock = clock
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._exhausted: dict[str, str] = {}  # tenant -> the month its quota ran out in
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- before the request ---------------------------------------------------------------------

    def authenticate(self, presented: str | None) -> Caller:
        if not presented:
            raise Unauthorized(f"missing API key; {ASK_FOR_KEY}", headers=CHALLENGE)
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
        hit = self._keys.get(key_id)
        if hit is not None and now - hit[0] < self.settings.key_cache_s:
            return hit[1]
        try:
            record = self.keys.get(key_id)
        except Unavailable as exc:
            # Where the store lives and why it failed is for the operators' log, not the client.
            log.error("key store unavailable; refusing a request: %s", exc)
            raise ServiceUnavailable("API keys cannot be checked right now; retry shortly") from None
        self._keys[key_id] = (now, record)
        return record

    def admit(self, caller: Caller, scope: Scope) -> None:
        """Scope, rate and known-exhausted quota; raises Forbidden, RateLimited or QuotaExceeded."""
        if scope not in caller.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope (it has: {', '.join(caller.scopes)})")
        plan = self.settings.plans.get(caller.plan)
        if plan is None:
            raise Forbidden(f"this API key's plan '{caller.plan}' does not exist; ask an administrator")
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller.key_id)
            if bucket is None:
                bucket = self._buckets[caller.key_id] = TokenBucket(plan.rate_per_s, plan.burst, now)
        wait = bucket.take(now)
        if wait > 0:
            raise RateLimited(
                f"rate limit of plan '{caller.plan}' reached ({plan.rate_per_s:g} requests/s, burst {plan.burst}); "
                f"retry after {wait:.2f} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        at = self.now()
        if self._exhausted.get(caller.tenant) == month_of(at):
            raise self._over_quota(caller, at)

    def _over_quota(self, caller: Caller, at: datetime) -> QuotaExceeded:
        plan = self.settings.plans[caller.plan]
        resets = next_month(at)
        return QuotaExceeded(
            f"monthly quota of plan '{caller.plan}' ({plan.monthly_units} units) is used up for "
            f"{month_of(at)}; it resets at {resets:%Y-%m-%dT%H:%M:%SZ}",
            param="quota",
            headers={"Retry-After": str(max(1, int((resets - at).total_seconds())))},
        )

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
    ) -> UsageRecord:
        """Charge the quota and write the record; raise QuotaExceeded (nothing billed) or ServiceUnavailable."""
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
            with self._lock:
                self._exhausted[caller.tenant] = month_of(at)
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
