"""The bounded cache behind every table a request can grow: never past its bound, least recently used out first,
expired entries dropped."""

from __future__ import annotations

import pytest

from aimass.metering.bounded import BoundedCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_past_its_bound_the_least_recently_used_entry_goes() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    for number, key in enumerate("abc"):
        cache.put(key, number)
    assert cache.get("a") == 0  # read: now the most recently used
    cache.put("d", 3)
    assert len(cache) == 3
    assert (cache.get("a"), cache.get("b"), cache.get("c"), cache.get("d")) == (0, None, 2, 3)


def test_a_flood_of_distinct_keys_never_grows_it_past_its_bound() -> None:
    cache: BoundedCache[int, bool] = BoundedCache(100)
    for key in range(10_000):
        cache.put(key, True)
        assert len(cache) <= 100
    assert cache.get(9_999) is True and cache.get(0) is None


def test_expired_entries_are_dropped_when_read_or_when_they_reach_the_old_end() -> None:
    clock = Clock()
    cache: BoundedCache[str, str] = BoundedCache(10, ttl_s=30, clock=clock)
    cache.put("old", "x")
    clock.now += 20
    cache.put("new", "y")
    clock.now += 15  # "old" is 35 s old, "new" 15 s
    assert cache.get("new") == "y"
    cache.put("newest", "z")  # the put sweeps the expired "old" out of the old end
    assert len(cache) == 2 and cache.get("old") is None
    clock.now += 30
    assert cache.get("newest") is None and len(cache) == 1


def test_a_put_restarts_the_age_and_get_or_put_makes_once() -> None:
    clock = Clock()
    cache: BoundedCache[str, list[int]] = BoundedCache(2, ttl_s=10, clock=clock)
    made = cache.get_or_put("k", lambda: [1])
    assert cache.get_or_put("k", lambda: [2]) is made
    clock.now += 10
    assert cache.get_or_put("k", lambda: [3]) == [3]  # expired: made anew
    cache.pop("k")
    assert len(cache) == 0


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, got 0"):
        BoundedCache(0)
