"""Spoken commands: 1-second waveforms → ONNX graph (log-mel front end + CNN) → class probabilities.

V2 clients send the windows themselves (``waveform`` FP32 [n, 16000]); the ``transcribe`` task takes an
audio file, decodes and resamples it, cuts it into words and recognises each one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput, ModelLoadError
from aimass.schema import Schema
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import TaskResult, TaskSpec
from aimass_speech.audio import decode, resample
from aimass_speech.transcript import TranscribeRequest as TranscribeRequest
from aimass_speech.transcript import (
    Word,
    billed_seconds,
    check_language,
    declared_transcribe,
    transcribe_task,
    transcript,
)
from aimass_speech.words import cut_words


class SpeechPreprocessing(Schema):
    """The ``preprocessing`` block of a speech model's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sample_rate: int = Field(gt=0, description="the rate the graph's waveforms are sampled at, in Hz")
    clip_samples: int = Field(gt=0, description="samples per window: one word each")
    max_seconds: float = Field(gt=0, description="longest audio file accepted by the transcribe task")


def is_word(label: str) -> bool:
    """Labels such as ``_unknown_`` and ``_silence_`` name classes, not words."""
    return not (label.startswith("_") and label.endswith("_"))


TRANSCRIBE = "Recognise the spoken commands in an audio file (WAV, FLAC, OGG or MP3)"


class SpeechCommandsRuntime(ModelRuntime):
    @classmethod
    def declared_tasks(cls) -> dict[str, TaskSpec]:
        return declared_transcribe(TRANSCRIBE)

    def load(self) -> None:
        self.pre = self.preprocessing(SpeechPreprocessing)
        self.session = self.engine_session()
        engine = self.manifest.engine
        self.labels = self.manifest.labels or ()
        if engine.outputs[0].shape[-1] != len(self.labels):
            raise ModelLoadError(f"{self.label}: {len(self.labels)} labels for {engine.outputs[0].shape[-1]} classes")
        self.feed, self.fetch = engine.inputs[0].name, engine.outputs[0].name
        self.served_input, self.served_output = self.manifest.inputs[0].name, self.manifest.outputs[0].name

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        waveforms = np.asarray(inputs[self.served_input], dtype=np.float32)
        if not np.isfinite(waveforms).all():
            raise InvalidInput(f"'{self.served_input}' has NaN or infinite samples", param=self.served_input)
        seconds = math.ceil(waveforms.size / self.pre.sample_rate)
        return Prediction(outputs={self.served_output: self._classify(waveforms)}, usage={"seconds": seconds})

    def tasks(self) -> dict[str, TaskSpec]:
        return {"transcribe": transcribe_task(self.transcribe, TRANSCRIBE)}

    def transcribe(self, request: TranscribeRequest) -> TaskResult:
        check_language(request.language)
        samples, rate = decode(request.file, max_seconds=self.pre.max_seconds)
        rate, samples = self.pre.sample_rate, resample(samples, rate, self.pre.sample_rate)
        spans, windows = cut_words(samples, rate, self.pre.clip_samples)
        words: list[Word] = []
        for (start, end), scores in zip(spans, self._classify(windows) if spans else [], strict=True):
            best = int(scores.argmax())
            if self.labels[best] != "_silence_":  # a noise the cutter took for a word
                words.append(
                    {
                        "word": self.labels[best],
                        "start": round(start / rate, 3),
                        "end": round(end / rate, 3),
                        "confidence": round(float(scores[best]), 4),
                    }
                )
        outputs = transcript(words, [w for w in words if is_word(w["word"])], len(samples) / rate)
        return TaskResult(outputs=outputs, usage={"seconds": billed_seconds(len(samples), rate)})

    def _classify(self, waveforms: Tensor) -> Tensor:
        (probabilities,) = self.session.run([self.fetch], {self.feed: waveforms})
        return probabilities  # type: ignore[no-any-return]
