"""Routes for the task endpoints (``/v1/{domain}/{task}``) and the OpenAI audio transcription endpoint.

One route per task some served model offers, so that each is documented with its own request schema.
Bodies are JSON or multipart forms; both validate against the same request model. A form too large to
answer now becomes a batch line as JSON (``line``): its fields as the form route reads them, its files
base64-encoded, the way the batch dispatcher builds the form again (``aimass.batches.dispatch``). The routes
are lazy (``aimass.http.hot_routes.LazyRoutes``): their protocol is imported by the first request to one of them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aimass.errors import InvalidInput
from aimass.http.answers import Answer, Call, request_id_of
from aimass.http.hot_routes import HotRoute, LazyRoutes, calling, json_line, schema_ref
from aimass.http.inference_routes import INFERENCE_ERRORS, MODEL_VERSION_HEADER
from aimass.http.offload import Offload
from aimass.serving.tasks import TaskSpec

if TYPE_CHECKING:  # the web stack: imported by the routes' first request (these routes are lazy)
    from starlette.requests import Request
    from starlette.responses import Response

    from aimass.protocol.tasks import TaskService, Upload
    from aimass.serving.registry import ModelRegistry
    from aimass.settings import Settings

    Form = tuple[dict[str, str], list[Upload]]

TRANSCRIPTIONS = "/v1/audio/transcriptions"
TRANSCRIPTION_SUMMARY = "Create transcription"
# Above the batch limit, so that the request model (not the parser) says what is too many.
_FORM_LIMITS = {"max_files": 1024, "max_fields": 64}


def lazy_task_routes(registry: ModelRegistry, settings: Settings, offload: Offload) -> LazyRoutes:
    """The transcription route, then one route per task offered now, in order of domain and task."""
    offered = registry.offered_tasks()
    paths = [(TRANSCRIPTIONS, TRANSCRIPTION_SUMMARY)]
    paths += [
        (f"/v1/{domain}/{task}", _summary(domain, task, spec)) for (domain, task), spec in sorted(offered.items())
    ]

    def load() -> list[HotRoute]:
        from aimass.protocol.tasks import TaskService

        tasks = TaskService(registry, settings)
        return [transcription_hot_route(tasks, offload), *task_hot_routes(tasks, offload, offered)]

    return LazyRoutes(tuple(paths), load)


def _summary(domain: str, task: str, spec: TaskSpec) -> str:
    return spec.summary or f"{domain}: {task}"


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_form(request: Request) -> Form:
    """The form's text fields and file parts; a text field given twice keeps its last value, except an array
    field (a name ending in ``[]``, as OpenAI's SDK sends ``timestamp_granularities[]``), which keeps every
    value, comma-separated. Kept on the request's state, for the batch line it becomes when it is too large to
    answer now."""
    from starlette.datastructures import UploadFile

    from aimass.protocol.tasks import Upload

    fields: dict[str, str] = {}
    uploads: list[Upload] = []
    try:
        async with request.form(**_FORM_LIMITS) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads.append(Upload(key, await value.read()))
                elif key.endswith("[]") and key in fields:
                    fields[key] = f"{fields[key]},{value}"
                else:
                    fields[key] = value
    except (AssertionError, ValueError) as exc:  # Starlette's multipart parser reports malformed bodies so
        raise InvalidInput(f"malformed multipart form: {exc}", param="body") from None
    request.state.form = (fields, uploads)
    return fields, uploads


def _read(request: Request) -> Form | None:
    form = getattr(request.state, "form", None)
    return form if isinstance(form, tuple) else None


def task_hot_routes(
    service: TaskService, offload: Offload, offered: Mapping[tuple[str, str], TaskSpec] | None = None
) -> list[HotRoute]:
    """One route per task ``offered`` (by default, the tasks the service offers now)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    from aimass.protocol.tasks import TaskEnvelope, accepted_request, envelope

    def route(domain: str, task: str, spec: TaskSpec) -> HotRoute:
        def run_json(call: Call) -> Answer:
            return Answer(envelope(service.run_json(domain, task, call.body), call.request_id), "application/json")

        json_endpoint = calling(run_json, offload)

        async def endpoint(request: Request) -> Response:
            if not is_form(request):
                return await json_endpoint(request)
            fields, uploads = await read_form(request)
            answered = await offload(service.run_form, domain, task, fields, uploads)
            return Response(envelope(answered, request_id_of(request.scope)), media_type="application/json")

        async def line(request: Request) -> dict[str, Any] | None:
            form = _read(request)
            if form is None:
                return await json_line(request)
            return await run_in_threadpool(service.form_line, domain, task, *form)

        return HotRoute(
            f"/v1/{domain}/{task}",
            endpoint,
            _summary(domain, task, spec),
            f"Tasks: {domain}",
            _body(spec),
            TaskEnvelope,
            INFERENCE_ERRORS,
            models=(accepted_request(spec.request),),
            line=line,
            call=run_json,  # a form is the ASGI route's: the direct path leaves multipart bodies to it
        )

    offered = service.offered() if offered is None else offered
    return [route(domain, task, spec) for (domain, task), spec in sorted(offered.items())]


def transcription_hot_route(service: TaskService, offload: Offload) -> HotRoute:
    from starlette.responses import Response

    from aimass.protocol import openai_audio

    async def transcriptions(request: Request) -> Response:
        fields, uploads = await read_form(request)
        rendered = await offload(openai_audio.transcribe, service, fields, uploads)
        version = rendered.answer.runtime.manifest.version
        return Response(rendered.body, media_type=rendered.media_type, headers={MODEL_VERSION_HEADER: version})

    form = {
        "type": "object",
        "required": ["file", "model"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "model": {"type": "string"},
            "response_format": {"type": "string", "enum": list(openai_audio.FORMATS), "default": "json"},
            openai_audio.GRANULARITIES_FIELD: {
                "type": "array",
                "items": {"type": "string", "enum": list(openai_audio.GRANULARITIES)},
                "description": "verbose_json only: segment (the default), word, or both",
            },
        },
    }
    body = {"multipart/form-data": {"schema": form}}
    return HotRoute(
        TRANSCRIPTIONS,
        transcriptions,
        TRANSCRIPTION_SUMMARY,
        "OpenAI-compatible",
        body,
        openai_audio.Transcription,
        INFERENCE_ERRORS,
        line=_transcription_line,
    )


async def _transcription_line(request: Request) -> dict[str, Any] | None:
    """The form as the batch dispatcher takes it back: its fields, and its one file base64-encoded in ``file``."""
    form = _read(request)
    if form is None or len(form[1]) != 1:
        return None
    from aimass.batches.dispatch import FORM_ROUTES  # only a request that becomes a batch needs it

    fields, (upload,) = form
    return {**fields, FORM_ROUTES[TRANSCRIPTIONS]: base64.b64encode(upload.data).decode()}


def _body(spec: TaskSpec) -> dict[str, Any]:
    from aimass.protocol.tasks import accepted_request

    body: dict[str, Any] = {"application/json": {"schema": schema_ref(accepted_request(spec.request))}}
    if spec.file_field:
        body["multipart/form-data"] = {
            "schema": {"type": "object", "properties": {spec.file_field: {"type": "string", "format": "binary"}}},
            "description": f"the request's fields as form fields; each '{spec.file_field}' part one file",
        }
    return body
