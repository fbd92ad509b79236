"""bench/warm_breakdown.py's recorded engine: its own answer, at once."""

from __future__ import annotations

from typing import Any

from bench.warm_breakdown import recording


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
