"""The data: which voices say which words, and how each recording becomes the window the model reads.

Training voices and test voices never share a speaker (variant), one accent is heard only in the test set,
and one synthesizer (flite) only in its own test set. Every clip, clean or augmented, goes through the
server's own cutting (``aimass_speech.words``): the word is found by the energy detector in its
surroundings, cut out with its margins and centred in a 1-second window, so the model is trained on
exactly what the transcribe task will show it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.speech.commands.spec import (
    ACCENTS,
    CLIP_SAMPLES,
    FESTIVAL_LANGUAGES,
    FLITE_FEMALE,
    FLITE_VOICES,
    HELD_OUT_ACCENT,
    KEYWORDS,
    LABELS,
    SAMPLE_RATE,
    SILENCE,
    TEST_VARIANTS,
    TRAIN_VARIANTS,
    UNKNOWN,
    UNKNOWN_TEST,
    UNKNOWN_TRAIN,
)
from models.speech.commands.synth import Speaker, Voice, spoken_words
from models.speech.commands.vocoder import vocode

from aimass_speech.audio import resample  # isort: skip  (importable once synth ran)
from aimass_speech.words import find_words, word_window  # isort: skip

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.float32]

SETTINGS_PER_TRAIN_VARIANT = 2
SETTINGS_PER_FESTIVAL_VOICE = 14
FESTIVAL_STRETCH = (0.8, 1.35)
FESTIVAL_PITCH = (75, 230)  # Hz, the intonation model's target mean
UNKNOWN_PER_TRAIN_VOICE = 5
UNKNOWN_PER_TEST_VOICE = 3
NOVEL_PER_TEST_VOICE = 3
WARP = (0.85, 1.3)  # speed perturbation factors: > 1 sounds higher and faster (a child), < 1 lower and slower


Plan = list[tuple[Voice | Speaker, list[str]]]


@dataclass(frozen=True)
class Recording:
    voice: Voice | Speaker
    word: str
    samples: Samples

    @property
    def novel(self) -> bool:
        """A word heard only in the test set."""
        return self.word in UNKNOWN_TEST

    @property
    def label(self) -> int:
        return LABELS.index(self.word if self.word in KEYWORDS else UNKNOWN)


@dataclass(frozen=True)
class Clips:
    """Windows [n, CLIP_SAMPLES] with their class indices and the voice that spoke each one."""

    windows: Samples
    labels: npt.NDArray[np.int64]
    voices: tuple[str, ...]


def concat(*parts: Clips) -> Clips:
    import numpy as np

    return Clips(
        np.concatenate([p.windows for p in parts]),
        np.concatenate([p.labels for p in parts]),
        tuple(v for p in parts for v in p.voices),
    )


def train_plan(rng: np.random.Generator) -> Plan:
    """espeak-ng's training speakers in random accents, rates and pitches, and every festival voice at random
    rates (and pitches, where the voice takes one); each says the keywords and a few other words."""
    accents = [a for a in ACCENTS if a != HELD_OUT_ACCENT]
    plan: Plan = []
    for variant in TRAIN_VARIANTS:
        for _ in range(SETTINGS_PER_TRAIN_VARIANT):
            voice = Voice(str(rng.choice(accents)), variant, int(rng.integers(120, 231)), int(rng.integers(20, 81)))
            plan.append((voice, [*KEYWORDS, *_unknown_words(rng)]))
    for name in FESTIVAL_LANGUAGES:
        for _ in range(SETTINGS_PER_FESTIVAL_VOICE):
            stretch = round(float(rng.uniform(*FESTIVAL_STRETCH)), 2)
            pitch = int(rng.integers(*FESTIVAL_PITCH)) if rng.random() < 0.7 else None
            plan.append((Speaker("festival", name, stretch, pitch), [*KEYWORDS, *_unknown_words(rng)]))
    return plan


def _unknown_words(rng: np.random.Generator) -> list[str]:
    return [str(w) for w in rng.choice(UNKNOWN_TRAIN, UNKNOWN_PER_TRAIN_VOICE, replace=False)]


def test_plan(rng: np.random.Generator) -> Plan:
    """Every test speaker in every accent says the keywords, some other words heard in training (as in the
    Speech Commands test set: new speakers, same vocabulary) and some words never heard at all."""
    plan: Plan = []
    for variant in TEST_VARIANTS:
        for accent in ACCENTS:
            voice = Voice(accent, variant, int(rng.integers(140, 201)), int(rng.integers(30, 71)))
            known = rng.choice(UNKNOWN_TRAIN, UNKNOWN_PER_TEST_VOICE, replace=False).tolist()
            novel = rng.choice(UNKNOWN_TEST, NOVEL_PER_TEST_VOICE, replace=False).tolist()
            plan.append((voice, [*KEYWORDS, *known, *novel]))
    return plan


@dataclass(frozen=True)
class TestSets:
    """What the build measures the model on; the same windows whatever the training data (own seeds)."""

    held_out: Clips  # held-out espeak-ng speakers (and accent): keywords, known other words, silence
    noisy: Clips  # the same recordings through the training augmentation
    novel: Clips  # words never heard in training, by the held-out speakers
    held_out_synthesizer: Clips  # flite: keywords, known other words, silence
    synthesizer_novel: Clips  # words never heard in training, by flite


def held_out_sets(seed: int, silence: int, cache: Path | None = None) -> TestSets:
    import numpy as np

    rng = np.random.default_rng([seed, 2])
    speakers = synthesize(test_plan(rng), cache)
    synthesizer = synthesize(flite_plan(np.random.default_rng([seed, 3])), cache)
    known = [r for r in speakers if not r.novel]
    test_silence = silence_clips(silence, rng)
    return TestSets(
        held_out=concat(clean_clips(known), test_silence),
        noisy=concat(augmented_clips(known, 1, rng), test_silence),
        novel=clean_clips([r for r in speakers if r.novel]),
        held_out_synthesizer=concat(clean_clips([r for r in synthesizer if not r.novel]), test_silence),
        synthesizer_novel=clean_clips([r for r in synthesizer if r.novel]),
    )


def flite_plan(rng: np.random.Generator) -> Plan:
    """The held-out synthesizer: every flite voice at four rates and pitches says the keywords, three known
    other words and three never heard."""
    plan: Plan = []
    for voice in FLITE_VOICES:
        low, high = (150, 220) if voice in FLITE_FEMALE else (85, 135)
        for stretch, pitch in ((1.0, None), (0.85, None), (1.2, high), (1.0, low)):
            known = rng.choice(UNKNOWN_TRAIN, UNKNOWN_PER_TEST_VOICE, replace=False).tolist()
            novel = rng.choice(UNKNOWN_TEST, NOVEL_PER_TEST_VOICE, replace=False).tolist()
            plan.append((Speaker("flite", voice, stretch, pitch), [*KEYWORDS, *known, *novel]))
    return plan


def synthesize(plan: Plan, cache: Path | None = None) -> list[Recording]:
    """Every word of the plan spoken by its voice; synthesizer processes run two at a time (one per core).

    With ``cache``, the audio is kept there under a hash of the plan and the synthesizers' versions, so a
    rebuild with the same plan synthesizes nothing.
    """
    import numpy as np

    file = cache / f"{_plan_key(plan)}.npz" if cache else None
    if file and file.is_file():
        with np.load(file) as stored:
            pieces = np.split(stored["samples"], np.cumsum(stored["lengths"])[:-1])
    else:
        pieces = [piece for spoken in _spoken(plan) for piece in spoken]
        if file:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(partial, samples=np.concatenate(pieces), lengths=np.array([len(p) for p in pieces]))
            partial.replace(file)
    words = [(voice, word) for voice, said in plan for word in said]
    return [Recording(voice, word, samples) for (voice, word), samples in zip(words, pieces, strict=True)]


def _spoken(plan: Plan) -> list[list[Samples]]:
    from models.speech.commands import festival, flite

    festival_words = sorted({w for voice, words in plan if isinstance(voice, Speaker) for w in words})
    phones = festival.pronunciations(festival_words) if any(_accented(voice) for voice, _ in plan) else {}

    def speak(item: tuple[Voice | Speaker, list[str]]) -> list[Samples]:
        voice, words = item
        if isinstance(voice, Voice):
            return spoken_words(words, voice)
        if voice.synthesizer == "flite":
            return flite.spoken_words(words, voice)
        return festival.spoken_words(words, voice, phones)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(speak, plan))


def _plan_key(plan: Plan) -> str:
    from models.speech.commands.festival import festival_version
    from models.speech.commands.flite import flite_version
    from models.speech.commands.synth import espeak_version

    # "agreed": festival's words as two of its runs give them (festival.agreed); audio cached by one run may hold
    # one of its rare garbled words, so it is made again.
    versions = (espeak_version(), festival_version(), "agreed", flite_version(), SAMPLE_RATE)
    return hashlib.sha256(repr((versions, plan)).encode()).hexdigest()[:24]


def _accented(voice: Voice | Speaker) -> bool:
    return isinstance(voice, Speaker) and FESTIVAL_LANGUAGES.get(voice.voice, "english") != "english"


def clean_clips(recordings: Sequence[Recording]) -> Clips:
    import numpy as np

    windows = [single_word_window(r.samples, lead=0.3, tail=0.3) for r in recordings]
    return _clips(np.stack(windows), recordings)


def augmented_clips(
    recordings: Sequence[Recording], copies: int, rng: np.random.Generator, *, vocoded: float = 0.0
) -> Clips:
    """``copies`` noisy, reverberant, shifted versions of every recording, a share of them ``vocoded``."""
    import numpy as np

    bank = noise_bank(rng)
    windows, sources = [], []
    for recording in recordings:
        for _ in range(copies):
            windows.append(augment(recording.samples, bank, rng, vocoded=vocoded))
            sources.append(recording)
    return _clips(np.stack(windows), sources)


def silence_clips(count: int, rng: np.random.Generator) -> Clips:
    """Background only: coloured noise and hum at any level, some of it cut the way a stray noise would be."""
    import numpy as np

    bank = noise_bank(rng)
    windows = []
    for index in range(count):
        length = int(rng.integers(CLIP_SAMPLES, 2 * CLIP_SAMPLES))
        level = 10 ** (rng.uniform(-75, -20) / 20)
        noisy = _crop(bank, length, rng) * level if index % 10 else np.zeros(length)
        background = noisy.astype(np.float32)
        spans = find_words(background, SAMPLE_RATE)
        if spans and index % 2:
            start, end = spans[int(rng.integers(len(spans)))]
            windows.append(word_window(background, start, end, CLIP_SAMPLES, SAMPLE_RATE))
        else:
            windows.append(background[:CLIP_SAMPLES])
    label = LABELS.index(SILENCE)
    return Clips(np.stack(windows), np.full(count, label, dtype=np.int64), ("noise",) * count)


def single_word_window(word: Samples, *, lead: float, tail: float) -> Samples:
    """The window the server would cut around a word heard in ``lead`` and ``tail`` seconds of context."""
    import numpy as np

    before, after = round(lead * SAMPLE_RATE), round(tail * SAMPLE_RATE)
    context = np.concatenate([np.zeros(before, np.float32), word, np.zeros(after, np.float32)])
    return _cut(context, before, before + len(word))


def augment(word: Samples, bank: npt.NDArray[np.float64], rng: np.random.Generator, *, vocoded: float = 0.0) -> Samples:
    import numpy as np

    sound = word.astype(np.float64)
    if vocoded and rng.random() < vocoded:
        sound = vocode(sound, rng)
    if (
        rng.random() < 0.5
    ):  # speed perturbation: formants, pitch and tempo scaled together (a shorter or longer vocal tract)
        sound = resample(sound, SAMPLE_RATE, round(SAMPLE_RATE / rng.uniform(*WARP))).astype(np.float64)
    if rng.random() < 0.3:
        sound = reverberate(sound, rng)
    before, after = (round(rng.uniform(0.1, 0.5) * SAMPLE_RATE) for _ in range(2))
    context = np.concatenate([np.zeros(before), sound, np.zeros(after)])
    if rng.random() < 0.7:
        level = np.sqrt(np.mean(np.square(sound))) * 10 ** (-rng.uniform(5, 35) / 20)
        context += _crop(bank, len(context), rng) * level
    context *= 10 ** (rng.uniform(-30, 0) / 20) / max(1e-9, float(np.abs(context).max()))
    window = _cut(context.astype(np.float32), before, before + len(sound))
    return np.roll(window, int(rng.integers(-1600, 1601)))  # off-centre by up to 0.1 s


def reverberate(sound: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A small room: exponentially decaying noise after the direct sound, RT60 0.1-0.6 s."""
    import numpy as np

    rt60 = rng.uniform(0.1, 0.6)
    times = np.arange(round(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(times)) * np.exp(-6.9 * times / rt60) * rng.uniform(0.05, 0.3)
    response[0] = 1.0
    size = 1 << (len(sound) + len(response) - 2).bit_length()  # a power of two: the fastest FFT length
    wet = np.fft.irfft(np.fft.rfft(sound, size) * np.fft.rfft(response, size), size)
    return np.asarray(wet[: len(sound) + len(response) - 1], dtype=np.float64)


def noise_bank(rng: np.random.Generator, count: int = 48, seconds: float = 4.0) -> npt.NDArray[np.float64]:
    """Noises of many colours to crop from: one FFT per bank entry instead of one per clip."""
    import numpy as np

    return np.stack([noise(round(seconds * SAMPLE_RATE), rng) for _ in range(count)])


def noise(length: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Unit-RMS noise with a 1/f^a spectrum (white a=0 to brown a=2), sometimes with mains hum."""
    import numpy as np

    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.maximum(np.fft.rfftfreq(length, 1 / SAMPLE_RATE), 20.0)
    coloured = np.fft.irfft(spectrum / freqs ** (rng.uniform(0, 2) / 2), length)
    if rng.random() < 0.2:
        times = np.arange(length) / SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        coloured += sum(np.sin(2 * np.pi * mains * k * times + rng.uniform(0, 6.3)) / k for k in range(1, 6)) * 0.05
    return np.asarray(coloured / max(1e-12, float(np.sqrt(np.mean(np.square(coloured))))), dtype=np.float64)


def _crop(bank: npt.NDArray[np.float64], length: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    row, start = int(rng.integers(len(bank))), int(rng.integers(bank.shape[1] - length + 1))
    return bank[row, start : start + length]


def _cut(context: Samples, start: int, end: int) -> Samples:
    # The word is one word: whatever the detector found of it (or the word itself, if it found nothing) is one span.
    spans = [(a, b) for a, b in find_words(context, SAMPLE_RATE) if a < end and b > start]
    if spans:
        start, end = spans[0][0], spans[-1][1]
    return word_window(context, start, end, CLIP_SAMPLES, SAMPLE_RATE)


def _clips(windows: Samples, recordings: Sequence[Recording]) -> Clips:
    import numpy as np

    labels = np.array([r.label for r in recordings], dtype=np.int64)
    return Clips(windows, labels, tuple(r.voice.name for r in recordings))
