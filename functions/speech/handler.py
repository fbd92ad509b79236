"""Lambda entrypoint of the speech function: API Gateway events in, the shared ASGI app, responses out.

The models load once per container, here at import (Mangum would rerun an ASGI lifespan on every call),
and on a thread that runs while the web stack below is imported: a shorter cold start.
"""

from aimass.serving.boot import load_models_in_background

_models = load_models_in_background()

# aimass.protocol.*: what its transcription and task routes import on their first request (lazy hot routes),
# imported here beside the sphinx decoder's long load rather than after it.
import aimass.protocol.openai_audio  # noqa: E402
import aimass.protocol.tasks  # noqa: E402,F401
from aimass.http.app import build_lambda_app  # noqa: E402
from aimass.http.lambda_adapter import lambda_handler  # noqa: E402

handler = lambda_handler(build_lambda_app(registry=_models.result()))
