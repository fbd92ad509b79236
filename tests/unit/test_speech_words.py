"""Cutting utterances into words (aimass_speech.words): where the pauses are, and the windows the model reads."""

from __future__ import annotations

import numpy as np
import pytest

from aimass.serving.domains import checkout_domains
from tests.tiny_speech import RATE, tone, utterance

checkout_domains()
from aimass_speech.words import MARGIN_S, cut_words, find_words, word_window  # noqa: E402


def test_bursts_separated_by_pauses_are_found_in_order_with_their_margins() -> None:
    # GIVEN three 0.4 s bursts, 0.35 s apart, after 0.25 s of silence
    signal = utterance(["up", "down", "stop"])
    # WHEN the words are found
    spans = find_words(signal, RATE)
    # THEN there are three, each starting and ending where its burst does, give or take the margin
    assert len(spans) == 3
    starts = [0.25 + i * 0.75 for i in range(3)]
    for (start, end), expected in zip(spans, starts, strict=True):
        assert start / RATE == pytest.approx(expected - MARGIN_S, abs=0.03)
        assert end / RATE == pytest.approx(expected + 0.4 + MARGIN_S, abs=0.03)


def test_a_short_closure_inside_a_word_does_not_split_it() -> None:
    # "stop", "six", "eight": 0.1 s of silence inside a word is a closure, not a pause.
    word = np.concatenate([tone("up", 0.2), np.zeros(round(0.1 * RATE), np.float32), tone("up", 0.1)])
    signal = np.concatenate([np.zeros(4000, np.float32), word, np.zeros(4000, np.float32)])
    assert len(find_words(signal, RATE)) == 1


def test_clicks_shorter_than_a_word_are_ignored() -> None:
    signal = np.zeros(RATE, np.float32)
    signal[8000:8400] = 0.5  # 25 ms
    assert find_words(signal, RATE) == []


@pytest.mark.parametrize("level", [0.0, 1e-4])
def test_silence_and_near_silence_hold_no_words(level: float) -> None:
    noise = np.random.default_rng(0).standard_normal(2 * RATE).astype(np.float32) * level
    assert find_words(noise, RATE) == []


def test_words_are_found_in_steady_background_noise() -> None:
    rng = np.random.default_rng(1)
    signal = utterance(["up", "up"]) + rng.standard_normal(len(utterance(["up", "up"]))).astype(np.float32) * 0.02
    assert len(find_words(signal, RATE)) == 2


def test_a_word_trimmed_to_its_edges_is_still_one_word() -> None:
    assert find_words(tone("down", 0.5), RATE) == [(0, round(0.5 * RATE))]


def test_the_window_centres_the_word_in_silence() -> None:
    signal = utterance(["up", "down"])
    (first, second), windows = cut_words(signal, RATE, RATE)
    assert windows.shape == (2, RATE) and windows.dtype == np.float32
    for (start, end), window in zip((first, second), windows, strict=True):
        sound = np.flatnonzero(np.abs(window) > 1e-6)
        middle = (sound[0] + sound[-1]) / 2
        assert middle == pytest.approx(RATE / 2, abs=0.01 * RATE)
        assert sound[-1] - sound[0] <= end - start
    # The neighbouring word is not in the window: only "up" (3000 Hz) is in the first.
    spectrum = np.abs(np.fft.rfft(windows[0]))
    assert spectrum[300] < 0.01 * spectrum[3000]


def test_a_span_longer_than_the_window_is_cropped_around_its_middle() -> None:
    signal = np.arange(3 * RATE, dtype=np.float32)
    window = word_window(signal, 0, 3 * RATE, RATE, RATE)
    assert window[RATE // 2] == RATE + RATE // 2


def test_no_words_give_an_empty_batch() -> None:
    spans, windows = cut_words(np.zeros(RATE, np.float32), RATE, RATE)
    assert spans == [] and windows.shape == (0, RATE)
