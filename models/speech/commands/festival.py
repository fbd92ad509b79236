"""Speech from festival: its English voices, and its Czech, Italian, Finnish and Catalan voices reading English.

One festival process per speaker synthesizes all of its words, each into a file of its own, so there is
nothing to cut apart; a diphone voice synthesizes a word in a few milliseconds, the HTS voice in twenty.
The rate is festival's ``Duration_Stretch`` (HTS voices take hts_engine's ``-r``), the base pitch the
target mean of the linear-regression intonation model, where the voice has one.

festival now and then writes a word with garbage at its end (seen with czech_dita saying "off" stretched
1.11: samples past full scale where the word should fade, in about one run of a hundred on a busy machine),
which would change the trained weights and break the build's reproducibility. So every speaker is run at
least twice, and each word is taken once two runs agree on it exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.buildkit import BuildError
from models.speech.commands.accents import respell
from models.speech.commands.spec import FESTIVAL_LANGUAGES, SAMPLE_RATE
from models.speech.commands.synth import Speaker, trimmed

from aimass_speech.audio import decode, resample  # isort: skip  (importable once synth ran)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FESTIVAL = "festival"
LEXICON_VOICE = "kal_diphone"  # its lexicon (CMU) gives the English pronunciations
QUIET = 1e-3  # trimmed off a word's ends: a diphone voice's pauses are near, not exactly, zero
# festival reads 8-bit text: each language's voices expect their own character set.
ENCODINGS = {"czech": "iso-8859-2", "finnish": "latin-1", "italian": "ascii", "catalan": "ascii", "english": "ascii"}
RUNS = 5  # at most, per speaker: festival's garbage is rare, so two runs almost always agree on every word


def festival_version() -> str:
    if shutil.which(FESTIVAL) is None:
        raise BuildError(f"{FESTIVAL} is not installed: run scripts/system-packages.sh (Debian package festival)")
    result = subprocess.run([FESTIVAL, "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[0]


def pronunciations(words: Sequence[str]) -> dict[str, list[str]]:
    """Each word's phones (ARPAbet, lower case, stress dropped) from festival's English lexicon."""
    quoted = " ".join(f'"{word}"' for word in words)
    script = (
        f'(voice_{LEXICON_VOICE})\n(mapcar (lambda (w) (format t "%s %l\\n" w (lex.lookup w nil))) (list {quoted}))\n'
    )
    found: dict[str, list[str]] = {}
    for line in _run(script).splitlines():
        word, _, entry = line.partition(" ")
        # ("word" pos (((phone phone) stress) ((phone) stress) ...)): the syllables' phones, in order
        found[word] = [p for syllable in re.findall(r"\(\(([a-z ]+)\) \d\)", entry) for p in syllable.split()]
    missing = [word for word in words if not found.get(word)]
    if missing:
        raise BuildError(f"festival's English lexicon has no pronunciation of {missing}")
    return found


def spoken_words(words: Sequence[str], speaker: Speaker, phones: dict[str, list[str]]) -> list[npt.NDArray[np.float32]]:
    """Each of ``words`` said by ``speaker``: mono float32 at the model's rate, trimmed of silence."""
    language = FESTIVAL_LANGUAGES[speaker.voice]
    texts = [word if language == "english" else respell(phones[word], language) for word in words]
    waves = agreed(lambda: _waves(texts, speaker, language), f"festival {speaker.voice} saying {list(words)}")
    pieces = []
    for wave in waves:
        samples, rate = decode(wave, max_seconds=60)
        pieces.append(resample(trimmed(samples, QUIET * float(abs(samples).max())), rate, SAMPLE_RATE))
    return pieces


def agreed(run: Callable[[], list[bytes]], what: str) -> list[bytes]:
    """Each item as at least two of ``run``'s answers give it, running it again (up to ``RUNS`` times) while
    some item has no two answers alike."""
    answers: list[list[bytes]] = []
    while len(answers) < RUNS:
        answers.append(run())
        picked = [next((a for a in item if item.count(a) > 1), None) for item in zip(*answers, strict=True)]
        if len(answers) > 1 and all(wave is not None for wave in picked):
            return [wave for wave in picked if wave is not None]
    raise BuildError(f"{what}: no two of {RUNS} runs gave the same audio")


def _waves(texts: list[str], speaker: Speaker, language: str) -> list[bytes]:
    """One festival run: each text's RIFF file, as festival wrote it."""
    with tempfile.TemporaryDirectory(prefix="festival-") as scratch:
        files = [Path(scratch) / f"{index}.wav" for index in range(len(texts))]
        saves = [
            f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{file}" \'riff)'
            for text, file in zip(texts, files, strict=True)
        ]
        try:
            _run("\n".join([f"(voice_{speaker.voice})", *_settings(speaker), *saves]) + "\n", ENCODINGS[language])
        except BuildError:
            # Some diphone voices crash on some words stretched far (lp_diphone on "tu" at 1.31): the voice's
            # own rate, then.
            plain = Speaker(speaker.synthesizer, speaker.voice, pitch=speaker.pitch)
            _run("\n".join([f"(voice_{speaker.voice})", *_settings(plain), *saves]) + "\n", ENCODINGS[language])
        return [file.read_bytes() for file in files]


def _settings(speaker: Speaker) -> list[str]:
    settings = [f"(Parameter.set 'Duration_Stretch {speaker.stretch})"]
    if speaker.voice.endswith("_hts"):
        settings.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1 / speaker.stretch}))))')
    if speaker.pitch is not None:
        settings.append(
            f"(set! int_lr_params '((target_f0_mean {speaker.pitch}) (target_f0_std {speaker.pitch // 7}) "
            "(model_f0_mean 170) (model_f0_std 34)))"
        )
    return settings


def _run(script: str, encoding: str = "ascii") -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".scm", encoding=encoding) as file:
        file.write(script)
        file.flush()
        result = subprocess.run([FESTIVAL, "-b", file.name], capture_output=True, check=False)
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace").strip()[-500:] or f"exit status {result.returncode}"
        raise BuildError(f"festival failed: {error}")
    return result.stdout.decode("utf-8", errors="replace")
