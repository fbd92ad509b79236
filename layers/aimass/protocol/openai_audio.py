"""OpenAI-shaped ``/v1/audio/transcriptions`` over any model that offers the ``transcribe`` task.

The task answers ``{"text", "duration", "words": [{"word", "start", "end", "confidence"}]}``; this module
only renders it the way OpenAI clients expect, per ``response_format``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from aimass.errors import InvalidInput
from aimass.protocol import wire
from aimass.protocol.tasks import Answer, TaskService, Upload

TASK = "transcribe"
FORMATS = ("json", "text", "verbose_json")


class Transcription(BaseModel):
    """The ``json`` response format; ``verbose_json`` adds task, language, duration and words."""

    text: str


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    answer: Answer


def transcribe(service: TaskService, fields: Mapping[str, str], uploads: Sequence[Upload]) -> Rendered:
    model = fields.get("model")
    if not model:
        raise InvalidInput("model is required: the name of a speech model served here", param="model")
    response_format = fields.get("response_format", "json")
    if response_format not in FORMATS:
        raise InvalidInput(
            f"response_format '{response_format}' is not supported; expected one of {', '.join(FORMATS)}",
            param="response_format",
        )
    if not uploads:
        raise InvalidInput("file is required: the audio to transcribe, as a multipart file part", param="file")
    runtime = service.registry.get(model)
    spec = runtime.tasks().get(TASK)
    if spec is None:
        able = [r.manifest.name for r in service.registry.runtimes() if TASK in r.tasks()]
        raise InvalidInput(f"model '{model}' does not transcribe audio; models that do: {able}", param="model")
    # OpenAI's other fields (prompt, temperature, ...) pass only where the task declares them.
    passed = {k: v for k, v in fields.items() if k in spec.request.model_fields or k == "model"}
    answer = service.run_form(runtime.manifest.domain, TASK, passed, uploads)
    return _render(answer, response_format)


def _render(answer: Answer, response_format: str) -> Rendered:
    outputs: dict[str, Any] = answer.result.outputs
    text = str(outputs.get("text", ""))
    if response_format == "text":
        return Rendered((text + "\n").encode(), "text/plain; charset=utf-8", answer)
    document: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        document = {
            "task": "transcribe",
            "language": outputs.get("language", "english"),
            "duration": outputs.get("duration", 0.0),
            "text": text,
            "words": outputs.get("words", []),
        }
    document["usage"] = {"type": "duration", "seconds": answer.result.usage.get("seconds", 0)}
    return Rendered(wire.dumps(document), "application/json", answer)
