"""API Gateway's own answers once the API key authorizer is in front of the functions, in the AI Mass error shape.

A client gets the same JSON error body (``aimass.errors``) whether a function or API Gateway refused it: a
refused key, an authorizer that could not check it, a throttled key, a key without its edge key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from aimass.contract import ASK_FOR_KEY, KEY_CHALLENGE


def _error_body(message: str, *, error_type: str, code: str) -> str:
    """The AI Mass error shape (aimass.errors), as an API Gateway response template."""
    return json.dumps(
        {
            "error": {"message": message, "type": error_type, "code": code, "param": None},
            "request_id": "$context.requestId",
        }
    )


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's own answers (a gateway response), in the AI Mass error shape."""

    status: int
    message: str
    error_type: str
    code: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return _error_body(self.message, error_type=self.error_type, code=self.code)


_KEYS_UNCHECKED = GatewayError(
    503, "API keys cannot be checked right now; retry shortly", error_type="server_error", code="service_unavailable"
)

# What API Gateway answers itself, by its response type, once the authorizer is in front of the functions.
# Nothing in them helps guess a key: a refused key's message and code are the authorizer's (the functions'
# own), the rest are fixed.
GATEWAY_ERRORS: Mapping[str, GatewayError] = {
    # The authorizer denied the key: its context says why (missing, invalid, revoked, expired).
    "ACCESS_DENIED": GatewayError(
        401,
        "$context.authorizer.message",
        error_type="invalid_request_error",
        code="$context.authorizer.code",
        headers=KEY_CHALLENGE,
    ),
    "UNAUTHORIZED": GatewayError(
        401,
        f"missing or invalid API key; {ASK_FOR_KEY}",
        error_type="invalid_request_error",
        code="invalid_api_key",
        headers=KEY_CHALLENGE,
    ),
    # The authorizer raised (the key store is unreachable) or could not be called: no request passes unchecked.
    "AUTHORIZER_FAILURE": _KEYS_UNCHECKED,
    "AUTHORIZER_CONFIGURATION_ERROR": _KEYS_UNCHECKED,
    # A usage plan's throttle (the key's plan) or the stage's (every caller together). The app's own code for
    # the same condition, so clients handle one code wherever the limit bites.
    "THROTTLED": GatewayError(
        429,
        "request rate exceeded (this API key's plan, or the API's overall limit); retry after the Retry-After seconds",
        error_type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": "1"},
    ),
    # The key is valid but has no edge key in its plan's usage plan (the edge mirror fell behind).
    "INVALID_API_KEY": GatewayError(
        403,
        "this API key is not registered at the edge; an administrator can run `aimass keys sync-edge`",
        error_type="invalid_request_error",
        code="key_not_at_edge",
    ),
}
