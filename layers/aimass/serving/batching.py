"""A request's work, bounded: its items reach the engine in chunks, and its decoding is budgeted up front.

ONNX Runtime sizes its buffers for the batch it is given, and keeps its arena grown: one 256-image request
once took a vision function to 3.5 GB, and 256 long texts the text function to 2.8 GB (bench/sizing.py).
Chunks of 32 keep the peak near what 32 items need, at no measurable cost in throughput (the engine is
already compute-bound at that batch size), and the answer is the same rows in the same order.

A chunk holds items in their small, fed form: ``decode_within`` decodes each item straight into it (an
image cropped and resized) as the chunks are filled, so that no more than one full-size item is ever alive.
What decoding costs is known from each item's header before any is decoded (an image's width x height, an
audio file's frames), and a request's sum is held to a budget (``check_budget``, a 413) first, because a
few kilobytes of PNG can decode to billions of pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from aimass.errors import PayloadTooLarge

CHUNK = 32
T = TypeVar("T")
Out = TypeVar("Out")


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def in_chunks(items: Iterable[T], run: Callable[[list[T]], npt.NDArray[Any]], size: int = CHUNK) -> npt.NDArray[Any]:
    """``run`` over consecutive chunks of ``items``, the results stacked in order (one chunk: no copy)."""
    results = [run(chunk) for chunk in chunks(items, size)]
    return results[0] if len(results) == 1 else np.concatenate(results)


def decode_within(
    items: Sequence[T],
    *,
    cost: Callable[..., float],
    decode: Callable[..., Out],
    limit: float,
    unit: str,
    param: str,
    counted: str = "",
) -> Iterator[Out]:
    """Each item's ``decode(item, where=...)``, one at a time, once every item's ``cost(item, where=...)``
    (read from its header: cheap, and it checks the item) has been summed and held to ``limit``.

    The checks run when this is called, so that a bad item or a request over its budget is refused before
    anything is decoded; the decoding runs as the iterator is consumed, each item before the next. ``where``
    is ``param[i]``, for the messages.
    """
    places = [f"{param}[{i}]" for i in range(len(items))]
    spent = sum(cost(item, where=where) for item, where in zip(items, places, strict=True))
    check_budget(spent, limit, unit=unit, param=param, counted=counted)
    return (decode(item, where=where) for item, where in zip(items, places, strict=True))


def check_budget(
    spent: float,
    limit: float,
    *,
    unit: str,
    param: str,
    counted: str = "",
    advice: str = "split the request into smaller ones",
) -> None:
    """Refuse (413) a request whose work, counted from its items' headers, is over its per-request budget.

    ``unit`` names what is counted ("pixels"), ``counted`` how, for the message (" (width x height, ...)").
    """
    if spent > limit:
        raise PayloadTooLarge(
            f"'{param}' holds {_amount(spent)} {unit}{counted}, over the per-request limit of {_amount(limit)} "
            f"{unit}; {advice}",
            param=param,
        )


def _amount(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"
