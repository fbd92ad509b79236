"""Pure ASGI middleware: the models' update check, riding on requests where no background thread runs."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from aimass.serving.updater import ModelUpdater


class ModelUpdateMiddleware:
    """On Lambda: check the models' aliases at the start of an invocation once the interval has passed.

    A frozen Lambda container runs no background thread, so the check rides on requests. It runs before
    the request is handled (one request per container at a time); ``due()`` is a clock comparison, so a
    request that triggers no check pays nothing measurable.
    """

    def __init__(self, app: ASGIApp, *, updater: ModelUpdater) -> None:
        self.app = app
        self.updater = updater

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.updater.due():
            self.updater.check_if_due()
        await self.app(scope, receive, send)
