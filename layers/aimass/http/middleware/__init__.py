"""The app's pure ASGI middleware, one per module: the request context (request id, body size limit), the
models' update check, the body read guard and metering."""
