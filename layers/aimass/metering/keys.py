"""API keys: issued once in clear, stored only as a hash, checked in constant time.

A key reads ``am_<key id>_<secret>``: the key id (public, 12 hex) finds the record, the secret (32 random
bytes, base64url) proves possession. Secrets are random, never chosen by people, so a single SHA-256 is
enough to store them (a password hash's slowness only protects guessable secrets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal, Protocol

from pydantic import ConfigDict, Field

from aimass.schema import Schema

Scope = Literal["invoke", "admin"]
PREFIX = "am"
# What a key id and a tenant name are, for the checks and the OpenAPI document alike. The patterns are written
# to mean the same as JSON Schema (ECMAScript) patterns; Python's ``$`` also matches before a final newline,
# so a check uses ``fullmatch``.
_KEY_ID = "[0-9a-f]{12}"
KEY_ID = re.compile(rf"^{_KEY_ID}$")
TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_KEY = re.compile(rf"^{PREFIX}_(?P<key_id>{_KEY_ID})_(?P<secret>[A-Za-z0-9_-]{{43}})$")


class ApiKey(Schema):
    """One key's record. Times are timezone-aware UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    tenant: str
    scopes: tuple[Scope, ...] = Field(min_length=1)
    plan: str = "default"
    secret_sha256: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    description: str = ""

    def valid_at(self, now: datetime) -> bool:
        """Not revoked (a rotation's old key is revoked at the end of its grace period) and not expired."""
        if self.revoked_at is not None and now >= self.revoked_at:
            return False
        return self.expires_at is None or now < self.expires_at


class KeyStore(Protocol):
    """Where key records live: SQLite locally, DynamoDB on AWS."""

    def add(self, key: ApiKey) -> None:
        """Store a new key; raise if its key id exists (never overwrite)."""
        ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def list(self, tenant: str | None = None) -> list[ApiKey]: ...

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        """Set ``revoked_at`` (keeping an earlier one); raise NotFound for an unknown key id."""
        ...


def new_key(
    tenant: str,
    scopes: tuple[Scope, ...],
    *,
    plan: str,
    created_at: datetime,
    expires_at: datetime | None = None,
    description: str = "",
) -> tuple[str, ApiKey]:
    """A fresh key: the clear text (shown once) and the record to store."""
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    record = ApiKey(
        key_id=key_id, tenant=tenant, scopes=scopes, plan=plan, secret_sha256=_digest(secret),
        created_at=created_at, expires_at=expires_at, description=description,
    )  # fmt: skip
    return f"{PREFIX}_{key_id}_{secret}", record


def parse(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.fullmatch(presented)
    return (match["key_id"], match["secret"]) if match else None


def matches(record: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(record.secret_sha256, _digest(secret))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Caller(Schema):
    """Who is calling: set on ``request.state.caller`` by the metering middleware once the key checks out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str
    key_id: str
    scopes: tuple[Scope, ...]
    plan: str

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes
