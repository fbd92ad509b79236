"""FastAPI dependencies shared by the routers (FastAPI reads their annotations at run time: Starlette's types here)."""

from __future__ import annotations

from starlette.requests import Request

from aimass.http.media import JSON, accepted_type


async def json_body(request: Request) -> None:
    """A FastAPI dependency for routes whose body is JSON, checked on the methods that carry one."""
    if request.method in ("POST", "PUT", "PATCH"):
        accepted_type(request, (JSON,))
