"""API Gateway's REST proxy events: the one module that reads them and the one that makes them.

Behind API Gateway, Mangum hands the app the Lambda event in the ASGI scope (``scope["aws.event"]``). AI Mass
reads two things from the event's request context, which API Gateway writes itself:

* ``request_id``: API Gateway's id for the request, the same for a retried invocation of it, so that logs
  on both sides line up and a usage record is written once;
* ``from_peer``: the marker a front function sets on the listing events it sends its peers
  (``listing_event``). API Gateway writes the whole request context, so no client can set it: only a
  direct invocation can.

Run anywhere else (the local server, a test client), the scope has no event and both are absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import Scope

EVENT_SCOPE_KEY = "aws.event"  # where Mangum puts the Lambda event
PEER_MARKER = "aimassPeer"  # the request context key of a listing event
PEER_TENANT = "aimassTenant"  # the tenant a listing event lists for (a client's; none: every model)


def request_context(scope: Scope) -> Mapping[str, Any]:
    """The event's ``requestContext``, or an empty mapping when there is none (not behind API Gateway)."""
    event = scope.get(EVENT_SCOPE_KEY)
    # dict first: an event is one, and the check against the Mapping ABC is the slow one on every request.
    context = event.get("requestContext") if isinstance(event, dict | Mapping) else None
    return context if isinstance(context, dict | Mapping) else {}


def request_id(scope: Scope) -> str | None:
    """API Gateway's id of the request, or None when it gave none."""
    found = request_context(scope).get("requestId")
    return found if isinstance(found, str) and found else None


def from_peer(scope: Scope) -> bool:
    """Was the request a front function's listing call (``listing_event``), not a client's?"""
    return request_context(scope).get(PEER_MARKER) is True


def peer_tenant(scope: Scope) -> str | None:
    """The tenant a front function's listing call lists for (models scoped to other tenants are left out)."""
    tenant = request_context(scope).get(PEER_TENANT) if from_peer(scope) else None
    return tenant if isinstance(tenant, str) else None


def listing_event(method: str, path: str, request_id: str, tenant: str | None = None) -> dict[str, Any]:
    """The REST proxy event a client's listing call would have produced, marked as a peer's (``from_peer``), for
    ``tenant``'s client: API Gateway never puts either key in a client's request context."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            PEER_MARKER: True,
            **({PEER_TENANT: tenant} if tenant is not None else {}),
        },
        "body": "{}" if method == "POST" else None,
        "isBase64Encoded": False,
    }
