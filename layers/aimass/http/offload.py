"""How a route runs blocking inference.

The local server hands it to a worker thread so that one slow batch does not stall every other request
(ONNX Runtime releases the GIL). A Lambda container handles one request at a time, so there it runs
inline and skips the thread hop.

Between the two, ``threaded_unless_alone``: a long-lived server's request that is the only one its process
holds runs inline too. The hop is two thread wake-ups, a tenth of a sentence embedding's time on two cores, and
buys nothing when nothing else waits. The server's protocol says what its process holds (``HELD``, set per
request by ``aimass serve``'s worker app): while the inline call runs, the event loop reads nothing new, so only
routes whose small requests are short take it, and only for bodies up to ``ALONE_MAX_BODY`` bytes; any second
request sends the next ones to the threads (and to micro-batching).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sized
from contextvars import ContextVar
from typing import ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# The requests this request's server process holds (itself included), where the server says; None elsewhere.
HELD: ContextVar[Sized | None] = ContextVar("aimass_held", default=None)
# A sentence or a few hundred floats: what one engine call answers in milliseconds.
ALONE_MAX_BODY = 4096


class Offload(Protocol):
    def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...


async def inline(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return fn(*args, **kwargs)


# The web stack (asyncio, anyio) is imported by the offloads that use it: a function's direct Lambda path calls
# handlers without either.


async def threaded(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


async def threaded_unless_alone(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    import asyncio

    from starlette.concurrency import run_in_threadpool

    held = HELD.get()
    if held is not None and len(held) <= 1:
        # Two turns of the loop first: the first accepts a connection waiting behind this request, the second
        # reads its headers (its request is then held too). Tens of microseconds, against the hop's hundreds.
        for _ in range(2):
            await asyncio.sleep(0)
        if len(held) <= 1:
            return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


__all__ = ["ALONE_MAX_BODY", "HELD", "Offload", "inline", "threaded", "threaded_unless_alone"]
