"""Lists in pages, as OpenAI's list endpoints give them: ``limit`` items after the item whose id is ``after``.

One reading of the two query parameters for every list of a tenant's things (files, batches), so that each
refuses a bad ``limit`` or an unknown ``after`` with the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aimass.errors import InvalidInput
from aimass.protocol import wire

T = TypeVar("T")


def page_size(raw: str | None, *, most: int, default: int) -> int:
    """``limit`` as given (decimal digits, 1 to ``most``), or ``default`` when it is absent."""
    if raw is None:
        return default
    size = wire.decimal(raw)
    if size is None or not 1 <= size <= most:
        raise InvalidInput(f"limit must be a whole number from 1 to {most}, got {raw!r}", param="limit")
    return size


def page_after(
    items: Sequence[T], after: str | None, size: int, *, id_of: Callable[[T], str], what: str
) -> tuple[list[T], bool]:
    """The ``size`` items that follow the one whose id is ``after`` (from the first when None), and whether
    more follow them; an ``after`` that is none of ``items`` is a 400 naming ``what`` they are."""
    first = 0
    if after is not None:
        first = next((n + 1 for n, item in enumerate(items) if id_of(item) == after), -1)
        if first < 0:
            raise InvalidInput(f"after {after!r} is not one of {what}", param="after")
    return list(items[first : first + size]), first + size < len(items)
