"""Speech from flite (CMU), the synthesizer held out of training: the model is measured on it.

flite's voices are recordings of other people (``awb`` Scottish male, ``rms`` US male, ``slt`` US female,
``kal``/``kal16`` US male, 8 and 16 kHz), made into voices by other methods (clustergen, diphones) than
any training voice. A flite call takes a few milliseconds, so every word is its own call: the pause flite
leaves between sentences is too short and too noisy to cut at.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError
from models.speech.commands.spec import SAMPLE_RATE
from models.speech.commands.synth import Speaker, trimmed

from aimass_speech.audio import decode, resample  # isort: skip  (importable once synth ran)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FLITE = "flite"
QUIET = 3e-3  # relative to the word's peak: flite's edges are low noise, not digital silence


def flite_version() -> str:
    if shutil.which(FLITE) is None:
        raise BuildError(f"{FLITE} is not installed: run scripts/system-packages.sh (Debian package flite)")
    # flite --version prints its banner and exits 1
    result = subprocess.run([FLITE, "--version"], capture_output=True, text=True, check=False)
    version = next((line for line in result.stdout.splitlines() if "version:" in line), "version: flite")
    return version.split("version:", 1)[1].split("(")[0].strip()


def speak(text: str, speaker: Speaker) -> bytes:
    """A WAV file of ``text`` said by ``speaker``."""
    settings = ["--setf", f"duration_stretch={speaker.stretch}"]
    if speaker.pitch is not None:
        settings += ["--setf", f"int_f0_target_mean={speaker.pitch}"]
    with tempfile.TemporaryDirectory(prefix="flite-") as scratch:
        out = Path(scratch) / "speech.wav"
        command = [FLITE, "-voice", speaker.voice, *settings, "-t", text, "-o", str(out)]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0 or not out.is_file():
            raise BuildError(f"flite {speaker.voice} failed: {result.stderr.decode(errors='replace').strip()}")
        return out.read_bytes()


def spoken_words(words: Sequence[str], speaker: Speaker) -> list[npt.NDArray[np.float32]]:
    """Each of ``words`` said by ``speaker``: mono float32 at the model's rate, trimmed of silence."""
    pieces = []
    for word in words:
        samples, rate = decode(speak(word, speaker), max_seconds=60)
        pieces.append(resample(trimmed(samples, QUIET * float(abs(samples).max())), rate, SAMPLE_RATE))
    return pieces
