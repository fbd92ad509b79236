"""The API Gateway REQUEST authorizer: checks the AI Mass key at the edge and names the caller's edge key.

API Gateway calls it before every metered route (``infra/constructs/api.py``). A valid key gets an Allow
policy for the method, the caller in the context, and ``usageIdentifierKey``: the key's edge key
(``aimass.metering.edge_keys``), so the usage plan of the key's plan throttles it (API key source
AUTHORIZER). Any other key gets a Deny policy whose context carries the same message and code the functions
would answer with; API Gateway renders it as a 401 in the AI Mass error shape (gateway response
ACCESS_DENIED). If the key store cannot be read the authorizer raises, and API Gateway answers 503
(AUTHORIZER_FAILURE): no request passes unchecked.

The functions check the key again (``aimass.metering.service``): they are also invoked directly (the front
function lists its peers' models), and a request they meter must name its tenant from the key itself.

The authorizer's results are not cached by API Gateway (a key may come in either of two headers, and a
cache needs every identity source present), so each request invokes it; the key lookup is cached here,
for ``AIMASS_KEY_CACHE_S``, as in the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aimass.errors import Unauthorized
from aimass.metering.edge_keys import edge_key_name
from aimass.metering.key_check import KeyChecker, presented_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Settings, get_settings

log = logging.getLogger("aimass.metering")

Event = Mapping[str, Any]
Response = dict[str, Any]


class KeyAuthorizer:
    def __init__(self, checker: KeyChecker) -> None:
        self.checker = checker

    def __call__(self, event: Event, context: Any = None) -> Response:
        method_arn = str(event["methodArn"])
        api_id = str(event["requestContext"]["apiId"])
        headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
        try:
            caller = self.checker.authenticate(presented_key(headers))
        except Unauthorized as refusal:
            log.info("denied %s: %s", method_arn, refusal.message)
            return _policy("anonymous", "Deny", method_arn, {"message": _safe(refusal.message), "code": refusal.code})
        response = _policy(
            caller.tenant,
            "Allow",
            method_arn,
            {"tenant": caller.tenant, "keyId": caller.key_id, "plan": caller.plan, "scopes": ",".join(caller.scopes)},
        )
        response["usageIdentifierKey"] = edge_key_name(api_id, caller.key_id)
        return response


def lambda_authorizer(settings: Settings | None = None) -> Callable[[Event, Any], Response]:
    """The authorizer the Lambda handler exposes: the key store the settings name, with their key cache."""
    settings = settings or get_settings()
    return KeyAuthorizer(KeyChecker(open_key_store(settings), cache_s=settings.key_cache_s))


def _policy(principal: str, effect: str, method_arn: str, context: dict[str, str]) -> Response:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
        "context": context,
    }


def _safe(message: str) -> str:
    # The gateway response pastes the message into a JSON string unescaped: keep it free of what would end it.
    return message.replace("\\", "/").replace('"', "'")
