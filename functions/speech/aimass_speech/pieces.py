"""Long recordings in pieces that a recogniser decodes whole: cut at the quietest moments, in pauses where the
speaker makes them.

A file a synchronous request carries (at most 30 s) is one piece. A longer one (a batch's) is cut into pieces
of at most ``longest_s``: each cut is the middle of the quietest QUIET_S (the lowest mean energy) within the
last SEARCH_S of the piece, which is a pause between words wherever the speaker pauses at all. Each piece is
then decoded on its own and its words' times moved by where it starts, so times run on across the file.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

HOP_S = 0.01  # energy is measured every 10 ms
QUIET_S = 0.3  # the cut is the middle of the quietest 0.3 s...
SEARCH_S = 10.0  # ...in the last 10 s of a piece


def pieces(samples: npt.NDArray[np.float32], rate: int, longest_s: float) -> list[tuple[int, int]]:
    """The ``(start, end)`` sample ranges of the pieces of ``samples``, in order, covering it without gaps."""
    longest = round(longest_s / HOP_S)
    hop = round(HOP_S * rate)
    frames = len(samples) // hop
    if len(samples) <= longest_s * rate or frames <= longest:
        return [(0, len(samples))]
    blocks = np.asarray(samples[: frames * hop], dtype=np.float64).reshape(frames, hop)
    energy = np.square(blocks).mean(axis=1)
    width = max(1, round(QUIET_S / HOP_S))
    quiet = np.convolve(energy, np.ones(width) / width, mode="same")  # mean energy around each frame
    search = min(round(SEARCH_S / HOP_S), longest - 1)
    cuts, start = [0], 0
    while frames - start > longest:
        low = start + longest - search
        start = low + int(np.argmin(quiet[low : start + longest]))
        cuts.append(start)
    bounds = [cut * hop for cut in cuts] + [len(samples)]
    return list(itertools.pairwise(bounds))
