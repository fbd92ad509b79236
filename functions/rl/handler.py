"""Lambda entrypoint of the rl function: API Gateway events in, the shared ASGI app, responses out.

The policies load once per container, here at import (Mangum would rerun an ASGI lifespan on every call),
and on a thread that runs while the web stack below is imported: a shorter cold start.
"""

from aimass.serving.boot import load_models_in_background

_models = load_models_in_background()

from aimass.http.app import build_lambda_app  # noqa: E402  (after the load has started, on purpose)
from aimass.http.lambda_adapter import lambda_handler  # noqa: E402

handler = lambda_handler(build_lambda_app(registry=_models.result()))
