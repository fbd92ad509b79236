"""A function's Lambda entrypoint: its direct routes answered from the event (``aimass.http.lambda_direct``), and
every other event through Mangum, with the ASGI scope built once per request.

tests/unit/test_lambda_adapter.py replays every recorded event through Mangum's handlers and ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mangum import Mangum
    from mangum.types import ASGI


def lambda_handler(app: Any) -> Callable[[Any, Any], dict[str, Any]]:
    """The Lambda handler of ``app``: a function's ``LambdaApp`` answers its direct routes itself and the rest
    through ``mangum_handler``, made (Mangum imported) on the first event that needs it; any other ASGI app is
    answered by ``mangum_handler``."""
    from aimass.http.lambda_direct import DirectHandler, LambdaApp

    if isinstance(app, LambdaApp):
        return DirectHandler(app, lambda: mangum_handler(app))
    return mangum_handler(app)


def mangum_handler(app: Any) -> Mangum:
    """Mangum over ``app``, an ASGI app (Starlette's type and Mangum's differ in name only), with lifespan off
    (models load at import, not per invocation) and the handlers of ``aimass.http.mangum_handlers``."""
    from mangum import Mangum

    from aimass.http.mangum_handlers import HANDLERS

    return Mangum(cast("ASGI", app), lifespan="off", custom_handlers=HANDLERS)
