"""The admin API: create, list, revoke and rotate API keys over HTTP, for callers whose key has the ``admin`` scope.

``admin_router(store, settings)`` returns the routes; the app includes them. The caller is the one the
metering middleware put on ``request.state.caller``; without one (metering off) every route answers 403, so
an unmetered server never hands out keys. The rules are ``aimass.metering.key_admin``'s, as in the CLI.

A key's clear text is in the answer to the request that made it (create, rotate) and nowhere else: listings
and records never carry it, nor its hash.

Request bodies are validated strictly, as JSON types: ``false`` is not a grace of 0 seconds, ``"60"`` is not a
number and neither ``1893456000`` nor ``"1893456000"`` is a time (an RFC 3339 string is), each a 400 naming the
field. A rotation's body is optional: none, or JSON ``null``, takes the defaults. A key store write forgets the
key in this process's key cache when the store passed in is the metering service's (``ForgetfulKeyStore``), so
a key revoked here is refused on its next request.

The OpenAPI document states what the server enforces: the tenant and key id patterns are the ones
``aimass.metering.keys`` checks, the scopes are ``key_admin.SCOPES``, and each route lists the errors it answers.
The plans are the server's configuration, so the document has a string where the server names them in a 400.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from aimass.errors import Forbidden, InvalidInput, NotFound, UnsupportedMediaType
from aimass.http.error_docs import BODY, KEYED, responses
from aimass.metering import key_admin
from aimass.metering.edge_keys import EdgeKeys, open_edge_keys
from aimass.metering.keys import KEY_ID, TENANT, ApiKey, Caller, KeyStore, Scope
from aimass.metering.stores.base import KeyExists
from aimass.schema import Schema
from aimass.settings import Settings

log = logging.getLogger("aimass.http")

PREFIX = "/v1/admin/keys"
# RFC 3339, JSON Schema's date-time; pydantic alone would also take "1893456000" (seconds) or a space for the T.
# The offset is left to pydantic, whose refusal of a time without one says so.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
# Documented, not enforced by FastAPI: key_admin's checks say what is wrong in words.
_TENANT_DOC: JsonDict = {"pattern": TENANT.pattern}
_KEY_ID_DOC: JsonDict = {"pattern": KEY_ID.pattern}


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
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_parsing",
            "expected an RFC 3339 time such as '2027-01-01T00:00:00Z', got '{value}'",
            {"value": value},
        )
    return value


def _known_scopes(scopes: list[str]) -> list[str]:
    # Exactly the scope names, as documented: the CLI's tolerance of spaces around them is for a command line.
    for scope in scopes:
        if scope not in key_admin.SCOPES:
            raise PydanticCustomError(
                "scope",
                "scope '{scope}' is unknown; expected one or more of {known}",
                {"scope": scope, "known": ", ".join(key_admin.SCOPES)},
            )
    return scopes


def _seconds(value: object) -> object:
    # Strict mode refuses the same values; this says which kind came instead (false is an int to Python).
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = _json_kind(value)
        raise PydanticCustomError("float_type", "expected a JSON number of seconds, got {kind}", {"kind": kind})
    return value


class CreateKey(Schema):
    # Strict: a JSON value of another type is refused, never converted (FastAPI validates the parsed JSON).
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant: str = Field(
        description="1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or a digit",
        json_schema_extra=_TENANT_DOC,
    )
    scopes: Annotated[list[str], AfterValidator(_known_scopes)] = Field(
        default=["invoke"],
        description="what the key may call: invoke (the models), admin (this API)",
        json_schema_extra={"items": {"type": "string", "enum": list(key_admin.SCOPES)}, "minItems": 1},
    )
    # The plans are the server's settings (AIMASS_PLANS), not the document's.
    plan: str = Field(default="default", description="one of this server's plans; another is a 400 naming them")
    # Lax only to parse the string strict mode would refuse (Python input); _time_string refuses the rest.
    expires_at: Annotated[AwareDatetime | None, BeforeValidator(_time_string)] = Field(
        default=None, strict=False, description="when the key stops working, in the future; null: never"
    )
    description: str = Field(default="", json_schema_extra={"maxLength": key_admin.MAX_DESCRIPTION})


class RotateKey(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)  # a JSON number; true, false and "60" are not

    grace_seconds: Annotated[float, BeforeValidator(_seconds)] = Field(
        default=3600,
        ge=0,
        le=key_admin.MAX_GRACE.total_seconds(),
        allow_inf_nan=False,
        description="how long the old key keeps working; 0 ends it now (at most 30 days)",
    )


class KeyView(Schema):
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


class IssuedKey(Schema):
    api_key: str = Field(description="the key in clear: shown in this answer only, store it now")
    key: KeyView


class RotatedKey(IssuedKey):
    old_key: KeyView = Field(description="the replaced key; its revoked_at is the end of the grace period")


class KeyList(Schema):
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
TenantFilter = Annotated[str | None, Query(description="only this tenant's keys", json_schema_extra=_TENANT_DOC)]
KeyId = Annotated[str, Path(description="12 hex digits: the part after 'am_' in a key", json_schema_extra=_KEY_ID_DOC)]
# Optional: no body, or JSON null, takes the defaults (as a client that sends its empty options as null expects).
RotateBody = Annotated[RotateKey | None, Body(description="optional; none or null: the defaults")]


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

    @router.post("", status_code=status.HTTP_201_CREATED, responses=responses(*BODY, KeyExists, *KEYED))
    def create_key(body: CreateKey, caller: Admin) -> IssuedKey:
        now = clock()
        issued = key_admin.create_key(
            store, tenant=body.tenant, scopes=body.scopes, plan=body.plan, plans=settings.plans,
            expires_at=body.expires_at, description=body.description, now=now, edge=edge_keys(),
        )  # fmt: skip
        log.info("admin key %s (tenant %s) created key %s", caller.key_id, caller.tenant, issued.key.key_id)
        return IssuedKey(api_key=issued.clear_text, key=KeyView.of(issued.key, now))

    @router.get("", responses=responses(InvalidInput, *KEYED))
    def list_keys(caller: Admin, tenant: TenantFilter = None) -> KeyList:
        now = clock()
        return KeyList(keys=[KeyView.of(key, now) for key in key_admin.list_keys(store, tenant)])

    # A POST with a Content-Type other than JSON is a 415 even without a body (the app's json_body check).
    @router.post("/{key_id}/revoke", responses=responses(InvalidInput, NotFound, UnsupportedMediaType, *KEYED))
    def revoke_key(key_id: KeyId, caller: Admin) -> KeyView:
        now = clock()
        key = key_admin.revoke_key(store, key_id, now=now, edge=edge_keys())
        log.info("admin key %s (tenant %s) revoked key %s", caller.key_id, caller.tenant, key_id)
        return KeyView.of(key, now)

    rotate_errors = (*BODY, NotFound, key_admin.KeyRevoked, key_admin.KeyExpired, KeyExists, *KEYED)

    @router.post("/{key_id}/rotate", responses=responses(*rotate_errors))
    def rotate_key(key_id: KeyId, caller: Admin, body: RotateBody = None) -> RotatedKey:
        now = clock()
        grace = timedelta(seconds=(body or RotateKey()).grace_seconds)
        rotated = key_admin.rotate_key(store, key_id, grace=grace, now=now, edge=edge_keys())
        log.info("admin key %s (tenant %s) rotated key %s", caller.key_id, caller.tenant, key_id)
        return RotatedKey(
            api_key=rotated.clear_text, key=KeyView.of(rotated.key, now), old_key=KeyView.of(rotated.old, now)
        )

    return router
