"""How a route runs blocking inference.

The local server hands it to a worker thread so that one slow batch does not stall every other request
(ONNX Runtime releases the GIL). A Lambda container handles one request at a time, so there it runs
inline and skips the thread hop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


class Offload(Protocol):
    def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...


async def inline(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return fn(*args, **kwargs)


async def threaded(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


__all__ = ["Offload", "inline", "threaded"]
