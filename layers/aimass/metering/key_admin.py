"""What an operator does with keys (create, list, revoke, rotate), shared by the ``aimass keys`` commands and
the admin API: the rules live here, the store only keeps records.

Every function takes ``now`` (UTC, timezone-aware) so the rules are tested without a clock. Wrong values
raise ``InvalidInput`` naming the field; an unknown key id raises ``NotFound``; a key that is no longer valid
cannot be rotated (``KeyRevoked``, ``KeyExpired``: 409).

``edge`` mirrors keys at API Gateway (``aimass.metering.edge_keys``; none locally). A new key gets its edge key
before it is stored, so a key is never issued that the edge would refuse; a revoked key loses its edge key
after the store has it revoked, so a failure there leaves only a stale edge key, which the authorizer never
hands out for a revoked key and ``sync_edge`` deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, get_args

from aimass.errors import AimassError, HTTPRefusal, InvalidInput, NotFound
from aimass.metering.edge_keys import EdgeKeys, NoEdge, Synced, sync
from aimass.metering.keys import KEY_ID, TENANT, ApiKey, KeyStore, Scope, new_key, parse
from aimass.settings import Plan

log = logging.getLogger("aimass.metering")

SCOPES: tuple[Scope, ...] = get_args(Scope)
MAX_GRACE = timedelta(days=30)
MAX_DESCRIPTION = 200
NO_EDGE = NoEdge()


class KeyEnded(HTTPRefusal):  # an HTTPRefusal, as rotate's refusal was before it had a class of its own
    """A key that is no longer valid, so there is nothing to rotate (409)."""

    status_code = 409

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=self.status_code, code=self.code)


class KeyRevoked(KeyEnded):
    code = "key_revoked"


class KeyExpired(KeyEnded):
    code = "key_expired"


class Issued(NamedTuple):
    """A key just made: its clear text (shown once, never stored) and its stored record."""

    clear_text: str
    key: ApiKey


class Rotated(NamedTuple):
    clear_text: str
    key: ApiKey  # the new key
    old: ApiKey  # the old key, with revoked_at at the end of its grace period


def create_key(
    store: KeyStore,
    *,
    tenant: str,
    scopes: Sequence[str],
    plan: str,
    plans: Mapping[str, Plan],
    expires_at: datetime | None = None,
    description: str = "",
    now: datetime,
    edge: EdgeKeys = NO_EDGE,
) -> Issued:
    if not TENANT.fullmatch(tenant):
        raise InvalidInput(
            f"tenant '{tenant}' must be 1 to 63 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or a digit",
            param="tenant",
        )
    checked = _scopes(scopes)
    if plan not in plans:
        raise InvalidInput(f"plan '{plan}' is unknown; expected one of {', '.join(sorted(plans))}", param="plan")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput(
                f"expires_at {expires_at.isoformat()} must carry a time zone (e.g. 'Z' or '+00:00')", param="expires_at"
            )
        if expires_at <= now:
            raise InvalidInput(
                f"expires_at {expires_at.isoformat()} must be in the future (now is {now.isoformat()})",
                param="expires_at",
            )
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION} characters, got {len(description)}", param="description"
        )
    clear_text, record = new_key(
        tenant, checked, plan=plan, created_at=now, expires_at=expires_at, description=description
    )
    edge.register(record)
    store.add(record)
    log.info("key %s created for tenant %s (scopes %s, plan %s)", record.key_id, tenant, ",".join(checked), plan)
    return Issued(clear_text, record)


def list_keys(store: KeyStore, tenant: str | None = None) -> list[ApiKey]:
    """Every key (of ``tenant`` when given), oldest first; records carry only the secret's hash."""
    if tenant is not None and not TENANT.fullmatch(tenant):
        raise InvalidInput(f"tenant '{tenant}' is not a valid tenant name", param="tenant")
    return store.list(tenant)


def revoke_key(store: KeyStore, key_id: str, *, now: datetime, edge: EdgeKeys = NO_EDGE) -> ApiKey:
    """Revoke now; a key revoked earlier keeps its time, a rotated key still in its grace period stops now."""
    record = store.revoke(_key_id(key_id), now)
    log.info("key %s of tenant %s revoked (effective %s)", key_id, record.tenant, record.revoked_at)
    try:
        edge.retire(record.key_id)
    except AimassError as exc:  # revoked is what counts; the stale edge key refuses nobody and sync deletes it
        log.warning("key %s is revoked but its edge key stays until `aimass keys sync-edge`: %s", key_id, exc)
    return record


def sync_edge(store: KeyStore, edge: EdgeKeys, *, now: datetime) -> Synced:
    """Give every valid key its edge key and delete the edge keys of revoked, expired or unknown keys."""
    return sync(edge, store.list(), now=now)


def rotate_key(store: KeyStore, key_id: str, *, grace: timedelta, now: datetime, edge: EdgeKeys = NO_EDGE) -> Rotated:
    """A new key with the old one's tenant, scopes, plan, expiry and description; the old key keeps working
    for ``grace`` (0: it stops now), so that clients can switch without a failed request.

    The new key is stored before the old one is revoked: a failure in between leaves both working, never none.
    """
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput(
            f"grace must be between 0 and {MAX_GRACE.days} days, got {grace.total_seconds():g} seconds", param="grace"
        )
    old = store.get(_key_id(key_id))
    if old is None:
        raise NotFound(f"no key with id '{key_id}'", param="key_id")
    if not old.valid_at(now):
        remedy = f"so it cannot be rotated; create a new key for tenant '{old.tenant}'"
        if old.revoked_at is not None and now >= old.revoked_at:
            raise KeyRevoked(f"key '{key_id}' is revoked, {remedy}")
        raise KeyExpired(f"key '{key_id}' is expired, {remedy}")
    clear_text, record = new_key(
        old.tenant, old.scopes, plan=old.plan, created_at=now, expires_at=old.expires_at, description=old.description
    )
    edge.register(record)
    store.add(record)
    revoked = store.revoke(old.key_id, now + grace)
    log.info("key %s rotated to %s; the old key works until %s", key_id, record.key_id, revoked.revoked_at)
    return Rotated(clear_text, record, revoked)


def _scopes(scopes: Sequence[str]) -> tuple[Scope, ...]:
    wanted = [scope.strip() for scope in scopes if scope.strip()]
    if not wanted:
        raise InvalidInput(f"scopes must name at least one of {', '.join(SCOPES)}", param="scopes")
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown:
        raise InvalidInput(
            f"scope '{unknown[0]}' is unknown; expected one or more of {', '.join(SCOPES)}", param="scopes"
        )
    return tuple(scope for scope in SCOPES if scope in wanted)


def _key_id(key_id: str) -> str:
    whole = parse(key_id)
    if whole is not None:  # a whole key pasted: name only its public part, never echo the secret
        raise InvalidInput(f"pass the key id '{whole[0]}', not the whole key", param="key_id")
    if not KEY_ID.fullmatch(key_id):
        raise InvalidInput(
            f"key id '{key_id}' must be 12 hex digits (the part after 'am_' in a key, as `keys list` shows)",
            param="key_id",
        )
    return key_id
