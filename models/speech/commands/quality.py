"""Quality: the served model on speakers and a synthesizer it never heard, word by word and in multi-word
utterances.

Everything runs through the server's own code: the held-out clips through ``predict`` (the V2 path), the
utterances through the ``transcribe`` task of the runtime loaded from the build directory.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.buildkit import BuildError, console, sig
from models.speech.commands.spec import (
    ACCENTS,
    FLITE_VOICES,
    HELD_OUT_ACCENT,
    HELD_OUT_SYNTHESIZER,
    KEYWORDS,
    LABELS,
    MIN_ACCURACY,
    MIN_SYNTHESIZER_ACCURACY,
    SAMPLE_RATE,
    SEQUENCES,
    TEST_VARIANTS,
)
from models.speech.commands.synth import Speaker, Voice, speak

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from aimass_speech.runtime import SpeechCommandsRuntime
    from models.speech.commands.data import Clips, TestSets

SEQUENCE_VOICES = 3  # espeak-ng speakers per sequence; every flite voice says every sequence
PREVIOUS = Path(__file__).with_name("previous.json")
PAUSES = (0.25, 0.6)  # seconds between the commands of a flite utterance


def measure(runtime: SpeechCommandsRuntime, tests: TestSets, seed: int) -> dict[str, Any]:
    """Every measurement of the build, on the test sets of ``data.held_out_sets``."""
    import numpy as np

    quality = {
        "held_out": clip_quality(runtime, tests.held_out),
        "held_out_noisy": clip_quality(runtime, tests.noisy),
        "novel_words": rejection(runtime, tests.novel),
        "held_out_synthesizer": clip_quality(runtime, tests.held_out_synthesizer),
        "held_out_synthesizer_novel_words": rejection(runtime, tests.synthesizer_novel),
        "sequences": sequence_quality(runtime, np.random.default_rng([seed, 4])),
    }
    noisy = quality["held_out_noisy"]
    del noisy["confusion"], noisy["accuracy_by_speaker"], noisy["accuracy_by_accent"]
    return quality


def check_minimums(quality: dict[str, Any]) -> None:
    """The build's quality gate: accuracy on held-out speakers and on the held-out synthesizer each at least
    its minimum; raises BuildError naming the test set, the accuracy measured and the minimum."""
    for name, minimum in (("held_out", MIN_ACCURACY), ("held_out_synthesizer", MIN_SYNTHESIZER_ACCURACY)):
        if quality[name]["accuracy"] < minimum:
            raise BuildError(f"{name} accuracy {quality[name]['accuracy']:.4f} is below the minimum {minimum}")


def previous_quality() -> dict[str, Any]:
    """The previous version's numbers on these same test sets (measured once, kept in previous.json)."""
    document: dict[str, Any] = json.loads(PREVIOUS.read_text())
    return document


def classify(runtime: SpeechCommandsRuntime, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    import numpy as np

    batches = [
        runtime.predict({"waveform": windows[i : i + 512]}).outputs["probabilities"]
        for i in range(0, len(windows), 512)
    ]
    return np.asarray(np.concatenate(batches).argmax(axis=1), dtype=np.int64)


def clip_quality(runtime: SpeechCommandsRuntime, clips: Clips) -> dict[str, Any]:
    """Accuracy, per-class recall and the confusion matrix (rows: true class, columns: predicted)."""
    import numpy as np

    predicted = classify(runtime, clips.windows)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(confusion, (clips.labels, predicted), 1)
    recall = {label: sig(confusion[i, i] / max(1, confusion[i].sum())) for i, label in enumerate(LABELS)}
    correct = predicted == clips.labels
    voices = np.array(clips.voices)
    if any(name.startswith(f"{HELD_OUT_SYNTHESIZER}:") for name in clips.voices):
        groups = {"accuracy_by_voice": {v: voices == f"{HELD_OUT_SYNTHESIZER}:{v}" for v in FLITE_VOICES}}
    else:
        groups = {
            "accuracy_by_speaker": {v: np.char.endswith(voices, f"+{v}") for v in TEST_VARIANTS},
            "accuracy_by_accent": {a: np.char.startswith(voices, f"{a}+") for a in ACCENTS},
        }
    return {
        "clips": len(predicted),
        "accuracy": sig(correct.mean()),
        "keyword_accuracy": sig(correct[clips.labels < len(KEYWORDS)].mean()),
        "recall": recall,
        **{group: {k: sig(correct[mask].mean()) for k, mask in masks.items()} for group, masks in groups.items()},
        "confusion": {"labels": list(LABELS), "matrix": confusion.tolist()},
    }


def rejection(runtime: SpeechCommandsRuntime, clips: Clips) -> dict[str, Any]:
    """How often words never heard in training are rejected as _unknown_ rather than taken for a keyword."""

    predicted = classify(runtime, clips.windows)
    unknown = LABELS.index("_unknown_")
    return {"clips": len(predicted), "rejected": sig((predicted == unknown).mean())}


def sequence_quality(runtime: SpeechCommandsRuntime, rng: np.random.Generator) -> dict[str, Any]:
    """The transcribe task on commands spoken with pauses: by held-out espeak-ng speakers (one espeak-ng call
    with pauses between the words) and by every voice of the held-out synthesizer (the words spoken one by
    one, joined by 0.25-0.6 s of silence)."""
    espeak = [
        (text, voice.name, speak(text.split(), voice, gap_10ms=int(rng.integers(30, 61))))
        for text in SEQUENCES
        for voice in (held_out_voice(rng) for _ in range(SEQUENCE_VOICES))
    ]
    held_out = [
        (text, speaker.name, flite_utterance(text, speaker, rng))
        for text in SEQUENCES
        for speaker in flite_speakers(rng)
    ]
    return {"held_out_speakers": transcripts(runtime, espeak), "held_out_synthesizer": transcripts(runtime, held_out)}


def transcripts(runtime: SpeechCommandsRuntime, utterances: Sequence[tuple[str, str, bytes]]) -> dict[str, Any]:
    """Word accuracy (1 - word error rate) and exactly right utterances of the transcribe task."""
    from aimass_speech.runtime import TranscribeRequest

    errors = words = exact = 0
    examples: list[dict[str, str]] = []
    for text, voice, wav in utterances:
        request = TranscribeRequest.model_validate({"file": base64.b64encode(wav).decode()})
        heard = str(runtime.transcribe(request).outputs["text"])
        errors += edit_distance(text.split(), heard.split())
        words += len(text.split())
        exact += heard == text
        if len(examples) < 10 and heard != text:
            examples.append({"voice": voice, "said": text, "heard": heard})
    return {
        "utterances": len(utterances),
        "words": words,
        "word_accuracy": sig(1 - errors / words),
        "exact_utterances": sig(exact / len(utterances)),
        "misheard_examples": examples,
    }


def flite_speakers(rng: np.random.Generator) -> list[Speaker]:
    """Every flite voice once, at a random rate and its own pitch."""
    return [Speaker(HELD_OUT_SYNTHESIZER, voice, round(float(rng.uniform(0.9, 1.15)), 2)) for voice in FLITE_VOICES]


def flite_utterance(text: str, speaker: Speaker, rng: np.random.Generator) -> bytes:
    """A 16 kHz WAV file of the words of ``text``, each spoken on its own, with pauses between them."""
    import numpy as np

    from models.speech.commands.flite import spoken_words

    parts: list[npt.NDArray[np.float32]] = []
    for word in spoken_words(text.split(), speaker):
        parts += [np.zeros(round(rng.uniform(*PAUSES) * SAMPLE_RATE), np.float32), word]
    parts.append(np.zeros(round(PAUSES[0] * SAMPLE_RATE), np.float32))
    return wav_file(np.concatenate(parts))


def wav_file(samples: npt.NDArray[np.float32]) -> bytes:
    """16-bit PCM mono WAV at the model's rate."""
    import io
    import wave

    import numpy as np

    pcm = (np.clip(samples / max(1e-9, float(np.abs(samples).max())) * 0.7, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def held_out_voice(rng: np.random.Generator) -> Voice:
    return Voice(
        str(rng.choice(ACCENTS)), str(rng.choice(TEST_VARIANTS)), int(rng.integers(140, 201)), int(rng.integers(30, 71))
    )


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    row = list(range(len(hypothesis) + 1))
    for i, said in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, heard in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (said != heard))
    return row[-1]


def print_quality(quality: dict[str, Any]) -> None:
    held_out = quality["held_out"]
    console.print(
        f"held-out speakers ({held_out['clips']} clips, {len(TEST_VARIANTS)} speakers x {len(ACCENTS)} accents, "
        f"accent {HELD_OUT_ACCENT} never in training): accuracy {held_out['accuracy']:.4f}, "
        f"keywords {held_out['keyword_accuracy']:.4f}"
    )
    worst = sorted(held_out["recall"].items(), key=lambda item: item[1])[:5]
    console.print("  lowest recall: " + ", ".join(f"{label} {value:.3f}" for label, value in worst))
    console.print(f"  with noise and reverberation: accuracy {quality['held_out_noisy']['accuracy']:.4f}")
    console.print(f"  never-heard words rejected as _unknown_: {quality['novel_words']['rejected']:.4f}")
    synthesizer = quality["held_out_synthesizer"]
    console.print(
        f"held-out synthesizer {HELD_OUT_SYNTHESIZER} ({synthesizer['clips']} clips): accuracy "
        f"{synthesizer['accuracy']:.4f}, keywords {synthesizer['keyword_accuracy']:.4f}; by voice "
        + ", ".join(f"{voice} {value:.3f}" for voice, value in synthesizer["accuracy_by_voice"].items())
    )
    worst = sorted(synthesizer["recall"].items(), key=lambda item: item[1])[:5]
    console.print("  lowest recall: " + ", ".join(f"{label} {value:.3f}" for label, value in worst))
    console.print(f"  never-heard words rejected: {quality['held_out_synthesizer_novel_words']['rejected']:.4f}")
    for group, sequences in quality["sequences"].items():
        console.print(
            f"utterances, {group.replace('_', ' ')} ({sequences['utterances']}, {sequences['words']} words): "
            f"word accuracy {sequences['word_accuracy']:.4f}, exactly right {sequences['exact_utterances']:.4f}"
        )
