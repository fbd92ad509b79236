"""Speech from espeak-ng: words spoken by a voice, cut apart and resampled to the model's rate; and the
voices of the other synthesizers (``Speaker``: flite in ``flite.py``, festival in ``festival.py``).

One espeak-ng call speaks a whole list of words with long pauses between them (``-g``), so a build pays
for a few hundred processes rather than thousands; the pauses are true digital silence, so the cut is
exact. If a voice ever runs two words together the list is spoken again one word per call.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aimass.serving.domains import checkout_domains
from models.buildkit import BuildError
from models.speech.commands.spec import SAMPLE_RATE

checkout_domains()  # functions/speech on the import path: the build decodes as the server does
from aimass_speech.audio import decode, resample  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

ESPEAK = "espeak-ng"
GAP_10MS = 100  # pause between words, in espeak-ng's 10 ms units: longer than any voice's echo
SILENCE_RUN_S = 0.3  # a quiet run this long is a pause between words: longer than any closure in a word
ZERO = 3e-3  # -50 dBFS: quieter samples are pause (or the tail of a voice's echo)


@dataclass(frozen=True)
class Voice:
    """An espeak-ng speaker: accent (language voice) + variant, rate in words per minute, pitch 0-99."""

    accent: str
    variant: str
    speed: int = 175
    pitch: int = 50

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass(frozen=True)
class Speaker:
    """A voice of flite or festival, at a speaking rate (``stretch`` > 1 is slower) and a base pitch in Hz
    (``None``: the voice's own)."""

    synthesizer: str
    voice: str
    stretch: float = 1.0
    pitch: int | None = None

    @property
    def name(self) -> str:
        return f"{self.synthesizer}:{self.voice}"


def espeak_version() -> str:
    if shutil.which(ESPEAK) is None:
        raise BuildError(f"{ESPEAK} is not installed: run scripts/system-packages.sh (Debian package espeak-ng)")
    return subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def speak(words: Sequence[str], voice: Voice, *, gap_10ms: int = GAP_10MS) -> bytes:
    """A WAV file of ``words`` spoken by ``voice`` with pauses between them."""
    command = [ESPEAK, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-g", str(gap_10ms)]
    result = subprocess.run([*command, "--stdout", " ".join(words)], capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise BuildError(f"{ESPEAK} {voice.name} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def spoken_words(words: Sequence[str], voice: Voice) -> list[npt.NDArray[np.float32]]:
    """Each word of ``words`` spoken by ``voice``: mono float32 at the model's rate, trimmed of silence."""
    samples, rate = decode(speak(words, voice), max_seconds=600)
    pieces = _split(samples, rate)
    if len(pieces) != len(words):  # run together (or split): speak them one at a time
        pieces = [_whole(*decode(speak([word], voice), max_seconds=60)) for word in words]
    return [resample(piece, rate, SAMPLE_RATE) for piece in pieces]


def _split(samples: npt.NDArray[np.float32], rate: int) -> list[npt.NDArray[np.float32]]:
    import numpy as np

    sound = np.abs(samples) > ZERO
    edges = np.flatnonzero(np.diff(np.concatenate(([0], sound.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    # Keep a gap only where the silence between two sounds is a pause, not a closure inside a word.
    cut = (starts[1:] - ends[:-1]) >= SILENCE_RUN_S * rate
    first = np.concatenate(([starts[0]], starts[1:][cut])) if len(starts) else starts
    last = np.concatenate((ends[:-1][cut], [ends[-1]])) if len(ends) else ends
    return [samples[a:b] for a, b in zip(first.tolist(), last.tolist(), strict=True)]


def _whole(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    return trimmed(samples, ZERO)


def trimmed(samples: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.float32]:
    """``samples`` from the first to the last sample louder than ``threshold``."""
    import numpy as np

    sound = np.flatnonzero(np.abs(samples) > threshold)
    return samples[sound[0] : sound[-1] + 1] if len(sound) else samples
