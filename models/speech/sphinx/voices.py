"""English speech from three synthesizers (Debian packages, installed by ``scripts/system-packages.sh``).

- **espeak-ng**: formant synthesis, rule-based; robotic, and far from any speech the acoustic model heard.
- **flite** (CMU): ``kal16`` is a diphone voice of a recorded US male speaker; ``slt``, ``awb`` and ``rms``
  are statistical parametric voices trained on the CMU ARCTIC recordings of three speakers (US female,
  Scottish male, US male).
- **festival** (Edinburgh): ``kal_diphone`` and ``ked_diphone`` (US male diphone voices) and
  ``cmu_us_slt_arctic_hts`` (HMM-based, US female).

Each writes a WAV file; the server decodes and resamples it as it would a client's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.buildkit import BuildError

PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}


@dataclass(frozen=True)
class Voice:
    synthesizer: str  # espeak-ng, flite or festival
    name: str  # the synthesizer's own name for the voice

    @property
    def label(self) -> str:
        return f"{self.synthesizer}:{self.name}"


VOICES = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-us+f3"),
    Voice("espeak-ng", "en-gb-x-rp+m3"),
    Voice("flite", "kal16"),
    Voice("flite", "slt"),
    Voice("flite", "awb"),
    Voice("flite", "rms"),
    Voice("festival", "kal_diphone"),
    Voice("festival", "ked_diphone"),
    Voice("festival", "cmu_us_slt_arctic_hts"),
)


def speak(voice: Voice, text: str) -> bytes:
    """A WAV file of ``text`` in ``voice``."""
    _need(voice.synthesizer)
    with tempfile.TemporaryDirectory(prefix="voice-") as scratch:
        out = Path(scratch) / "speech.wav"
        if voice.synthesizer == "espeak-ng":
            command, stdin = ["espeak-ng", "-v", voice.name, "-w", str(out), text], None
        elif voice.synthesizer == "flite":
            command, stdin = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)], None
        else:  # text2wave reads the text on its standard input; a voice is chosen by evaluating (voice_<name>)
            command, stdin = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out)], text.encode()
        result = subprocess.run(command, input=stdin, capture_output=True, check=False)
        if result.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            raise BuildError(f"{voice.label} could not speak: {result.stderr.decode(errors='replace').strip()}")
        return out.read_bytes()


def versions() -> dict[str, str]:
    """Each synthesizer's version line."""
    commands = {
        "espeak-ng": ["espeak-ng", "--version"],
        "flite": ["flite", "--version"],
        "festival": ["festival", "--version"],
    }
    found = {}
    for name, command in commands.items():
        _need(name)
        lines = subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip().splitlines()
        line = next((line for line in lines if "version" in line.lower() or name in line), lines[-1])
        found[name] = line.split("Data at:")[0].strip()  # espeak-ng's line goes on with its data folder
    return found


def _need(synthesizer: str) -> None:
    program = "text2wave" if synthesizer == "festival" else synthesizer
    if shutil.which(program) is None:
        raise BuildError(
            f"{program} is not installed: run scripts/system-packages.sh (Debian package {PACKAGES[synthesizer]})"
        )
