"""What one loaded version has served in this process: its requests, server errors and inference times.

Every model call passes ``aimass.metering.meter.measured``, which notes here how it went; the canary policy
(``aimass.serving.canary``) reads it to decide whether a canary version is promoted or rolled back. A client's
error (a 4xx: a bad input) is not the version's and is not counted; a server error is. Times are kept up to a
bound, the most recent ones, which is all a p95 over a canary's window needs.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

KEPT_TIMES = 10_000


@dataclass(frozen=True)
class Seen:
    requests: int
    errors: int
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class Observed:
    """Thread-safe counts of one runtime's calls since it loaded (or since ``reset``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._errors = 0
        self._times: deque[float] = deque(maxlen=KEPT_TIMES)

    def served(self, ms: float) -> None:
        with self._lock:
            self._requests += 1
            self._times.append(ms)

    def failed(self) -> None:
        with self._lock:
            self._requests += 1
            self._errors += 1

    def reset(self) -> None:
        with self._lock:
            self._requests = self._errors = 0
            self._times.clear()

    def seen(self) -> Seen:
        with self._lock:
            times = sorted(self._times)
            requests, errors = self._requests, self._errors
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else None
        return Seen(requests, errors, p95)
