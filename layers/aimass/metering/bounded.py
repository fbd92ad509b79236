"""A mapping with a stated maximum size, for every table that clients' requests add entries to.

Cached key records, rate-limit buckets and exhausted quotas are keyed by what a request presents; a plain
dict of them grows with every distinct value a client sends and is never emptied. ``BoundedCache`` holds at
most ``max_entries``: past that the least recently used entry goes. With ``ttl_s`` an entry is also dropped
once it is older than that (when it is read, or when it reaches the old end of the cache), so expired
entries do not wait for eviction to free their memory.

Values must not be None: ``get`` answers None for an entry that is absent or expired.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Least recently used entries evicted past ``max_entries``; entries older than ``ttl_s`` dropped; thread-safe."""

    def __init__(
        self, max_entries: int, *, ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The entry's value, if present and not expired (it becomes the most recently used)."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if self._expired(hit[0], self._clock()):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` as new (its age starts now), evicting what is expired or over the bound."""
        with self._lock:
            self._store(key, value)

    def get_or_put(self, key: K, make: Callable[[], V]) -> V:
        """The entry's value, or ``make()`` stored and returned: one step, so two threads never make two."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and not self._expired(hit[0], self._clock()):
                self._entries.move_to_end(key)
                return hit[1]
            value = make()
            self._store(key, value)
            return value

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def _store(self, key: K, value: V) -> None:
        now = self._clock()
        self._entries[key] = (now, value)
        self._entries.move_to_end(key)
        # The old end holds the least recently used entries, the likeliest to have expired: drop those first.
        while self._entries:
            oldest_key, (at, _) = next(iter(self._entries.items()))
            if len(self._entries) <= self.max_entries and not self._expired(at, now):
                break
            del self._entries[oldest_key]

    def _expired(self, at: float, now: float) -> bool:
        return self.ttl_s is not None and now - at >= self.ttl_s
