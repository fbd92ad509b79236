"""Long recordings: their length read from the header alone (aimass_speech.audio.duration), and cut into pieces
at their pauses (aimass_speech.pieces)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from aimass.errors import InvalidInput, PayloadTooLarge
from aimass.serving.domains import checkout_domains
from tests.tiny_speech import encoded, pcm_wav, tone

checkout_domains()
from aimass_speech import audio  # noqa: E402
from aimass_speech.audio import duration  # noqa: E402
from aimass_speech.pieces import pieces  # noqa: E402

RATE = 16000


def speech(words: int, pause_s: float, *, word_s: float = 0.4) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Tones as words, ``pause_s`` of silence between them, and where each pause lies."""
    gap = np.zeros(round(pause_s * RATE), np.float32)
    parts, pauses, at = [], [], 0
    for _ in range(words):
        sound = tone("stop", seconds=word_s)
        parts += [sound, gap]
        at += len(sound)
        pauses.append((at, at + len(gap)))
        at += len(gap)
    return np.concatenate(parts), pauses


@pytest.mark.parametrize("kind", ["WAV", "FLAC", "OGG"])
def test_the_length_is_read_from_the_header(kind: str) -> None:
    samples = tone("up", seconds=2.5)
    data = pcm_wav(samples) if kind == "WAV" else encoded(samples, kind)
    assert duration(data) == pytest.approx(2.5, abs=1e-3)


def test_a_header_is_checked_as_decoding_checks_it() -> None:
    with pytest.raises(InvalidInput, match="is not a WAV, FLAC, OGG or MP3 file"):
        duration(b"not audio at all")
    with pytest.raises(InvalidInput, match="looks like OGG but cannot be decoded"):
        duration(b"OggS" + bytes(64))


def test_a_file_holds_at_most_max_samples_whatever_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 31 s of 192 kHz 8-channel silence as FLAC: a few kilobytes that would decode to 47.6 million samples
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", 192000, 8, format="FLAC", subtype="PCM_16") as out:
        for _ in range(31):
            out.write(np.zeros((192000, 8), np.float32))
    # THEN its header alone refuses it
    with pytest.raises(PayloadTooLarge, match=r"holds 47,616,000 samples \(frames x channels\), over the per-request"):
        duration(buffer.getvalue())
    # AND a WAV's too (the limit lowered here, so that the test need not hold 92 MB of samples)
    monkeypatch.setattr(audio, "MAX_SAMPLES", 8 * RATE)
    with pytest.raises(PayloadTooLarge, match="samples"):
        duration(pcm_wav(np.zeros(RATE + 1, np.float32), channels=8))
    assert duration(pcm_wav(np.zeros(RATE, np.float32), channels=8)) == 1.0


def test_a_short_recording_is_one_piece() -> None:
    samples, _ = speech(20, 0.5)
    assert pieces(samples, RATE, 30.0) == [(0, len(samples))]


def test_a_long_recording_is_cut_in_its_pauses_into_pieces_no_longer_than_asked() -> None:
    # GIVEN 90 words, each followed by a pause (0.9 s each: 81 s)
    samples, pauses = speech(90, 0.5)
    # WHEN it is cut into pieces of at most 20 s
    cut = pieces(samples, RATE, 20.0)
    # THEN the pieces cover it in order without gaps or overlaps, each at most 20 s (and one 10 ms frame)
    assert cut[0][0] == 0 and cut[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cut))
    assert all(end - start <= 20.01 * RATE for start, end in cut) and len(cut) >= 5
    # AND every cut is inside a pause, never in a word
    for _, end in cut[:-1]:
        assert any(low <= end < high for low, high in pauses), end / RATE


def test_without_pauses_a_recording_is_still_cut() -> None:
    samples = (np.random.default_rng(0).standard_normal(45 * RATE) * 0.1).astype(np.float32)
    cut = pieces(samples, RATE, 30.0)
    assert len(cut) == 2 and cut[-1][1] == len(samples) and cut[0][1] - cut[0][0] <= 30 * RATE
