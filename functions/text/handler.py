"""Lambda entrypoint of the text function: API Gateway events in, the shared ASGI app, responses out.

The models load once per container, here at import: Mangum would rerun an ASGI lifespan on every call.
"""

from mangum import Mangum

from aimass.http.app import build_app

handler = Mangum(build_app(in_lambda=True), lifespan="off")
