"""One error base for AI Mass, rendered in one place (aimass.http.errors).

Hierarchy (each carries the HTTP status a client sees and a stable ``code``):

    AimassError                 500 internal_error    anything unexpected; the message is not shown to clients
    ├── InvalidInput            400 invalid_input     the request is malformed or has a wrong value
    │   └── UnsupportedModel    400 unsupported_model a model to import that serving cannot take (its opset, an
    │                                             operator, a shape that cannot be batched, not ONNX at all)
    ├── NotFound                404 not_found         an unknown route, model or version
    ├── PayloadTooLarge         413 payload_too_large the body is over the configured limit
    │   ├── OverSyncBudget                    more work than one synchronous call holds: a batch's (202 on
    │   │                                     Prefer: respond-async; aimass.serving.cost)
    │   └── ModelTooLarge       413 model_too_large   a model to import that needs more memory than its function has
    ├── UnsupportedMediaType    415 unsupported_media_type   a body in a media type the route does not read
    ├── RequestTimeout          408 request_timeout   the body did not arrive in time (local server)
    ├── ClientClosedRequest     499 client_closed_request    the client left mid-body (never sent: nobody reads it)
    ├── Unauthorized            401 invalid_api_key   no key, or not a valid one (one message: no hint for guessing)
    ├── Forbidden               403 forbidden         a valid key without the scope, or another tenant's data
    ├── RateLimited             429 rate_limit_exceeded   over the plan's request rate (Retry-After)
    ├── QuotaExceeded           429 insufficient_quota    over the plan's monthly units (says when it resets)
    ├── ModelNotReady           503 model_not_ready   the model exists but cannot answer now
    ├── ServiceUnavailable      503 service_unavailable   a dependency (the usage store) cannot be reached (Retry-After)
    │   └── ModelOverloaded     503 model_overloaded  the model's requests in flight are at their bound (Retry-After)
    ├── ModelLoadError          500 model_load_error  a model's manifest, files or graph are wrong (operator error)
    │   └── DecryptionError                           a sealed version's file cannot be decrypted here
    └── HTTPRefusal             4xx (as given)        what the web framework refuses itself, e.g. a wrong method

Messages say what failed, which value, and what was expected, so a client can fix the request without
reading the logs. ``param`` names the offending field where there is one.

A ``ModelLoadError`` is the operator's detail (paths, checksums, other libraries' errors); its ``public``, where
given, says the same in the version's own terms (a file, its manifest, its graph, its samples), and is all a
client is ever told about a version that cannot serve (``aimass.serving.registry``).
"""

from __future__ import annotations

# Seconds a client waits before it tries again a dependency or model that could not answer (ServiceUnavailable).
RETRY_AFTER_S = 1


class AimassError(Exception):
    status_code: int = 500
    code: str = "internal_error"
    # OpenAI clients branch on this family name.
    error_type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}  # sent with the error response (Retry-After, WWW-Authenticate)


class InvalidInput(AimassError):
    status_code = 400
    code = "invalid_input"
    error_type = "invalid_request_error"


class UnsupportedModel(InvalidInput):
    """A model offered for import that serving cannot take; the message says what in it, and how to fix it."""

    code = "unsupported_model"


class NotFound(AimassError):
    status_code = 404
    code = "not_found"
    error_type = "invalid_request_error"


class PayloadTooLarge(AimassError):
    status_code = 413
    code = "payload_too_large"
    error_type = "invalid_request_error"


class ModelTooLarge(PayloadTooLarge):
    """A model offered for import that would need more memory than the function serving it has."""

    code = "model_too_large"


class UnsupportedMediaType(AimassError):
    status_code = 415
    code = "unsupported_media_type"
    error_type = "invalid_request_error"


class RequestTimeout(AimassError):
    status_code = 408
    code = "request_timeout"
    error_type = "invalid_request_error"


class ClientClosedRequest(AimassError):
    # nginx's status for the same event: it only ever reaches usage records and logs.
    status_code = 499
    code = "client_closed_request"
    error_type = "invalid_request_error"


class Unauthorized(AimassError):
    status_code = 401
    code = "invalid_api_key"
    error_type = "invalid_request_error"


class Forbidden(AimassError):
    status_code = 403
    code = "forbidden"
    error_type = "invalid_request_error"


class RateLimited(AimassError):
    status_code = 429
    code = "rate_limit_exceeded"
    error_type = "requests"


class QuotaExceeded(AimassError):
    status_code = 429
    code = "insufficient_quota"
    error_type = "insufficient_quota"


class ServiceUnavailable(AimassError):
    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        # A dependency that cannot answer now usually can in a moment: say when to try again (RFC 9110), as the
        # SDKs that retry a 503 read it. An error that knows better (ModelOverloaded) gives its own.
        super().__init__(message, param=param, headers={"Retry-After": str(RETRY_AFTER_S), **(headers or {})})


class ModelOverloaded(ServiceUnavailable):
    code = "model_overloaded"


class ModelNotReady(AimassError):
    status_code = 503
    code = "model_not_ready"


class ModelLoadError(AimassError):
    code = "model_load_error"

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public


class DecryptionError(ModelLoadError):
    """No key provider, the wrong key, or a sealing record that does not hold: the ciphertext itself may be sound."""


class HTTPRefusal(AimassError):
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, status_code: int, code: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


def error_document(error: AimassError, request_id: str, *, v2: bool = False) -> dict[str, object]:
    """The JSON body of an error answer: ``{"error": message}`` on the V2 protocol's routes (its own shape),
    ``{"error": {message, type, code, param}, "request_id"}`` everywhere else (OpenAI's)."""
    if v2:
        return {"error": error.message}
    return {
        "error": {"message": error.message, "type": error.error_type, "code": error.code, "param": error.param},
        "request_id": request_id,
    }
