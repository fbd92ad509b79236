"""Lambda entrypoint of the tensor function (imported models): API Gateway events in, the shared ASGI app, out.

The models load once per container, here at import, on a thread that runs while the web stack is imported.
"""

from aimass.serving.boot import load_models_in_background

_models = load_models_in_background()

from aimass.http.app import build_lambda_app  # noqa: E402  (after the load has started, on purpose)
from aimass.http.lambda_adapter import lambda_handler  # noqa: E402

handler = lambda_handler(build_lambda_app(registry=_models.result()))
