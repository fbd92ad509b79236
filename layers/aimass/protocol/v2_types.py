"""Wire types of the Open Inference Protocol (KServe V2) REST API.

These are the JSON documents on the wire, kept apart from the numpy tensors the runtimes see.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from aimass.schema import Schema

# Parameter values the protocol allows.
Parameters = dict[str, bool | int | float | str]


class _Wire(Schema):
    # Strict: a shape element "1" or true is not the integer 1, nor a "true" string the boolean true.
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestInput(_Wire):
    name: str = Field(min_length=1)
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: Any = None


class RequestOutput(_Wire):
    name: str = Field(min_length=1)
    parameters: Parameters | None = None


class InferenceRequest(_Wire):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(Schema):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(Schema):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(Schema):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(Schema):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters | None = None


class ServerMetadata(Schema):
    name: str
    version: str
    extensions: list[str]


class RepositoryIndexRequest(_Wire):
    ready: bool = False


class RepositoryModel(Schema):
    name: str
    version: str
    state: str
    reason: str = ""


class ErrorResponse(Schema):
    error: str
