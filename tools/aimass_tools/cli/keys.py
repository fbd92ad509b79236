"""``aimass keys``: create, list, revoke and rotate API keys in the store the settings name.

SQLite in the local state folder by default (``<AIMASS_STATE_DIR>/metering.db``); the DynamoDB table
AIMASS_KEYS_TABLE when AIMASS_METERING=dynamodb. A key's clear text is printed once, when it is made; the
store keeps only its hash. The rules live in ``aimass.metering.key_admin``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from aimass.errors import InvalidInput
from aimass.metering import key_admin
from aimass.metering.edge_keys import open_edge_keys
from aimass.metering.keys import ApiKey
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Settings
from aimass_tools.cli.common import console, reported_errors

app = typer.Typer(
    help="Create, list, revoke and rotate API keys, and mirror them at API Gateway (sync-edge).", no_args_is_help=True
)

_DURATION = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant the key bills to (a-z, 0-9, . _ -)")],
    scopes: Annotated[str, typer.Option("--scopes", help="comma-separated: invoke, admin")] = "invoke",
    plan: Annotated[str, typer.Option("--plan", help="its rate and monthly quota (AIMASS_PLANS)")] = "default",
    expires: Annotated[
        str | None, typer.Option("--expires", help="a duration (30d, 12h, 2w) or a UTC date or time (2027-01-01)")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="what the key is for")] = "",
) -> None:
    """Make a key and print it, once: the store keeps only its hash."""
    with reported_errors():
        settings = Settings()
        now = datetime.now(UTC)
        issued = key_admin.create_key(
            open_key_store(settings), tenant=tenant, scopes=scopes.split(","), plan=plan, plans=settings.plans,
            expires_at=None if expires is None else expires_at(expires, now), description=description, now=now,
            edge=open_edge_keys(settings),
        )  # fmt: skip
    _print_issued(issued.clear_text, issued.key)


@app.command("list")
def list_(tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant's keys")] = None) -> None:
    """Every key (of one tenant), oldest first, with its state now; never a secret."""
    with reported_errors():
        keys = key_admin.list_keys(open_key_store(Settings()), tenant)
    if not keys:
        console.print("no keys" + (f" for tenant '{tenant}'" if tenant else ""))
        return
    now = datetime.now(UTC)
    headers = ("tenant", "scopes", "plan", "created", "expires", "state", "description")
    table = Table(Column("key id", no_wrap=True), *headers)
    for key in keys:
        table.add_row(
            key.key_id, key.tenant, ",".join(key.scopes), key.plan, _when(key.created_at),
            _when(key.expires_at) if key.expires_at else "never", _state(key, now), key.description,
        )  # fmt: skip
    console.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id (12 hex digits), as `keys list` shows")]) -> None:
    """Revoke a key now (a key revoked earlier keeps its time)."""
    with reported_errors():
        now, settings = datetime.now(UTC), Settings()
        key = key_admin.revoke_key(open_key_store(settings), key_id, now=now, edge=open_edge_keys(settings))
    assert key.revoked_at is not None
    if key.revoked_at < now:
        console.print(f"key {key.key_id} (tenant {key.tenant}) was already revoked at {_when(key.revoked_at)}")
    else:
        console.print(f"revoked key {key.key_id} (tenant {key.tenant}) at {_when(key.revoked_at)}")


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(help="the key id (12 hex digits) of the key to replace")],
    grace: Annotated[
        str, typer.Option("--grace", help="how long the old key keeps working: 0, 30m, 1h, 7d (at most 30d)")
    ] = "1h",
) -> None:
    """Make a new key like the old one (tenant, scopes, plan, expiry) and end the old one after the grace period."""
    with reported_errors():
        now, settings = datetime.now(UTC), Settings()
        rotated = key_admin.rotate_key(
            open_key_store(settings), key_id, grace=duration(grace, "grace"), now=now, edge=open_edge_keys(settings)
        )
    _print_issued(rotated.clear_text, rotated.key)
    old = rotated.old
    assert old.revoked_at is not None
    if old.revoked_at <= now:
        console.print(f"the old key {old.key_id} no longer works (revoked at {_when(old.revoked_at)})")
    else:
        console.print(f"the old key {old.key_id} keeps working until {_when(old.revoked_at)}")


@app.command("sync-edge")
def sync_edge() -> None:
    """Make API Gateway's per-key throttling match the key store (AIMASS_EDGE_API_ID: the stack's RestApiId).

    Every valid key gets its edge key in its plan's usage plan; revoked, expired and unknown keys lose theirs.
    Key changes do this as they happen; run it after deploying a stage whose keys were made before it, or
    after a change whose edge step failed (the command that failed said so).
    """
    with reported_errors():
        settings = Settings()
        if settings.edge_api_id is None:
            raise InvalidInput(
                "AIMASS_EDGE_API_ID is not set: set it to the stack's RestApiId output to mirror keys at the edge",
                param="edge_api_id",
            )
        synced = key_admin.sync_edge(open_key_store(settings), open_edge_keys(settings), now=datetime.now(UTC))
    console.print(
        f"edge of REST API {settings.edge_api_id}: {len(synced.registered)} key(s) registered"
        + (f" ({', '.join(synced.registered)})" if synced.registered else "")
        + f", {len(synced.retired)} retired"
        + (f" ({', '.join(synced.retired)})" if synced.retired else "")
    )


def duration(text: str, field: str) -> timedelta:
    """``0``, ``90s``, ``30m``, ``12h``, ``30d``, ``2w``."""
    if text.strip() == "0":
        return timedelta(0)
    match = _DURATION.match(text.strip())
    if match is None:
        raise InvalidInput(f"{field} '{text}' must be a duration such as 0, 30m, 1h, 30d or 2w", param=field)
    return timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})


def expires_at(text: str, now: datetime) -> datetime:
    """A duration from now (``30d``), a date (midnight UTC) or an ISO time (UTC unless it names a zone)."""
    if _DURATION.match(text.strip()):
        return now + duration(text, "expires")
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"expires '{text}' must be a duration (30d, 12h) or a date or time (2027-01-01, 2027-01-01T12:00Z)",
            param="expires",
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _print_issued(clear_text: str, key: ApiKey) -> None:
    console.print(Text("API key (shown only this once; store it now, it cannot be shown again):", style="bold"))
    console.print(Text(clear_text, style="bold green"), soft_wrap=True)
    console.print(f"  key id       {key.key_id}")
    console.print(f"  tenant       {key.tenant}")
    console.print(f"  scopes       {','.join(key.scopes)}")
    console.print(f"  plan         {key.plan}")
    console.print(f"  expires      {_when(key.expires_at) if key.expires_at else 'never'}")
    if key.description:
        console.print(Text(f"  description  {key.description}"), soft_wrap=True)


def _state(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None and key.revoked_at <= now:
        return f"revoked {_when(key.revoked_at)}"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.revoked_at is not None:
        return f"grace until {_when(key.revoked_at)}"
    return "active"


def _when(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
