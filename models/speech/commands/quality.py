"""Quality: the served model on speakers it never heard, word by word and in multi-word utterances.

Everything runs through the server's own code: the held-out clips through ``predict`` (the V2 path), the
utterances through the ``transcribe`` task of the runtime loaded from the build directory.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from models.buildkit import console, sig
from models.speech.commands.spec import ACCENTS, HELD_OUT_ACCENT, KEYWORDS, LABELS, SEQUENCES, TEST_VARIANTS
from models.speech.commands.synth import Voice, speak

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from aimass_speech.runtime import SpeechCommandsRuntime
    from models.speech.commands.data import Clips

SEQUENCE_VOICES = 6


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
    by_variant = {v: sig(correct[np.char.endswith(voices, f"+{v}")].mean()) for v in TEST_VARIANTS}
    by_accent = {a: sig(correct[np.char.startswith(voices, f"{a}+")].mean()) for a in ACCENTS}
    return {
        "clips": len(predicted),
        "accuracy": sig(correct.mean()),
        "keyword_accuracy": sig(correct[clips.labels < len(KEYWORDS)].mean()),
        "recall": recall,
        "accuracy_by_speaker": by_variant,
        "accuracy_by_accent": by_accent,
        "confusion": {"labels": list(LABELS), "matrix": confusion.tolist()},
    }


def rejection(runtime: SpeechCommandsRuntime, clips: Clips) -> dict[str, Any]:
    """How often words never heard in training are rejected as _unknown_ rather than taken for a keyword."""

    predicted = classify(runtime, clips.windows)
    unknown = LABELS.index("_unknown_")
    return {"clips": len(predicted), "rejected": sig((predicted == unknown).mean())}


def sequence_quality(runtime: SpeechCommandsRuntime, rng: np.random.Generator) -> dict[str, Any]:
    """Word accuracy (1 - word error rate) of the transcribe task on commands spoken with pauses."""
    from aimass_speech.runtime import TranscribeRequest

    errors = words = exact = 0
    examples: list[dict[str, str]] = []
    for text in SEQUENCES:
        for _ in range(SEQUENCE_VOICES):
            voice = held_out_voice(rng)
            wav = speak(text.split(), voice, gap_10ms=int(rng.integers(30, 61)))
            request = TranscribeRequest.model_validate({"file": base64.b64encode(wav).decode()})
            heard = str(runtime.transcribe(request).outputs["text"])
            errors += edit_distance(text.split(), heard.split())
            words += len(text.split())
            exact += heard == text
            if len(examples) < 2 * len(SEQUENCES) and heard != text:
                examples.append({"voice": voice.name, "said": text, "heard": heard})
    return {
        "utterances": len(SEQUENCES) * SEQUENCE_VOICES,
        "words": words,
        "word_accuracy": sig(1 - errors / words),
        "exact_utterances": sig(exact / (len(SEQUENCES) * SEQUENCE_VOICES)),
        "misheard_examples": examples,
    }


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
    sequences = quality["sequences"]
    console.print(
        f"utterances ({sequences['utterances']}, {sequences['words']} words): word accuracy "
        f"{sequences['word_accuracy']:.4f}, exactly right {sequences['exact_utterances']:.4f}"
    )
