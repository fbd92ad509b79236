"""bench/report.py and bench/run.py: a domain's results entry from its measurements, and the targets judged on it."""

from __future__ import annotations

from typing import Any

import pytest

from bench import cold_start, workloads
from bench.common import Stats
from bench.measure import Measurements
from bench.report import TARGET_ADDED_P50_MS, TARGET_COLD_RATIO, assemble, domain_targets
from bench.run import judged


def _stats(p50: float, p99: float) -> Stats:
    return Stats(p50_ms=p50, p99_ms=p99, mean_ms=p50, count=100)


def _cold(wall: float) -> list[cold_start.ColdRun]:
    # Three runs around a median of ``wall``: the entry keeps the median.
    return [cold_start.ColdRun(wall + delta, 0.02, wall / 2, wall / 4, 0.001, [0.0]) for delta in (-0.1, 0.0, 0.3)]


def measurements(*, raw: float, handler: float, codec: float, cold: float, floor: float) -> Measurements:
    warm = {
        "raw": _stats(raw, raw * 2),
        "raw_separate_session": _stats(raw * 1.1, raw * 2),
        "codec": _stats(codec, codec),
        "handler_v2": _stats(handler, handler + 0.2),
        "server_v2": _stats(handler + 0.5, handler + 1.0),
        "handler_act": _stats(handler + 0.05, handler + 0.3),
        "server_act": _stats(handler + 0.6, handler + 1.1),
    }
    return Measurements(
        warm=warm,
        cold={cold_start.HANDLER: _cold(cold), cold_start.FLOOR: _cold(floor), cold_start.HANDLER_SPLIT: _cold(cold)},
        memory={"peak_rss_mb": 91.44, "peak_rss_after_load_mb": 88.0, "rss_after_requests_mb": 90.0},
        throughput={"1": 5000.04, "8": 40000.0, "32": 130000.0},
        throughput_engine={"1": 9000.0, "8": 60000.0, "32": 200000.0},
        item={"observation": [0.0, 0.0, 0.0, 0.0]},
    )


def entry(**numbers: float) -> dict[str, Any]:
    return assemble(workloads.load("rl"), measurements(**numbers), {"mode": "full", "iterations": 100})


def test_added_times_are_the_paths_minus_the_raw_engine() -> None:
    # GIVEN the raw engine at 0.010 ms p50 (0.020 p99) and the handler at 0.270 ms (0.470 p99)
    result = entry(raw=0.01, handler=0.27, codec=0.004, cold=0.46, floor=0.115)
    # THEN what the handler adds is the difference, p50 from p50 and p99 from p99
    assert result["handler_added_p50_ms"] == 0.26
    assert result["handler_added_p99_ms"] == 0.45
    assert result["server_added_p50_ms"] == 0.76
    # AND the stack's share is what is left once the codec is taken out
    assert result["stack_added_p50_ms"] == 0.256
    # AND the other route is reported the same way, beside the headline
    assert result["act"]["handler_added_p50_ms"] == 0.31
    assert result["act"]["server_added_p50_ms"] == 0.86


def test_cold_start_ratio_is_the_median_handler_over_the_median_floor() -> None:
    result = entry(raw=0.01, handler=0.27, codec=0.004, cold=0.46, floor=0.115)
    assert (result["cold_start_s"], result["cold_start_floor_s"]) == (0.46, 0.115)
    assert result["cold_start_ratio"] == 4.0
    assert result["cold_start_floor_breakdown"]["imports_s"] == pytest.approx(0.058, abs=1e-3)
    assert "wall_s" not in result["cold_start_floor_breakdown"]


def test_targets_are_recorded_and_judged_on_the_rounded_numbers() -> None:
    missed = entry(raw=0.01, handler=0.27, codec=0.004, cold=0.46, floor=0.115)
    assert missed["targets"] == {"handler_added_p50_ms": TARGET_ADDED_P50_MS, "cold_start_ratio": TARGET_COLD_RATIO}
    assert missed["passed"] == {"handler_added_p50_ms": False, "cold_start_ratio": False}
    # 0.2504 ms is recorded as 0.25: the file and its verdict agree (the target is inclusive)
    met = entry(raw=0.01, handler=0.2604, codec=0.004, cold=0.13, floor=0.1)
    assert met["handler_added_p50_ms"] == 0.25 and met["cold_start_ratio"] == 1.3
    assert met["passed"] == {"handler_added_p50_ms": True, "cold_start_ratio": True}


def test_domain_targets_name_the_domain_and_the_numbers() -> None:
    targets = domain_targets("text", {"handler_added_p50_ms": 0.31, "cold_start_ratio": 1.2})
    assert [(t.name, t.met) for t in targets] == [
        ("text handler_added_p50_ms", False),
        ("text cold_start_ratio", True),
    ]
    assert targets[0].detail == "0.31 ms (target <= 0.25 ms)"


def test_the_runner_judges_every_measured_domain_from_the_results_file() -> None:
    document = {
        "rl": {"handler_added_p50_ms": 0.26, "cold_start_ratio": 3.9},
        "text": {"handler_added_p50_ms": 0.2, "cold_start_ratio": 1.1},
        "vision": {"handler_added_p50_ms": 0.1, "cold_start_ratio": 1.0},  # an old entry, not measured now
    }
    found = judged(document, ["rl", "text", "speech"], failed=["speech"])
    assert [(t.name, t.met) for t in found] == [
        ("rl handler_added_p50_ms", False),
        ("rl cold_start_ratio", False),
        ("text handler_added_p50_ms", True),
        ("text cold_start_ratio", True),
    ]
