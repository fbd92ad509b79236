"""The admin API: create, list, revoke and rotate API keys over HTTP, for callers whose key has the ``admin`` scope.

``admin_router(store, settings)`` returns the routes; the app includes them. The caller is the one the
metering middleware put on ``request.state.caller``; without one (metering off) every route answers 403, so
an unmetered server never hands out keys. The rules are ``aimass.metering.key_admin``'s, as in the CLI.

A key's clear text is in the answer to the request that made it (create, rotate) and nowhere else: listings
and records never carry it, nor its hash.

Request bodies are validated strictly, as JSON types: ``false`` is not a grace of 0 seconds, ``"60"`` is not a
number and ``1893456000`` is not a time, each a 400 naming the field. A key store write forgets the key in this
process's key cache when the store passed in is the metering service's (``ForgetfulKeyStore``), so a key
revoked here is refused on its next request.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, status
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from aimass.errors import Forbidden
from aimass.metering import key_admin
from aimass.metering.edge_keys import EdgeKeys, open_edge_keys
from aimass.metering.keys import ApiKey, Caller, KeyStore, Scope
from aimass.settings import Settings

log = logging.getLogger("aimass.http")

PREFIX = "/v1/admin/keys"


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    kinds = {str: "a string", list: "an array", dict: "an object", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _time_string(value: object) -> object:
    # JSON has no time type: a time is an ISO 8601 string, never a number read as seconds since 1970.
    if value is not None and not isinstance(value, str):
        raise PydanticCustomError(
            "datetime_type",
            "expected an ISO 8601 time string such as '2027-01-01T00:00:00Z', got {kind}",
            {"kind": _json_kind(value)},
        )
    return value


def _seconds(value: object) -> object:
    # Strict mode refuses the same values; this says which kind came instead (false is an int to Python).
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = _json_kind(value)
        raise PydanticCustomError("float_type", "expected a JSON number of seconds, got {kind}", {"kind": kind})
    return value


class CreateKey(BaseModel):
    # Strict: a JSON value of another type is refused, never converted (FastAPI validates the parsed JSON).
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant: str
    scopes: list[str] = Field(default=["invoke"], description="invoke, admin")
    plan: str = "default"
    # Lax only to parse the string strict mode would refuse (Python input); _time_string refuses the rest.
    expires_at: Annotated[AwareDatetime | None, BeforeValidator(_time_string)] = Field(default=None, strict=False)
    description: str = ""


class RotateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # a JSON number; true, false and "60" are not

    grace_seconds: Annotated[float, BeforeValidator(_seconds)] = Field(
        default=3600,
        ge=0,
        le=key_admin.MAX_GRACE.total_seconds(),
        allow_inf_nan=False,
        description="how long the old key keeps working; 0 ends it now (at most 30 days)",
    )


class KeyView(BaseModel):
    """A key's record as clients see it: never the secret, nor its hash."""

    key_id: str
    tenant: str
    scopes: tuple[Scope, ...]
    plan: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    description: str
    active: bool = Field(description="whether the key is accepted now")

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> KeyView:
        return cls(**key.model_dump(exclude={"secret_sha256"}), active=key.valid_at(now))


class IssuedKey(BaseModel):
    api_key: str = Field(description="the key in clear: shown in this answer only, store it now")
    key: KeyView


class RotatedKey(IssuedKey):
    old_key: KeyView = Field(description="the replaced key; its revoked_at is the end of the grace period")


class KeyList(BaseModel):
    keys: list[KeyView]


def admin_caller(request: Request) -> Caller:
    """The caller, if its key has the ``admin`` scope; else 403."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise Forbidden(
            "the admin API needs a key with the 'admin' scope, and this request was not authenticated by one "
            "(metering is off on this server, or no key was checked)"
        )
    if not caller.is_admin:
        raise Forbidden(f"key '{caller.key_id}' has the scopes {', '.join(caller.scopes)}; the admin API needs 'admin'")
    return caller


Admin = Annotated[Caller, Depends(admin_caller)]


def admin_router(
    store: KeyStore,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    edge: Callable[[], EdgeKeys] | None = None,
) -> APIRouter:
    """``edge`` opens the API Gateway mirror of the keys, on the first key change (its client is not needed to
    start a function, so a cold start does not pay for it); by default the one the settings name."""
    router = APIRouter(prefix=PREFIX, tags=["admin"])
    edge_keys = functools.cache(edge or (lambda: open_edge_keys(settings)))

    @router.post("", status_code=status.HTTP_201_CREATED)
    def create_key(body: CreateKey, caller: Admin) -> IssuedKey:
        now = clock()
        issued = key_admin.create_key(
            store, tenant=body.tenant, scopes=body.scopes, plan=body.plan, plans=settings.plans,
            expires_at=body.expires_at, description=body.description, now=now, edge=edge_keys(),
        )  # fmt: skip
        log.info("admin key %s (tenant %s) created key %s", caller.key_id, caller.tenant, issued.key.key_id)
        return IssuedKey(api_key=issued.clear_text, key=KeyView.of(issued.key, now))

    @router.get("")
    def list_keys(caller: Admin, tenant: Annotated[str | None, Query()] = None) -> KeyList:
        now = clock()
        return KeyList(keys=[KeyView.of(key, now) for key in key_admin.list_keys(store, tenant)])

    @router.post("/{key_id}/revoke")
    def revoke_key(key_id: str, caller: Admin) -> KeyView:
        now = clock()
        key = key_admin.revoke_key(store, key_id, now=now, edge=edge_keys())
        log.info("admin key %s (tenant %s) revoked key %s", caller.key_id, caller.tenant, key_id)
        return KeyView.of(key, now)

    @router.post("/{key_id}/rotate")
    def rotate_key(key_id: str, caller: Admin, body: Annotated[RotateKey | None, Body()] = None) -> RotatedKey:
        now = clock()
        grace = timedelta(seconds=(body or RotateKey()).grace_seconds)
        rotated = key_admin.rotate_key(store, key_id, grace=grace, now=now, edge=edge_keys())
        log.info("admin key %s (tenant %s) rotated key %s", caller.key_id, caller.tenant, key_id)
        return RotatedKey(
            api_key=rotated.clear_text, key=KeyView.of(rotated.key, now), old_key=KeyView.of(rotated.old, now)
        )

    return router
