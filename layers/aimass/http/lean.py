"""The Lambda app's adapter for every path but the hot routes: the full FastAPI app, built on first need.

Importing FastAPI (its OpenAPI models above all) is about half of a small function's imports, and the
inference routes never need it: they are plain Starlette routes (``aimass.http.hot_routes``). So a function
serves a Starlette app of the hot routes, with the middleware and error handlers the FastAPI app has, and
ends its route table with ``FullApp``: whatever path no hot route takes is handed to the FastAPI app's
router, built (FastAPI imported) the first time such a request comes, then kept. The FastAPI app holds the
same hot Route objects first in its own table, so an answer is the same whichever app gives it
(tests/functional/test_lean_lambda_parity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.datastructures import URLPath


class FullApp(BaseRoute):
    """Matches every HTTP request, so it must come last; answers it as the FastAPI app from ``build`` would.

    Only the app's router and its exception handlers run here: the middleware around it is the Lambda
    app's (the same kinds, in the same order), so nothing runs twice. Its handler for unexpected errors
    is the Lambda app's too, outside every middleware, as in the FastAPI app.
    """

    def __init__(self, build: Callable[[], FastAPI]) -> None:
        self._build = build
        self._built: tuple[FastAPI, ASGIApp] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.FULL, {}) if scope["type"] == "http" else (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        app, stack = self.app()
        # What FastAPI's own __call__ sets: its routes (the 405's Allow, the docs) read their app from the scope.
        scope["app"], scope["router"] = app, app.router
        # The route is the one the FastAPI router matches (the metering middleware reports by its path), or
        # none where it matches none, as in the FastAPI app.
        scope.pop("route", None)
        await stack(scope, receive, send)

    def app(self) -> tuple[FastAPI, ASGIApp]:
        """The FastAPI app, and its router inside its exception handling; built once (a function answers one
        request at a time, so no lock)."""
        if self._built is None:
            from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware

            app = self._build()
            # As FastAPI.build_middleware_stack: every handler but the unexpected errors' goes innermost.
            handlers = {key: value for key, value in app.exception_handlers.items() if key not in (500, Exception)}
            self._built = app, ExceptionMiddleware(AsyncExitStackMiddleware(app.router), handlers=handlers)
        return self._built
