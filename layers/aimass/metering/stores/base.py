"""What the metering backends share: the errors of the key stores, and how times and usage fields are stored.

Both key stores keep the same rules: ``add`` never overwrites (a conditional write), ``revoke`` only ever
moves ``revoked_at`` earlier (so revoking a key still in a rotation's grace period ends it now, and revoking
twice keeps the first time). Times are stored as fixed-width UTC ISO strings (``stored_time``), whose text
order is their time order: both backends compare them as strings inside the conditional write.

Errors of the key stores (each an ``AimassError`` whose message names the store):

    KeyExists            409  add() of a key id that is already stored
    NotFound             404  revoke() of an unknown key id
    MeteringUnavailable  503  the store cannot be reached or refused the request (the reason, no traceback)

Both usage stores keep the promises of ``aimass.metering.usage``: a record is written once per request id
(a retried invocation writes nothing), and a billed record's charge either fits within the limit and is
written with the record, or is refused and nothing is written, atomically however many threads, processes
or Lambda instances bill at once. Atomicity lives in the store, never in this process: one transaction with
a conditional ``UPDATE`` in SQLite, one ``TransactWriteItems`` with a conditional update in DynamoDB.

A usage store that cannot be reached, or refuses a write for any other reason, raises ``Unavailable`` with
the reason; the HTTP layer answers 503 rather than serve a request it cannot meter.

Usage times are stored as ISO-8601 UTC strings with microseconds (``2026-03-01T12:00:00.000000+00:00``,
``stamp``), which sort as the times they name, in both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aimass.errors import AimassError, ServiceUnavailable
from aimass.metering.usage import Unavailable

# The fields of a ``UsageRecord`` by how they are stored, but for ``at`` (a ``stamp``) and ``billed``.
USAGE_INTEGERS = ("units", "memory_mb", "status")
USAGE_FLOATS = ("inference_ms", "total_ms", "unit_price", "cost")
USAGE_STRINGS = ("request_id", "tenant", "key_id", "model", "version", "domain", "route", "unit")


class KeyExists(AimassError):
    status_code = 409
    code = "key_exists"
    error_type = "invalid_request_error"


class MeteringUnavailable(ServiceUnavailable, Unavailable):
    """The metering store cannot be reached or refused a request: nothing is served without it.

    Also a ``usage.Unavailable``, so the metering service treats an unreachable key store as it treats an
    unreachable usage store (fail closed, 503).
    """


def stored_time(at: datetime) -> str:
    """``2026-01-02T03:04:05.000006+00:00``: UTC, microseconds always written, so text order is time order."""
    if at.tzinfo is None:
        raise ValueError(f"key times must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def stamp(at: datetime) -> str:
    """A usage time as stored: UTC, microseconds always written (a naive time is taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")
