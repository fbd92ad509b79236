"""OpenAI-shaped ``/v1/audio/transcriptions`` over any model that offers the ``transcribe`` task.

The task answers ``{"text", "language", "duration", "words": [{"word", "start", "end", "confidence"}],
"segments": [{"id", "start", "end", "text"}]}``; this module only renders it the way OpenAI clients expect,
per ``response_format``: ``json`` (the text), ``text``, ``verbose_json`` (the segments, and the words when
``timestamp_granularities[]`` asks for them), and the subtitle formats ``srt`` and ``vtt`` (one cue per
segment). A task that gives no segments is one segment, the whole file.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aimass.errors import InvalidInput
from aimass.protocol import wire
from aimass.protocol.tasks import Answer, TaskService, Upload
from aimass.schema import Schema

TASK = "transcribe"
FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")
# A form's array field: every value is kept, comma-separated (aimass.http.tasks.read_form).
GRANULARITIES_FIELD = "timestamp_granularities[]"


class Transcription(Schema):
    """The ``json`` response format; ``verbose_json`` adds task, language, duration, segments and words."""

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
    granularities = _granularities(fields)
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
    return _render(answer, response_format, granularities)


def _granularities(fields: Mapping[str, str]) -> set[str]:
    """OpenAI's ``timestamp_granularities[]`` (the SDK's spelling; the plain name is read too): segment by default."""
    param = GRANULARITIES_FIELD if GRANULARITIES_FIELD in fields else "timestamp_granularities"
    asked = {value.strip() for value in fields.get(param, "segment").split(",") if value.strip()}
    unknown = sorted(asked - set(GRANULARITIES))
    if unknown:
        raise InvalidInput(
            f"{param} '{unknown[0]}' is not supported; expected {' or '.join(GRANULARITIES)}", param=param
        )
    return asked


def _render(answer: Answer, response_format: str, granularities: set[str]) -> Rendered:
    outputs: dict[str, Any] = answer.result.outputs
    text = str(outputs.get("text", ""))
    if response_format == "text":
        return Rendered((text + "\n").encode(), "text/plain; charset=utf-8", answer)
    if response_format in ("srt", "vtt"):
        cues = _subtitles(_segments(outputs, text), vtt=response_format == "vtt")
        return Rendered(cues.encode(), f"text/{'vtt' if response_format == 'vtt' else 'plain'}; charset=utf-8", answer)
    document: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        document = {
            "task": "transcribe",
            "language": outputs.get("language", "english"),
            "duration": outputs.get("duration", 0.0),
            "text": text,
        }
        if "segment" in granularities:
            document["segments"] = [_verbose_segment(s, outputs.get("words", [])) for s in _segments(outputs, text)]
        if "word" in granularities:
            document["words"] = outputs.get("words", [])
    document["usage"] = {"type": "duration", "seconds": answer.result.usage.get("seconds", 0)}
    return Rendered(wire.dumps(document), "application/json", answer)


def _segments(outputs: Mapping[str, Any], text: str) -> list[dict[str, Any]]:
    given = outputs.get("segments")
    if isinstance(given, list):
        return given
    return [{"id": 0, "start": 0.0, "end": float(outputs.get("duration", 0.0)), "text": text}] if text else []


def _verbose_segment(segment: Mapping[str, Any], words: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A segment with the fields OpenAI's SDK reads, in their meaning here: no tokens (the model writes words, not
    tokens), temperature 0 (decoding is deterministic), the mean log confidence of the segment's words."""
    start, end, text = float(segment["start"]), float(segment["end"]), str(segment["text"])
    inside = [float(w.get("confidence", 1.0)) for w in words if start <= float(w["start"]) and float(w["end"]) <= end]
    logprob = sum(math.log(max(c, 1e-6)) for c in inside) / len(inside) if inside else 0.0
    raw = text.encode()
    return {
        "id": int(segment["id"]),
        "seek": 0,
        "start": start,
        "end": end,
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(logprob, 4),
        "compression_ratio": round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0,
        "no_speech_prob": 0.0,
    }


def _subtitles(segments: Sequence[Mapping[str, Any]], *, vtt: bool) -> str:
    cues = []
    for number, segment in enumerate(segments, start=1):
        span = f"{_clock(float(segment['start']), vtt)} --> {_clock(float(segment['end']), vtt)}"
        cues.append(f"{span}\n{segment['text']}\n" if vtt else f"{number}\n{span}\n{segment['text']}\n")
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(cues)


def _clock(seconds: float, vtt: bool) -> str:
    """HH:MM:SS,mmm (SubRip) or HH:MM:SS.mmm (WebVTT)."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{'.' if vtt else ','}{rest % 1000:03d}"
