"""A prototype for measurement only: V2 infer events answered by the data plane, without Mangum or FastAPI.

It sizes a proposed change to functions/text/handler.py (a fast path for the inference route that skips
the ASGI stack, and with it the FastAPI import on a cold start): profile_text.py times it warm, the
``cold-direct`` probe cold. It covers the success path of one route only; errors, every other route and
the request-id rules would stay with the full app. Standard library only, so that a probe can import it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aimass.protocol.v2_dataplane import DataPlane

HEADER_LENGTH = "inference-header-content-length"


def direct_infer(plane: DataPlane, event: dict[str, Any]) -> dict[str, Any]:
    """An HTTP API (v2) event for ``/v2/models/<name>[/versions/<v>]/infer`` to a Lambda proxy response."""
    parts = event["rawPath"].split("/")  # ['', 'v2', 'models', name, ('versions', v,) 'infer']
    name, version = parts[3], (parts[5] if len(parts) == 7 else None)
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    answer = plane.infer(name, version, raw, event["headers"].get(HEADER_LENGTH))
    headers = {
        "content-type": answer.media_type,
        "x-request-id": event["requestContext"]["requestId"],
        **answer.headers,
    }
    binary = answer.media_type != "application/json"
    return {
        "statusCode": 200,
        "headers": headers,
        "body": base64.b64encode(answer.body).decode() if binary else answer.body.decode(),
        "isBase64Encoded": binary,
    }
