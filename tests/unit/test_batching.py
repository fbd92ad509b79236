"""Large batches in chunks: the same rows, in order, whatever the chunk size."""

from __future__ import annotations

import numpy as np

from aimass.serving.batching import chunks, in_chunks


def test_chunks_cover_every_item_in_order() -> None:
    assert [len(chunk) for chunk in chunks(range(70), 32)] == [32, 32, 6]
    assert [item for chunk in chunks(iter(range(70)), 32) for item in chunk] == list(range(70))
    assert list(chunks([], 32)) == []


def test_in_chunks_equals_one_run() -> None:
    items = list(range(100))
    runs: list[int] = []

    def square(chunk: list[int]) -> np.ndarray:
        runs.append(len(chunk))
        return np.array([[value, value * value] for value in chunk])

    np.testing.assert_array_equal(in_chunks(items, square, size=32), square(items))
    assert runs[:4] == [32, 32, 32, 4]
