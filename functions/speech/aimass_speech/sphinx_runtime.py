"""Open-vocabulary English: audio → PocketSphinx (acoustic model, dictionary, 3-gram language model) → words.

V2 clients send one waveform (``waveform`` FP32 [1, n], 16 kHz mono, samples in [-1, 1]) and get its
transcript (``text`` BYTES [1]); the ``transcribe`` task takes an audio file, decodes and resamples it as
every speech model does (``aimass_speech.audio``, with its limits) and answers the words with their times
and the segments between pauses (``aimass_speech.transcript``). Both are billed by the second of audio.

A synchronous request holds at most ``max_seconds`` of audio, decoded in one pass. A longer recording, up
to ``max_batch_seconds``, is a 413 that says to send it as a batch (or, with ``Prefer: respond-async``, a
batch at once): there it is cut at its pauses into pieces of at most ``max_seconds`` (``aimass_speech.pieces``),
each decoded on its own, the words' times running on across the whole file.

The engine's files are the manifest's (``engine.format`` ``pocketsphinx``), handed to PocketSphinx as
in-memory files (``ModelRuntime.engine_files``): a sealed version is decrypted in memory only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import ConfigDict, Field

from aimass.errors import InvalidInput, ModelLoadError
from aimass.schema import Schema
from aimass.serving.batching import check_budget
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.tasks import TaskResult, TaskSpec, TaskWork
from aimass_speech.audio import decode, resample
from aimass_speech.pieces import pieces
from aimass_speech.sphinx import SAMPLE_RATE, SphinxDecoder, pcm16
from aimass_speech.transcript import (
    TranscribeRequest,
    Word,
    audio_work,
    billed_seconds,
    check_language,
    declared_transcribe,
    transcribe_task,
    transcript,
)

# PocketSphinx's files a version must name (engine.parts; the language model is engine.file): without one
# PocketSphinx would look for it in a default folder, or end the process.
REQUIRED_PARTS = ("mdef", "mean", "var", "tmat", "fdict", "featparams", "dict")
MIXTURE_WEIGHTS = ("sendump", "mixw")  # one of them: compressed or plain


class SphinxPreprocessing(Schema):
    """The ``preprocessing`` block of a PocketSphinx model's manifest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sample_rate: int = Field(description="the rate the acoustic model hears, in Hz (16000)")
    max_seconds: float = Field(gt=0, description="longest audio a synchronous request may carry: one piece")
    max_batch_seconds: float | None = Field(
        default=None, gt=0, description="longest recording a batch may carry, decoded in pieces (default max_seconds)"
    )

    @property
    def longest_s(self) -> float:
        return self.max_batch_seconds or self.max_seconds


TRANSCRIBE = "Transcribe the English speech in an audio file (WAV, FLAC, OGG or MP3)"


class SphinxRuntime(ModelRuntime):
    @classmethod
    def declared_tasks(cls) -> dict[str, TaskSpec]:
        return declared_transcribe(TRANSCRIBE)

    def load(self) -> None:
        self.pre = self.preprocessing(SphinxPreprocessing)
        if self.pre.sample_rate != SAMPLE_RATE:
            raise ModelLoadError(f"{self.label}: sample_rate {self.pre.sample_rate}; PocketSphinx hears {SAMPLE_RATE}")
        parts = self.manifest.engine.parts
        missing = [key for key in REQUIRED_PARTS if key not in parts]
        if not any(key in parts for key in MIXTURE_WEIGHTS):
            missing.append(" or ".join(MIXTURE_WEIGHTS))
        if missing:
            raise ModelLoadError(f"{self.label}: engine.parts names no {', '.join(missing)}")
        with self.engine_files() as files:
            paths = {("lm" if key == "file" else key): path for key, path in files.paths.items()}
            self.decoder = SphinxDecoder(paths, label=self.label)
        self.served_input, self.served_output = self.manifest.inputs[0].name, self.manifest.outputs[0].name

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        waveform = np.asarray(inputs[self.served_input], dtype=np.float32).reshape(-1)
        self._check(waveform, self.served_input)
        words = self._recognise(waveform)
        text = np.array([" ".join(w["word"] for w in words)], dtype=object)
        seconds = billed_seconds(len(waveform), SAMPLE_RATE)
        return Prediction(outputs={self.served_output: text}, usage={"seconds": seconds})

    def tasks(self) -> dict[str, TaskSpec]:
        return {"transcribe": transcribe_task(self.transcribe, TRANSCRIBE, work=self._work)}

    def _work(self, request: TranscribeRequest) -> TaskWork:
        return audio_work(request, synchronous_s=self.pre.max_seconds, batch_s=self.pre.longest_s)

    def transcribe(self, request: TranscribeRequest) -> TaskResult:
        check_language(request.language)
        # The request was held to the synchronous limit before it ran, unless it is a batch's.
        samples, rate = decode(request.file, max_seconds=self.pre.longest_s)
        words: list[Word] = []
        for start, end in pieces(samples, rate, self.pre.max_seconds):
            words += self._recognise(resample(samples[start:end], rate, SAMPLE_RATE), offset=start / rate)
        outputs = transcript(words, words, len(samples) / rate)
        return TaskResult(outputs=outputs, usage={"seconds": billed_seconds(len(samples), rate)})

    def _check(self, waveform: Tensor, param: str) -> None:
        if waveform.size == 0:
            raise InvalidInput(f"'{param}' holds no samples", param=param)
        if not np.isfinite(waveform).all():
            raise InvalidInput(f"'{param}' has NaN or infinite samples", param=param)
        advice = "split the audio into shorter waveforms, one request each"
        seconds = waveform.size / SAMPLE_RATE
        check_budget(seconds, self.pre.max_seconds, unit="seconds of audio", param=param, advice=advice)

    def _recognise(self, samples: Tensor, offset: float = 0.0) -> list[Word]:
        """The words of 16 kHz ``samples``, their times in seconds from ``offset``."""
        frames = self.decoder.frame_rate
        return [
            {
                "word": heard.word,
                "start": round(offset + heard.first / frames, 3),
                "end": round(offset + (heard.last + 1) / frames, 3),
                "confidence": round(heard.probability, 4),
            }
            for heard in self.decoder.decode(pcm16(np.asarray(samples, dtype=np.float32)))
        ]
