"""Task endpoints: what a domain offers beyond raw tensors (classify an image, act on an observation).

A runtime declares its tasks; the core serves each one at ``POST /v1/{domain}/{task}`` with JSON or a
multipart form, validates the body against the task's request model, and wraps the result in the one
envelope every task shares: ``{"request_id", "model", "model_version", "outputs", "usage"}``. A domain
writes the request model and the method, never the route.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, PlainValidator, WithJsonSchema


def _base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"expected a base64 string, got {type(value).__name__}")
    try:
        # validate=True: pydantic's Base64Bytes skips characters outside the alphabet, so "***" would pass.
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not valid base64 ({exc})") from None


# A file in a task request: a base64 string in JSON, a file part in a multipart form.
Base64File = Annotated[bytes, PlainValidator(_base64), WithJsonSchema({"type": "string", "contentEncoding": "base64"})]


@dataclass(frozen=True)
class TaskResult:
    outputs: Any  # JSON-serialisable: lists, dicts, numbers, strings
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskWork:
    """What a request holds, read from it before it runs (a recording's length, from its file's header).

    ``amount`` of ``unit`` in the field ``param``: a synchronous request may hold ``synchronous_limit`` (more is
    a 413 that says to run it as a batch), any request ``batch_limit`` (more is a 413 that says to split it);
    the time budget is estimated per unit (``aimass.serving.cost``).
    """

    amount: float
    unit: str
    param: str
    synchronous_limit: float
    batch_limit: float
    advice: str = "split it into smaller requests"


@dataclass(frozen=True)
class TaskSpec:
    """One task of a runtime.

    ``request`` validates the JSON body (its field ``model``, if any, is filled by the core and may be
    ignored). ``file_field`` names the request field that carries uploaded files: in a multipart form each
    part of that name becomes one element, base64-encoded the way a JSON client would send it, so that the
    field can be typed ``Base64File`` or ``list[Base64File]`` and both forms validate alike. ``work``, where
    given, reads what the validated request holds before it runs (``TaskWork``): the core holds it to the
    task's limits and the time budget, so that a long recording runs as a batch rather than timing out.
    """

    request: type[BaseModel]
    run: Callable[[Any], TaskResult]
    file_field: str | None = None
    summary: str = ""
    work: Callable[[Any], TaskWork] | None = None
