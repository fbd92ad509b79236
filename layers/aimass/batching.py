"""Large batches run through the engine in chunks: a request's memory is bounded by the chunk, not its size.

ONNX Runtime sizes its buffers for the batch it is given, and keeps its arena grown: one 256-image request
once took a vision function to 3.5 GB, and 256 long texts the text function to 2.8 GB (bench/sizing.py).
Chunks of 32 keep the peak near what 32 items need, at no measurable cost in throughput (the engine is
already compute-bound at that batch size), and the answer is the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

CHUNK = 32
T = TypeVar("T")


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def in_chunks(items: Iterable[T], run: Callable[[list[T]], npt.NDArray[Any]], size: int = CHUNK) -> npt.NDArray[Any]:
    """``run`` over consecutive chunks of ``items``, the results stacked in order (one chunk: no copy)."""
    results = [run(chunk) for chunk in chunks(items, size)]
    return results[0] if len(results) == 1 else np.concatenate(results)
