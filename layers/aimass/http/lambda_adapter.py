"""A function's Lambda entrypoint: Mangum over the app, with API Gateway's event read once per request.

Mangum's API Gateway handlers rebuild the ASGI scope (every header lowered and encoded) each time it is
read, and Mangum reads it twice per request: once to run the app, once to shape the answer. Here the
handlers are Mangum's own, the scope computed once; the app sees the same scope and the client the same
answer (tests/functional/test_lambda_adapter.py replays every recorded event through both).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, cast

from mangum import Mangum
from mangum.handlers import ALB, APIGateway, HTTPGateway
from mangum.types import ASGI, LambdaConfig, LambdaContext, LambdaEvent, LambdaHandler, Scope


class _HTTPAPI(HTTPGateway):
    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        # Mangum asks ALB first: what it takes stays its.
        return not ALB.infer(event, context, config) and super().infer(event, context, config)

    @cached_property
    def scope(self) -> Scope:  # a property in Mangum's class, read once here
        return super().scope


class _RESTAPI(APIGateway):
    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        return not ALB.infer(event, context, config) and super().infer(event, context, config)

    @cached_property
    def scope(self) -> Scope:
        return super().scope


# Tried before Mangum's own, in Mangum's order: every event goes to the same kind of handler as under Mangum.
HANDLERS: list[type[LambdaHandler]] = [cast("type[LambdaHandler]", _HTTPAPI), cast("type[LambdaHandler]", _RESTAPI)]


def lambda_handler(app: Any) -> Mangum:
    """The Lambda handler of ``app`` (lifespan off: models load at import, not per invocation)."""
    return Mangum(cast("ASGI", app), lifespan="off", custom_handlers=HANDLERS)
