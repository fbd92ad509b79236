"""The tenant a model call is made for, where models may be scoped to one tenant.

An imported model may be its importer's alone: its manifest's ``tenant`` names the only tenant whose keys may call
it. The metering middleware names the caller's tenant for each request (``acting_for``), the batch runner a
batch's; the registry then treats another tenant's scoped model exactly as a model it does not have (the same
404, left out of listings), so that its name is not learnt by calling it. Where no tenant is named (metering
off: a local server without keys) every model is visible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_tenant: ContextVar[str | None] = ContextVar("aimass_tenant", default=None)


def acting_for(tenant: str | None) -> None:
    """Name the tenant the rest of this request (this context) acts for."""
    _tenant.set(tenant)


@contextlib.contextmanager
def tenant_scope(tenant: str | None) -> Iterator[None]:
    """Act for ``tenant`` inside the block only (a batch's lines)."""
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)


def current_tenant() -> str | None:
    return _tenant.get()


def visible(owner: str | None) -> bool:
    """May the current caller see a model scoped to ``owner`` (None: every tenant's)?"""
    caller = _tenant.get()
    return owner is None or caller is None or caller == owner
