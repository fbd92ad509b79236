"""bench/sizing.py's rules: from measured times and peak memory to a function's memory_mb and timeout_s."""

from __future__ import annotations

from typing import Any

import pytest

from aimass.contract import MB_PER_VCPU
from bench.sizing import (
    FRACTION_MB,
    cpu_memory_mb,
    long_text,
    memory_floor_mb,
    seconds_at,
    suggest,
    summarise,
    timeout_s,
    v2_binary_windows,
    windows,
)


@pytest.mark.parametrize(("peak", "floor"), [(90.0, 192), (325.0, 512), (2767.0, 4160), (3482.0, 5248)])
def test_memory_floor_is_half_again_the_peak_in_64_mb_steps(peak: float, floor: int) -> None:
    assert memory_floor_mb(peak) == floor
    assert floor % 64 == 0 and floor >= 1.5 * peak


def test_a_fraction_of_a_vcpu_stretches_one_threads_time() -> None:
    assert seconds_at(MB_PER_VCPU // 2, 1.0, 0.6) == pytest.approx(2.0, rel=1e-3)
    assert seconds_at(MB_PER_VCPU, 1.0, 0.6) == 1.0
    # 3,008 MB runs two threads on 1.7 vCPU: counted at one thread's pace, the safe side.
    assert seconds_at(3008, 1.0, 0.6) == 1.0
    assert seconds_at(2 * MB_PER_VCPU, 1.0, 0.6) == 0.6


@pytest.mark.parametrize(
    ("largest_s", "expected"), [(0.0001, 3), (0.3, 3), (0.32, 5), (0.61, 10), (1.2, 15), (2.1, 29), (6.2, 29)]
)
def test_timeout_is_ten_times_the_largest_request_rounded_up_to_a_step(largest_s: float, expected: int) -> None:
    assert timeout_s(largest_s) == expected


@pytest.mark.parametrize(
    ("one_item_ms", "speedup", "memory"),
    [(5.0, 1.6, 2 * MB_PER_VCPU), (5.0, 1.1, MB_PER_VCPU), (0.7, 0.9, MB_PER_VCPU), (0.012, 1.0, FRACTION_MB)],
)
def test_cpu_memory_follows_what_one_item_gains_from_a_second_thread(
    one_item_ms: float, speedup: float, memory: int
) -> None:
    assert cpu_memory_mb(one_item_ms, speedup) == memory


def test_suggest_takes_the_larger_of_the_memory_floor_and_the_cpu_share() -> None:
    # GIVEN a model that gains nothing from a second thread but peaks at 2.8 GB on its largest request
    suggested = suggest(one_ms=(5.0, 4.8), largest_ms=(20_000.0, 11_000.0), peak_rss_mb=2767.0)
    # THEN memory covers the peak (and buys 2.35 vCPU: the two-thread time counts), the timeout is capped
    assert suggested["memory_mb"] == 4160
    assert suggested["largest_s_at_memory"] == 11.0
    assert suggested["timeout_s"] == 29
    # AND a tiny model gets a fraction of a vCPU, its timeout Lambda's least
    tiny = suggest(one_ms=(0.012, 0.013), largest_ms=(0.06, 0.07), peak_rss_mb=98.0)
    assert (tiny["memory_mb"], tiny["timeout_s"]) == (FRACTION_MB, 3)


def test_summarise_combines_the_probes() -> None:
    def memory(first_ms: float, peak: float) -> dict[str, Any]:
        cases = {"one": {"first_ms": 2.0, "peak_rss_mb": 100.0}, "largest": {"first_ms": first_ms, "peak_rss_mb": peak}}
        return {"model": "m/1", "rss_after_load_mb": 90.0, "rss_after_inputs_mb": 95.0, "cases": cases}

    timed = {
        "one": {"label": "1 item", "items": 1, "p50_ms_1t": 1.0, "p50_ms_2t": 0.5, "runs": 30},
        "largest": {"label": "256 items", "items": 256, "p50_ms_1t": 300.0, "p50_ms_2t": 200.0, "runs": 3},
    }
    entry = summarise({1: memory(400.0, 600.0), 2: memory(250.0, 640.0)}, {"cases": timed, "others_cpu_share": 0.0})
    assert entry["peak_rss_mb"] == 640.0 and entry["slowest_case"] == "largest"
    assert entry["cases"]["largest"]["speedup"] == 1.5 and entry["cases"]["one"]["speedup"] == 2.0
    # Two threads pay for their memory here; the first call (400 ms at 1 thread) is the slower of the two numbers.
    assert entry["suggested"]["memory_mb"] == 2 * MB_PER_VCPU
    assert entry["suggested"]["largest_s_at_memory"] == 0.25


def test_long_text_stops_at_the_token_limit() -> None:
    def words(text: str) -> int:
        return len(text.split())

    sentences = ["one two three", "four five", "six seven eight nine"]
    assert long_text(sentences, words, 5) == "one two three four five"
    with pytest.raises(ValueError, match="fewer than 50 tokens"):
        long_text(sentences, words, 50)


def test_request_shapes() -> None:
    assert windows(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    # 6 MiB of float32 1-second windows at 16 kHz, a kilobyte of header aside.
    assert v2_binary_windows(6 * 1024 * 1024, 16_000) == 98
