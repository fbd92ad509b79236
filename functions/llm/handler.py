"""Lambda entrypoint of the llm function: generated text streamed to API Gateway as it is written.

The image's entry point is AI Mass's own Runtime API loop (``python3.11 -m aimass.http.lambda_streaming
handler.app``): API Gateway invokes this function with response streaming, and each token reaches the client as
it is generated. ``handler`` answers the same app buffered, through Mangum's event handling
(``aimass.http.lambda_adapter``), for ``sam local invoke`` and direct invocations. The model loads once per
container, from here at import, on a thread that runs while the web stack is imported; a request waits for the
model it names (``aimass.serving.boot.start_loading``).
"""

from aimass.serving.boot import start_loading

models = start_loading()

# aimass.http.sse and aimass.protocol.*: what its chat and generate routes import on their first request (lazy
# hot routes), imported here beside the load rather than after it.
import aimass.http.sse  # noqa: E402
import aimass.protocol.openai_chat  # noqa: E402
import aimass.protocol.v2_generate  # noqa: E402,F401
from aimass.http.app import build_lambda_app  # noqa: E402
from aimass.http.lambda_adapter import lambda_handler  # noqa: E402

app = build_lambda_app(registry=models)
handler = lambda_handler(app)
