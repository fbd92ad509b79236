"""Task endpoints over the runtime interface: find the model, validate the body, run, wrap in the envelope."""

from __future__ import annotations

import base64
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError

from aimass.errors import InvalidInput, NotFound
from aimass.metering.meter import measured
from aimass.protocol import wire
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime
from aimass.serving.tasks import TaskResult, TaskSpec


class TaskEnvelope(BaseModel):
    """The one response shape of every task endpoint."""

    request_id: str
    model: str
    model_version: str
    outputs: Any
    usage: dict[str, int]


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart form."""

    field: str
    data: bytes


@dataclass(frozen=True)
class Answer:
    result: TaskResult
    runtime: ModelRuntime


class TaskService:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def offered(self) -> dict[tuple[str, str], TaskSpec]:
        """Every (domain, task) some served model offers, with the spec of the first model offering it."""
        found: dict[tuple[str, str], TaskSpec] = {}
        for runtime in self.registry.runtimes():
            for task, spec in runtime.tasks().items():
                found.setdefault((runtime.manifest.domain, task), spec)
        return found

    def offering(self, domain: str, task: str) -> list[str]:
        return [r.manifest.name for r in self.registry.runtimes() if r.manifest.domain == domain and task in r.tasks()]

    def resolve(self, domain: str, task: str, model: str | None) -> tuple[ModelRuntime, TaskSpec]:
        if model is not None:
            runtime = self.registry.get(model)
            spec = runtime.tasks().get(task)
            if runtime.manifest.domain != domain or spec is None:
                raise InvalidInput(
                    f"model '{model}' does not offer {domain}/{task}; models that do: {self.offering(domain, task)}",
                    param="model",
                )
            return runtime, spec
        for runtime in self.registry.runtimes():
            spec = runtime.tasks().get(task)
            if runtime.manifest.domain == domain and spec is not None:
                return runtime, spec
        raise NotFound(f"no model served here offers {domain}/{task}")

    def run_json(self, domain: str, task: str, body: bytes) -> Answer:
        document = _json_object(body)
        model = _model_field(document.pop("model", None))
        runtime, spec = self.resolve(domain, task, model)
        request = _validate(spec, document, json=True)
        return Answer(measured(runtime, lambda: spec.run(request)), runtime)

    def run_form(self, domain: str, task: str, fields: Mapping[str, str], uploads: Sequence[Upload]) -> Answer:
        document: dict[str, Any] = dict(fields)
        model = _model_field(document.pop("model", None))
        runtime, spec = self.resolve(domain, task, model)
        document.update(_file_values(spec, uploads))
        request = _validate(spec, document)
        return Answer(measured(runtime, lambda: spec.run(request)), runtime)


def envelope(answer: Answer, request_id: str) -> bytes:
    manifest = answer.runtime.manifest
    return wire.dumps(
        {
            "request_id": request_id,
            "model": manifest.name,
            "model_version": manifest.version,
            "outputs": answer.result.outputs,
            "usage": answer.result.usage,
        }
    )


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise InvalidInput("the request body is empty; expected a JSON object", param="body")
    try:
        document = pydantic_core.from_json(body)
    except ValueError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", param="body") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(document).__name__}", param="body")
    return document


def _model_field(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise InvalidInput("model must be a non-empty string naming a served model", param="model")


def _file_values(spec: TaskSpec, uploads: Sequence[Upload]) -> dict[str, Any]:
    """Uploaded parts, base64-encoded into the spec's file field as a JSON client would send them."""
    stray = sorted({u.field for u in uploads} - {spec.file_field})
    if stray:
        expected = f"'{spec.file_field}'" if spec.file_field else "none"
        raise InvalidInput(f"unexpected file field(s) {stray}; expected {expected}", param=stray[0])
    if spec.file_field is None or not uploads:
        return {}
    encoded = [base64.b64encode(u.data).decode() for u in uploads]
    annotation = spec.request.model_fields[spec.file_field].annotation
    if typing.get_origin(annotation) is list:
        return {spec.file_field: encoded}
    if len(encoded) > 1:
        raise InvalidInput(f"'{spec.file_field}' takes one file, got {len(encoded)}", param=spec.file_field)
    return {spec.file_field: encoded[0]}


def _validate(spec: TaskSpec, document: dict[str, Any], *, json: bool = False) -> BaseModel:
    """A JSON body is validated strictly, as JSON: a count is a JSON integer, never "5", 5.0 or true. A form's
    fields are text by nature, so there "5" is the number 5."""
    try:
        if json:
            # Once more as JSON (the document lost its 'model'): JSON mode reads arrays into tuples and strings
            # into enums or dates where a request model has them; the strict Python mode would not.
            return spec.request.model_validate_json(wire.dumps(document), strict=True)
        return spec.request.model_validate(document)
    except ValidationError as exc:
        first = ".".join(str(p) for p in exc.errors()[0]["loc"]) or None
        raise InvalidInput(f"invalid request: {wire.describe(exc)}", param=first) from None
