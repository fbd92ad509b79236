"""The PocketSphinx adapter: 16 kHz PCM in, the words it heard with their times out.

CMU PocketSphinx decodes with a hidden Markov acoustic model, a pronouncing dictionary and an n-gram
language model, each a file it opens by path (here, the version's in-memory files: the files are read
while the decoder is made, and closed after). Its configuration is the manifest's: ``engine.file`` is the
language model (``lm``) and ``engine.parts`` give every other file by PocketSphinx's own key (``mdef``,
``mean``, ``var``, ``tmat``, ``sendump``, ``fdict``, ``featparams``, ``dict``); the acoustic model's
front end (filters, cepstral normalisation) comes from its ``feat.params``, as PocketSphinx reads it.

A decoder holds one utterance's state across several calls (start, process, end, read the result), so
one lock guards each decode. The binding keeps Python's GIL while it decodes, so more decoders would not
run side by side in one process anyway: a process decodes one file at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aimass.errors import ModelLoadError

SAMPLE_RATE = 16000  # what the acoustic model was trained on
# Entries of a hypothesis that are no words: sentence marks, silence and the noise dictionary's fillers.
_NOT_WORDS = ("<s>", "</s>", "<sil>")


@dataclass(frozen=True)
class Heard:
    """One word of a hypothesis: its spelling, first and last frame (inclusive) and posterior probability."""

    word: str
    first: int
    last: int
    probability: float


class SphinxDecoder:
    """One PocketSphinx decoder over the files at ``paths`` (PocketSphinx's configuration keys to paths)."""

    def __init__(self, paths: Mapping[str, str], *, label: str) -> None:
        import pocketsphinx  # type: ignore[import-untyped]  # imported only where a model of this engine loads

        # hmm=None: no default model folder of the installed package; every file is the version's own.
        settings: dict[str, Any] = {"hmm": None, "loglevel": "FATAL", **paths}
        try:
            self._decoder = pocketsphinx.Decoder(pocketsphinx.Config(**settings))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"{label}: PocketSphinx refused its files: {exc}", public="its PocketSphinx files could not be loaded"
            ) from None
        self.frame_rate = int(self._decoder.config["frate"])
        if int(self._decoder.config["samprate"]) != SAMPLE_RATE:
            raise ModelLoadError(f"{label}: PocketSphinx is set to {self._decoder.config['samprate']} Hz, not 16 kHz")
        self._lock = threading.Lock()

    def decode(self, pcm: npt.NDArray[np.int16]) -> list[Heard]:
        """The words of one whole utterance of 16 kHz mono PCM, in order."""
        data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
        with self._lock:
            self._decoder.start_utt()
            # The whole utterance at once: the acoustic model normalises its cepstra over all of it (cmn batch).
            self._decoder.process_raw(data, no_search=False, full_utt=True)
            self._decoder.end_utt()
            if self._decoder.hyp() is None:
                return []
            segments = list(self._decoder.seg())
        return [
            # The posterior is summed in PocketSphinx's log arithmetic, which can round past 1 (1.0003).
            Heard(_spelling(s.word), s.start_frame, s.end_frame, min(1.0, max(0.0, float(s.prob))))
            for s in segments
            if s.word not in _NOT_WORDS and not s.word.startswith("[")  # [NOISE], [SPEECH]: the filler words
        ]


def _spelling(word: str) -> str:
    """A dictionary entry as a word: alternative pronunciations are numbered, ``read(2)``."""
    return word.split("(", 1)[0]


def pcm16(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] as 16-bit PCM, clipped."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
