"""Mangum's API Gateway handlers with the ASGI scope built once per request.

Mangum's API Gateway handlers build the scope, every header lowered and encoded, each time it is read, and a
request reads it twice (to run the app, then to shape the answer): about 8 µs of a warm request, paid after the
model's run has pushed the code out of the CPU's caches. The handlers here are Mangum's, with the scope read once.
"""

from __future__ import annotations

from functools import cached_property
from typing import cast

from mangum.handlers import ALB, APIGateway, HTTPGateway
from mangum.types import (
    LambdaConfig,
    LambdaContext,
    LambdaEvent,
    LambdaHandler,
    Scope,
)


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
