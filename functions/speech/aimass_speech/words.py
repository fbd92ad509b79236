"""Cutting an utterance into words, and each word into the fixed window the model reads.

The model hears one word per window; an utterance of several commands separated by pauses is split where
the short-time energy drops to the background, each word is cut out with a margin and centred in a window
of silence. The model build passes every training clip through ``find_words`` and ``word_window`` too, so
the model learns from exactly what the server will show it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

FRAME_S, HOP_S = 0.02, 0.01
SILENT_DBFS = -55.0  # a recording whose loudest frame is below this holds no speech
DYNAMIC_DB = 40.0  # frames this far below the loudest are background...
ABOVE_FLOOR_DB = 10.0  # ...and so are frames this close to the noise floor (the 10th percentile)
MERGE_GAP_S = 0.18  # closures inside a word ("six", "stop", "eight") are shorter than this
MIN_WORD_S = 0.08
MARGIN_S = 0.08  # kept either side of a word: weak onsets and endings (/f/, /s/, released stops)
FADE_S = 0.005


def find_words(samples: Samples, rate: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` sample ranges of the words in ``samples``, margins included, in order."""
    frame, hop = round(FRAME_S * rate), round(HOP_S * rate)
    padded = np.pad(samples, (0, max(0, frame - len(samples))))
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    level = 10 * np.log10(np.mean(np.square(windows, dtype=np.float64), axis=1) + 1e-12)
    peak, floor = float(level.max()), float(np.percentile(level, 10))
    if peak < SILENT_DBFS:
        return []
    # Speech is what stands out of the background: 10 dB above the floor, or halfway up to the peak in a noisy
    # recording (or one trimmed so tight that its quietest frames are speech); and never more than 40 dB down.
    above_floor = min(ABOVE_FLOOR_DB, (peak - floor) / 2)
    voiced = level >= max(peak - DYNAMIC_DB, floor + above_floor)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], voiced.astype(np.int8), [0]))))
    runs: list[list[int]] = []
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if runs and (start - runs[-1][1]) * hop < MERGE_GAP_S * rate:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    margin = round(MARGIN_S * rate)
    return [
        (max(0, start * hop - margin), min(len(samples), (end - 1) * hop + frame + margin))
        for start, end in runs
        if (end - start) * hop >= MIN_WORD_S * rate
    ]


def word_window(samples: Samples, start: int, end: int, length: int, rate: int) -> Samples:
    """``samples[start:end]`` faded at its edges and centred in ``length`` samples of silence (cropped if longer)."""
    word = np.array(samples[start:end], dtype=np.float32)
    if len(word) > length:
        cut = (len(word) - length) // 2
        word = word[cut : cut + length]
    fade = min(round(FADE_S * rate), len(word) // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
        word[:fade] *= ramp
        word[len(word) - fade :] *= ramp[::-1]
    window = np.zeros(length, dtype=np.float32)
    offset = (length - len(word)) // 2
    window[offset : offset + len(word)] = word
    return window


def cut_words(samples: Samples, rate: int, length: int) -> tuple[list[tuple[int, int]], Samples]:
    """The words of an utterance: their sample ranges, and a [words, length] batch of windows for the model."""
    spans = find_words(samples, rate)
    windows = [word_window(samples, start, end, length, rate) for start, end in spans]
    return spans, np.stack(windows) if windows else np.zeros((0, length), dtype=np.float32)
