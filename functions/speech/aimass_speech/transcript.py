"""What every speech model's ``transcribe`` task reads and answers, whatever recognises the words.

The request is one audio file; the answer is ``{"text", "language", "duration", "words", "segments"}``:
each word with its start, end and confidence, and the words grouped into segments (subtitle lines, the
``segments`` of OpenAI's verbose answer) wherever the speaker pauses. ``aimass.protocol.openai_audio``
renders that answer in every ``response_format``; it knows nothing of how the words were found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict

from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput, ModelNotReady
from aimass.schema import Schema
from aimass.serving.tasks import Base64File, TaskResult, TaskSpec, TaskWork
from aimass_speech.audio import duration

LANGUAGE = "english"
# A pause this long between two words starts a new segment, and so does a segment growing past MAX_SEGMENT_S:
# subtitle lines a viewer can read while they show.
PAUSE_S = 0.5
MAX_SEGMENT_S = 10.0


class TranscribeRequest(Schema):
    """``POST /v1/speech/transcribe``: one audio file (WAV, FLAC, OGG or MP3) of speech."""

    model_config = ConfigDict(extra="forbid")

    file: Base64File = Field(description="the audio file: base64 in JSON, or a multipart 'file' part")
    language: str | None = Field(default=None, description="only English ('en') is recognised")


class Word(TypedDict):
    word: str
    start: float  # seconds from the start of the file
    end: float
    confidence: float


class Segment(TypedDict):
    id: int
    start: float
    end: float
    text: str


def transcribe_task(run: Any, summary: str, **extra: Any) -> TaskSpec:
    """The ``transcribe`` task of a speech runtime, with its ``run``; every speech model's reads one request."""
    return TaskSpec(request=TranscribeRequest, run=run, file_field="file", summary=summary, **extra)


def declared_transcribe(summary: str) -> dict[str, TaskSpec]:
    """``transcribe`` as a speech runtime declares it (``ModelRuntime.declared_tasks``): routed while the
    function's models still load; a request always runs the spec of the model it reaches, never this one."""
    return {"transcribe": transcribe_task(_not_loaded, summary)}


def _not_loaded(request: TranscribeRequest) -> TaskResult:
    raise ModelNotReady("no speech model that transcribes has loaded yet; retry in a moment")


def check_language(language: str | None) -> None:
    if language and language.lower().split("-")[0] not in ("en", "english"):
        raise InvalidInput(f"language '{language}' is not supported; expected 'en'", param="language")


def segments(words: Sequence[Word]) -> list[Segment]:
    """``words`` (in order, only those that are text) grouped at pauses of at least PAUSE_S."""
    groups: list[list[Word]] = []
    for word in words:
        last = groups[-1] if groups else None
        if last is None or word["start"] - last[-1]["end"] >= PAUSE_S or word["end"] - last[0]["start"] > MAX_SEGMENT_S:
            groups.append([word])
        else:
            last.append(word)
    return [
        {"id": n, "start": group[0]["start"], "end": group[-1]["end"], "text": " ".join(w["word"] for w in group)}
        for n, group in enumerate(groups)
    ]


def transcript(words: Sequence[Word], text_words: Sequence[Word], duration: float) -> dict[str, Any]:
    """The task's outputs: every word found (``words``), and the text of those that are words (``text_words``)."""
    return {
        "text": " ".join(w["word"] for w in text_words),
        "language": LANGUAGE,
        "duration": duration,
        "words": list(words),
        "segments": segments(text_words),
    }


def audio_work(request: TranscribeRequest, *, synchronous_s: float, batch_s: float) -> TaskWork:
    """The recording's length, from its header: a synchronous request may hold ``synchronous_s``, a batch's
    ``batch_s`` (``aimass.protocol.tasks`` holds it to them before anything is decoded)."""
    advice = "split the audio into shorter files, one request each"
    seconds = duration(request.file, param="file")
    return TaskWork(seconds, "seconds of audio", "file", synchronous_s, batch_s, advice=advice)


def billed_seconds(samples: int, rate: int) -> int:
    """Audio is billed by the started second, one at least."""
    return max(1, math.ceil(samples / rate))
