"""bench/common.py's measuring helpers: percentiles, interleaved sampling, the results file."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bench.common import Stats, merge_results, sample_interleaved, swapped, write_json


def test_stats_are_milliseconds_from_nanoseconds() -> None:
    # 1..100 ms: numpy's linear percentiles, p50 between the 50th and 51st sample
    stats = Stats.of([n * 1_000_000 for n in range(1, 101)])
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.count == 100


def test_stats_of_one_sample() -> None:
    stats = Stats.of([250_000])
    assert (stats.p50_ms, stats.p99_ms, stats.count) == (0.25, 0.25, 1)


def test_interleaved_sampling_rotates_the_order_and_times_every_path() -> None:
    calls: list[str] = []
    paths = {name: (lambda name=name: calls.append(name)) for name in ("raw", "codec", "handler")}
    samples = sample_interleaved(paths, iterations=3, warmup=1)
    assert {name: len(values) for name, values in samples.items()} == {"raw": 3, "codec": 3, "handler": 3}
    assert all(value >= 0 for values in samples.values() for value in values)
    # The warm-up in order, then each iteration starting one path later: no path always runs first.
    warmup = ["raw", "codec", "handler"]
    rotations = [["raw", "codec", "handler"], ["codec", "handler", "raw"], ["handler", "raw", "codec"]]
    assert calls == warmup + [name for order in rotations for name in order]


def test_a_set_up_runs_right_before_its_path_and_is_left_out_of_its_time() -> None:
    order: list[str] = []

    def slow_setup() -> None:
        order.append("setup")
        time.sleep(0.02)

    paths = {"after_setup": lambda: order.append("timed"), "plain": lambda: order.append("plain")}
    samples = sample_interleaved(paths, iterations=5, warmup=2, setups={"after_setup": slow_setup})
    assert {name: len(values) for name, values in samples.items()} == {"after_setup": 5, "plain": 5}
    # The 20 ms set-up is not in the time of the path it precedes, which runs right after it.
    assert max(samples["after_setup"]) < 10_000_000
    assert order[:3] == ["setup", "timed", "plain"] and order.count("setup") == 7
    assert all(order[i + 1] == "timed" for i, step in enumerate(order) if step == "setup")


def test_merge_replaces_one_entry_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "records" / "results.json"
    merge_results(out, "text", {"handler_added_p50_ms": 0.3})
    merge_results(out, "rl", {"handler_added_p50_ms": 0.2, "measured_at": "2026-12-01T00:00:00Z"})
    merge_results(out, "text", {"handler_added_p50_ms": 0.28})
    document = json.loads(out.read_text())
    assert document["rl"] == {"handler_added_p50_ms": 0.2, "measured_at": "2026-12-01T00:00:00Z"}
    # An entry without a date of its own is dated as it is merged
    assert document["text"]["handler_added_p50_ms"] == 0.28
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["text"]["measured_at"])
    assert not list(out.parent.glob("*.tmp"))  # written through a scratch file, then renamed


def test_merge_starts_afresh_from_a_broken_file(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text("{not json")
    merge_results(out, "rl", {"x": 1})
    assert list(json.loads(out.read_text())) == ["rl"]


def test_write_json_is_indented_with_a_final_newline(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b.json"
    write_json(out, {"k": [1, 2]})
    assert out.read_text() == '{\n  "k": [\n    1,\n    2\n  ]\n}\n'


def test_swapped_restores_the_attribute_even_on_error() -> None:
    class Owner:
        name = "original"

    seen = []

    def fail() -> None:
        with swapped(Owner, "name", "replaced"):
            seen.append(Owner.name)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert (seen, Owner.name) == (["replaced"], "original")
