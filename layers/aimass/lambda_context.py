"""A stand-in for the context object the Lambda runtime passes to a handler, for local invocations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LocalLambdaContext:
    function_name: str = "aimass-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:aimass-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/aimass-local"
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    remaining_ms: int = 29_000  # API Gateway's integration timeout

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
