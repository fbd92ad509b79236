"""bench/warm_breakdown.py's helpers: the recorded engine and the timing that leaves each set-up step out."""

from __future__ import annotations

import time
from typing import Any

from bench.warm_breakdown import recording, sample_after


def test_the_recording_runs_the_engine_once_per_request_of_outputs() -> None:
    runs: list[tuple[str, ...]] = []

    def run(names: list[str], feeds: dict[str, Any]) -> list[str]:
        runs.append(tuple(names))
        return [f"{name}={feeds['x']}" for name in names]

    recorded = recording(run)
    assert recorded(["y"], {"x": 1}) == ["y=1"]
    assert recorded(["y"], {"x": 2}) == ["y=1"]  # the recorded answer, whatever the feeds
    assert recorded(["y", "z"], {"x": 3}) == ["y=3", "z=3"]
    assert runs == [("y",), ("y", "z")]


def test_each_timing_follows_its_set_up_and_leaves_it_out() -> None:
    order: list[str] = []

    def slow_setup() -> None:
        order.append("setup")
        time.sleep(0.02)

    paths = {
        "after_setup": (slow_setup, lambda: order.append("timed")),
        "plain": (lambda: None, lambda: order.append("plain")),
    }
    samples = sample_after(paths, iterations=5, warmup=2)
    assert {name: len(values) for name, values in samples.items()} == {"after_setup": 5, "plain": 5}
    # The 20 ms set-up is not in the timing it precedes, which comes right after it.
    assert max(samples["after_setup"]) < 10_000_000
    assert order[:2] == ["setup", "timed"] and order.count("setup") == 7
