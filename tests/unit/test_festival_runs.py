"""festival's words are taken only once two of its runs agree on each (models.speech.commands.festival.agreed):
an occasional run with garbage in one word neither reaches the training set nor changes the build."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from models.buildkit import BuildError
from models.speech.commands.festival import RUNS, agreed

WORDS = [b"RIFF zero", b"RIFF one", b"RIFF off"]


def runs(*answers: list[bytes]) -> tuple[Callable[[], list[bytes]], list[int]]:
    """A festival that gives these answers in turn, and the count of its runs."""
    given: Iterator[list[bytes]] = iter(answers)
    calls = [0]

    def run() -> list[bytes]:
        calls[0] += 1
        return next(given)

    return run, calls


def test_two_runs_that_agree_are_taken() -> None:
    run, calls = runs(list(WORDS), list(WORDS), list(WORDS))
    assert agreed(run, "czech_dita") == WORDS
    assert calls == [2]


def test_a_word_with_garbage_is_taken_from_the_runs_that_agree_on_it() -> None:
    # GIVEN a first run whose last word ends in garbage
    glitched = [*WORDS[:2], b"RIFF of\xff\x7f"]
    run, calls = runs(glitched, list(WORDS), list(WORDS))
    # THEN a third run decides it, and every word is the one two runs gave
    assert agreed(run, "czech_dita") == WORDS
    assert calls == [3]


def test_runs_that_never_agree_stop_the_build_naming_the_speaker() -> None:
    run, calls = runs(*[[b"RIFF %d" % attempt] for attempt in range(RUNS + 1)])
    with pytest.raises(BuildError, match=f"czech_dita saying .*: no two of {RUNS} runs gave the same audio"):
        agreed(run, "festival czech_dita saying ['off']")
    assert calls == [RUNS]
