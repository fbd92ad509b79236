"""Explicit overload: a bound on the requests one process runs at once per model.

Past the bound a request is refused at once with a 503 and ``Retry-After`` instead of waiting behind the others,
so a client sees either an answer in bounded time or a refusal it can retry elsewhere or later.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from aimass.errors import RETRY_AFTER_S, ModelOverloaded


class InFlight:
    """Counts each model's requests in flight in this process, and refuses those past ``limit``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    @contextlib.contextmanager
    def admitted(self, model: str, limit: int) -> Iterator[None]:
        with self._lock:
            running = self._counts.get(model, 0)
            if running >= limit:
                raise ModelOverloaded(
                    f"model '{model}' is answering {running} requests, its bound here (max_in_flight); "
                    f"retry in {RETRY_AFTER_S} s",  # and Retry-After says so (ServiceUnavailable)
                )
            self._counts[model] = running + 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[model] -= 1

    def count(self, model: str) -> int:
        with self._lock:
            return self._counts.get(model, 0)


# One per process, shared by every service's Schedule (as the learnt rates are).
IN_FLIGHT = InFlight()
