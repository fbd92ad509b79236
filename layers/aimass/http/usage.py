"""``GET /v1/usage``: a tenant's usage in time buckets, in the shape of OpenAI's organization usage API.

    GET /v1/usage?start_time=1772323200&end_time=1772409600&bucket_width=1h&group_by=model&group_by=key

A caller (``request.state.caller``, set by the metering middleware once its key checks out) sees its own
tenant's usage only. ``tenant=<name>`` reads another tenant's and ``tenant=*`` every tenant's: both need
a key with the ``admin`` scope. The buckets come in pages (``limit``, ``page`` = the previous answer's
``next_page``); a range of more buckets than ``aimass.metering.reports.MAX_BUCKETS`` is refused.

The first page of a caller's own usage also carries ``quota``: its key's plan, the month's units charged to the
tenant's counter (the one that refuses requests with a 429) and what is left of them, and when they reset, so a
client (the console) can say how much is left without an admin key. OpenAI's clients ignore the extra field.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from aimass.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable
from aimass.http.error_docs import KEYED, responses
from aimass.metering.keys import TENANT, Caller
from aimass.metering.reports import BUCKET_WIDTHS, GROUPS, usage_buckets
from aimass.metering.service import next_month
from aimass.metering.usage import QuotaCounter, Unavailable, UsageStore, period_of
from aimass.protocol import wire
from aimass.settings import Settings

log = logging.getLogger("aimass.http")

EVERY_TENANT = "*"
# ``key`` is this API's short name for OpenAI's ``api_key_id``.
_GROUP_NAMES = {"key": "api_key_id", **{name: name for name in GROUPS}}
_LATEST = 253402300799  # 9999-12-31T23:59:59Z: the last second a datetime holds
# Buckets per page by width, (default, most): OpenAI's usage API's.
_PAGE_SIZES = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
# Documented, not enforced by FastAPI: the route's own checks say what is wrong in words (aimass.protocol.wire).
_DIGITS = {"pattern": "^[0-9]{1,18}$"}
_GROUP_NAMES_DOC = {"items": {"type": "string", "enum": list(_GROUP_NAMES)}}
_TENANT_DOC = {"pattern": rf"^(\*|{TENANT.pattern.strip('^$')})$"}


def usage_router(store: UsageStore, settings: Settings, *, counter: QuotaCounter | None = None) -> APIRouter:
    """``counter``: the quota counter requests are charged to (the metering service's); without one, the settings'
    is opened on the first read of a quota."""
    router = APIRouter(prefix="/v1", tags=["Usage"])
    counters = functools.cache(lambda: counter if counter is not None else _open_counter(settings))

    # A plain (not async) endpoint: FastAPI runs it in a worker thread, as the store blocks.
    @router.get("/usage", summary="Usage in time buckets", responses=responses(InvalidInput, NotFound, *KEYED))
    def usage(
        request: Request,
        start_time: Annotated[str, Query(description="start of the range, unix seconds", json_schema_extra=_DIGITS)],
        end_time: Annotated[
            str | None, Query(description="end of the range (excluded), unix seconds; now", json_schema_extra=_DIGITS)
        ] = None,
        bucket_width: Annotated[
            str, Query(description="1m, 1h or 1d", json_schema_extra={"enum": list(BUCKET_WIDTHS)})
        ] = "1d",
        group_by: Annotated[
            list[str] | None, Query(description="model, key (api_key_id), route", json_schema_extra=_GROUP_NAMES_DOC)
        ] = None,
        tenant: Annotated[
            str | None,
            Query(description="another tenant, or * for all (admin keys only)", json_schema_extra=_TENANT_DOC),
        ] = None,
        limit: Annotated[
            str | None,
            Query(
                description="buckets per page (1d: 7, at most 31; 1h: 24, 168; 1m: 60, 1440)", json_schema_extra=_DIGITS
            ),
        ] = None,
        page: Annotated[str | None, Query(description="the next_page of the previous answer")] = None,
    ) -> dict[str, Any]:
        if settings.metering == "off":
            raise NotFound("usage is not recorded: this server runs with metering off (AIMASS_METERING=off)")
        caller = getattr(request.state, "caller", None)
        if not isinstance(caller, Caller):
            raise Forbidden("reading usage needs an API key")
        whose = _tenant(caller, tenant)
        start = _time(start_time, "start_time")
        end = _time(end_time, "end_time") if end_time is not None else _now()
        # group_by[] is how OpenAI's SDKs spell a list in a query string.
        names = [*(group_by or ()), *request.query_params.getlist("group_by[]")]
        grouped = [_group(name) for name in names]
        if bucket_width not in BUCKET_WIDTHS:
            raise InvalidInput(
                f"bucket_width must be one of {', '.join(BUCKET_WIDTHS)}, got {bucket_width!r}", param="bucket_width"
            )
        if end <= start:
            raise InvalidInput(
                f"end_time ({int(end.timestamp())}) must be after start_time ({int(start.timestamp())})",
                param="end_time",
            )
        try:
            records = list(store.query(start, end, None if whose == EVERY_TENANT else whose))
        except Unavailable as exc:
            # The reason (table, endpoint) is for operators: the log has it, the client a short answer.
            log.error("usage store unavailable; GET /v1/usage refused: %s", exc)
            raise ServiceUnavailable("usage cannot be read now; retry shortly") from None
        buckets = usage_buckets(records, start, end, bucket_width, grouped)
        size = _limit(limit, bucket_width)
        first = _page(page, buckets)
        more = first + size < len(buckets)
        answer: dict[str, Any] = {
            "object": "page",
            "data": buckets[first : first + size],
            "has_more": more,
            "next_page": str(buckets[first + size]["start_time"]) if more else None,
        }
        if first == 0 and whose == caller.tenant:
            answer["quota"] = _quota(counters, caller, settings)
        return answer

    return router


def _open_counter(settings: Settings) -> QuotaCounter:
    from aimass.metering.stores.usage_factory import open_usage

    return open_usage(settings)[1]


def _quota(counter: Callable[[], QuotaCounter], caller: Caller, settings: Settings) -> dict[str, Any] | None:
    """The caller's plan and what its tenant has used of it this month; None for a plan the server lacks."""
    plan = settings.plans.get(caller.plan)
    if plan is None:
        return None
    at = datetime.now(UTC)
    try:
        used = counter().used(caller.tenant, period_of(at))
    except Unavailable as exc:
        log.error("quota counter unavailable; GET /v1/usage answered without its quota: %s", exc)
        return None
    return {
        "plan": caller.plan,
        "period": period_of(at),
        "monthly_units": plan.monthly_units,
        "used_units": used,
        "remaining_units": max(0, plan.monthly_units - used),
        "resets_at": int(next_month(at).timestamp()),
    }


def _tenant(caller: Caller, asked: str | None) -> str:
    if asked is None or asked == caller.tenant:
        return caller.tenant
    if asked != EVERY_TENANT and not TENANT.fullmatch(asked):
        raise InvalidInput(
            f"tenant must be a tenant name (lower-case letters, digits, '.', '_', '-') or *, got {asked!r}",
            param="tenant",
        )
    if not caller.is_admin:
        raise Forbidden(f"tenant {caller.tenant!r} may read only its own usage; another tenant's needs an admin key")
    return asked


def _time(raw: str, param: str) -> datetime:
    if raw == "":
        raise InvalidInput(f"{param} is required, in unix seconds", param=param)
    seconds = wire.decimal(raw)
    if seconds is None:
        raise InvalidInput(
            f"{param} must be a whole number of unix seconds in decimal digits, got {raw!r}", param=param
        )
    if not 0 <= seconds <= _LATEST:
        raise InvalidInput(f"{param} must be between 0 and {_LATEST} (unix seconds), got {seconds}", param=param)
    return datetime.fromtimestamp(seconds, UTC)


def _now() -> datetime:
    return datetime.fromtimestamp(math.ceil(time.time()), UTC)


def _limit(raw: str | None, width: str) -> int:
    default, most = _PAGE_SIZES[width]
    if raw is None or raw == "":
        return default
    size = wire.decimal(raw)
    if size is None:
        raise InvalidInput(f"limit must be a whole number in decimal digits, got {raw!r}", param="limit")
    if not 1 <= size <= most:
        raise InvalidInput(f"limit must be between 1 and {most} for bucket_width {width}, got {size}", param="limit")
    return size


def _page(raw: str | None, buckets: list[dict[str, Any]]) -> int:
    """The index of the bucket a ``next_page`` cursor (that bucket's start_time) names."""
    if raw is None or raw == "":
        return 0
    for index, bucket in enumerate(buckets):
        if str(bucket["start_time"]) == raw:
            return index
    raise InvalidInput(f"page {raw!r} is not a next_page of this range and bucket_width", param="page")


def _group(name: str) -> str:
    if name not in _GROUP_NAMES:
        raise InvalidInput(f"group_by must be one of model, key, api_key_id, route; got {name!r}", param="group_by")
    return _GROUP_NAMES[name]
