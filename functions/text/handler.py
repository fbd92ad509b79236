"""Lambda entrypoint of the text function: API Gateway events in, the shared ASGI app, responses out.

The models load once per container, from here at import (Mangum would rerun an ASGI lifespan on every call),
on a thread that runs while the web stack below is imported; the app is built at once, and a request waits
for the model it names alone (``aimass.serving.boot.start_loading``): a shorter cold start.
"""

from aimass.serving.boot import start_loading

models = start_loading()

from aimass.http.app import build_lambda_app  # noqa: E402  (after the load has started, on purpose)
from aimass.http.lambda_adapter import lambda_handler  # noqa: E402

handler = lambda_handler(build_lambda_app(registry=models))
