"""Task endpoints over the runtime interface: find the model, validate the body, run, wrap in the envelope."""

from __future__ import annotations

import base64
import copy
import functools
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import annotated_types
import pydantic
import pydantic_core
from pydantic import BaseModel, ValidationError

from aimass.errors import InvalidInput, NotFound
from aimass.metering.meter import measured
from aimass.protocol import wire
from aimass.schema import Schema
from aimass.serving.batching import check_budget
from aimass.serving.cost import Schedule, Work
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import ModelRuntime
from aimass.serving.tasks import TaskResult, TaskSpec, TaskWork
from aimass.settings import Settings


class TaskEnvelope(Schema):
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
    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.schedule = Schedule(settings)

    def offered(self) -> dict[tuple[str, str], TaskSpec]:
        """Every (domain, task) some served model offers (``ModelRegistry.offered_tasks``)."""
        return self.registry.offered_tasks()

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
        return self._run(runtime, spec, _validate(spec, document, json=True))

    def run_form(self, domain: str, task: str, fields: Mapping[str, str], uploads: Sequence[Upload]) -> Answer:
        runtime, spec, request = self._form(domain, task, fields, uploads)
        return self._run(runtime, spec, request)

    def form_line(self, domain: str, task: str, fields: Mapping[str, str], uploads: Sequence[Upload]) -> dict[str, Any]:
        """A form's request as the JSON body a batch line carries: its fields as JSON values (a form's "5" is 5,
        as the form route reads it), its files base64-encoded."""
        runtime, spec, request = self._form(domain, task, fields, uploads)
        files = set() if spec.file_field is None else {spec.file_field}
        line: dict[str, Any] = {"model": runtime.manifest.name}
        line.update(request.model_dump(mode="json", exclude_unset=True, exclude=files))
        line.update(_file_values(spec, uploads))
        return line

    def _form(
        self, domain: str, task: str, fields: Mapping[str, str], uploads: Sequence[Upload]
    ) -> tuple[ModelRuntime, TaskSpec, BaseModel]:
        document: dict[str, Any] = dict(fields)
        model = _model_field(document.pop("model", None))
        runtime, spec = self.resolve(domain, task, model)
        document.update(_file_values(spec, uploads))
        return runtime, spec, _validate(spec, document)

    def _run(self, runtime: ModelRuntime, spec: TaskSpec, request: BaseModel) -> Answer:
        # Validated without its lists' limits (they hold here, with the schedule's), decoded by the task.
        work = self._work(spec, request)
        self.schedule.admit(runtime, work)
        return Answer(self.schedule.run(runtime, work, lambda: measured(runtime, lambda: spec.run(request))), runtime)

    def _work(self, spec: TaskSpec, request: BaseModel) -> Work:
        """What the task's ``work`` reads from the request; else the request's longest list (by its share of its
        limit) is its items; a task of no list is one item, a file (``files``) or a request. A batch's lines hold
        lists to ``batch_max_items`` only."""
        if spec.work is not None:
            return self._measured(spec.work(request))
        lists = [(len(getattr(request, name)), limit, name) for name, limit in _limits(spec.request).items()]
        if not lists:
            unit = "requests" if spec.file_field is None else "files"
            return Work(1, 1, unit, spec.file_field or "body", unit, 1)
        count, limit, name = max(lists, key=lambda each: each[0] / each[1])
        if not self.schedule.synchronous:
            limit = self.schedule.settings.batch_max_items
        return Work(count, limit, name, name, name, count)

    def _measured(self, work: TaskWork) -> Work:
        """Over the batch limit a request is refused outright; over the synchronous one it is an OverSyncBudget
        (a batch runs it), as a list's items are; the estimate is per unit of the amount."""
        check_budget(work.amount, work.batch_limit, unit=work.unit, param=work.param, advice=work.advice)
        limit = work.synchronous_limit if self.schedule.synchronous else work.batch_limit
        return Work(math.ceil(work.amount), math.floor(limit), work.unit, work.param, work.unit, work.amount)


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


def accepted_request(model: type[BaseModel]) -> type[BaseModel]:
    """The request model as a route reads it and documents it: its lists without their most lengths, which are
    a synchronous request's, not the request's (more items are a 413, or a batch with Prefer: respond-async)."""
    return _unlimited(model)[0]


def _limits(model: type[BaseModel]) -> dict[str, int]:
    """The request model's lists that have a most length (``Field(max_length=...)``): the task's own limit on a
    synchronous request's items."""
    return _unlimited(model)[1]


@functools.cache
def _unlimited(model: type[BaseModel]) -> tuple[type[BaseModel], dict[str, int]]:
    """``model`` without its lists' most lengths, and those lengths: a request is validated by the first, and
    its lists held to the second by the schedule, so that one with too many items is a 413 (or a batch), not
    a 400, and a batch's line may carry more (``aimass.serving.cost``)."""
    limits: dict[str, int] = {}
    lifted: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        most = [each.max_length for each in info.metadata if isinstance(each, annotated_types.MaxLen)]
        if most and typing.get_origin(info.annotation) is list:
            limits[name] = most[0]
            field = copy.copy(info)
            field.metadata = [each for each in info.metadata if not isinstance(each, annotated_types.MaxLen)]
            lifted[name] = (info.annotation, field)
    if not lifted:
        return model, limits
    return pydantic.create_model(model.__name__, __base__=model, **lifted), limits


def _validate(spec: TaskSpec, document: dict[str, Any], *, json: bool = False) -> BaseModel:
    """A JSON body is validated strictly, as JSON: a count is a JSON integer, never "5", 5.0 or true. A form's
    fields are text by nature, so there "5" is the number 5."""
    model = _unlimited(spec.request)[0]
    try:
        if json:
            # Once more as JSON (the document lost its 'model'): JSON mode reads arrays into tuples and strings
            # into enums or dates where a request model has them; the strict Python mode would not.
            return model.model_validate_json(wire.dumps(document), strict=True)
        return model.model_validate(document)
    except ValidationError as exc:
        first = ".".join(str(p) for p in exc.errors()[0]["loc"]) or None
        raise InvalidInput(f"invalid request: {wire.describe(exc)}", param=first) from None
