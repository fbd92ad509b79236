"""Each bench script's stated targets, judged on the numbers it records (no measurement runs here)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import batch, batch_scale, budgets, llm, metering, quantization, server_mode, tensor


def _verdicts(targets: list[Any]) -> dict[str, bool]:
    return {target.name: target.met for target in targets}


def test_metering_splits_the_observer_from_the_metering() -> None:
    added = metering.added({"off": 0.30, "metering": 0.47, "metering+observer": 0.66})
    assert added == {"added_p50_ms": 0.17, "observer_added_p50_ms": 0.19, "deployed_added_p50_ms": 0.36}


@pytest.mark.parametrize(("added_ms", "met"), [(0.17, True), (0.3, True), (0.31, False)])
def test_metering_target_is_what_keys_and_metering_add(added_ms: float, met: bool) -> None:
    # The observer's share is reported, not judged: the target is the metering's (bench/metering.py).
    result = {"domain": "rl", "added_p50_ms": added_ms, "deployed_added_p50_ms": 5.0}
    assert _verdicts(metering.targets(result)) == {"rl metering added_p50_ms": met}


def test_batch_judges_text_and_vision_runs_only() -> None:
    text = {
        "model": "all-minilm-l6-v2@1",
        "v2_per_32": {"items_per_s": 575.0, "ratio_to_engine": 0.925},
        "embeddings_per_1": {"items_per_s": 598.0, "ratio_to_engine": 0.971},
        "engine": {"items_per_s": 620.0},
    }
    assert _verdicts(batch.targets("text", text)) == {
        "text v2_per_32 ratio_to_engine": True,
        "text embeddings_per_1 ratio_to_engine": True,
    }
    # The entry's own targets and verdicts are not runs
    vision = {
        "v2_per_32": {"items_per_s": 134.0, "ratio_to_engine": 0.899},
        "targets": {"min_ratio_to_engine": 0.9},
        "passed": {"vision v2_per_32 ratio_to_engine": False},
    }
    assert _verdicts(batch.targets("vision", vision)) == {"vision v2_per_32 ratio_to_engine": False}
    # Speech's and rl's lines cost more to parse than their engine: reported, not judged.
    assert batch.targets("speech", {"v2_per_32": {"items_per_s": 138.0, "ratio_to_engine": 0.07}}) == []


def test_batch_scale_checks_are_its_targets() -> None:
    good = {
        "status": "completed",
        "one_output_per_input_in_order": True,
        "error_lines": 0,
        "billed_units": 2000,
        "billed_once": True,
    }
    assert all(_verdicts(batch_scale.targets("vision", good)).values())
    bad = {**good, "status": "failed", "error_lines": 2, "billed_once": False}
    assert _verdicts(batch_scale.targets("vision", bad)) == {
        "vision completed": False,
        "vision one output per input, in order": True,
        "vision no error line": False,
        "vision billed once": False,
    }


def test_budgets_goals() -> None:
    attack = {"peak_over_idle_mb": 1100.0, "wall_s": 0.01}
    assert _verdicts(budgets.targets("vision_attack", attack)) == {"vision_attack peak_over_idle_mb": False}
    assert _verdicts(budgets.targets("vision_classify_attack", {"peak_over_idle_mb": 2.0})) == {
        "vision_classify_attack peak_over_idle_mb": True
    }
    assert _verdicts(budgets.targets("text_long", {"wall_s": 0.06})) == {"text_long wall_s": True}
    assert _verdicts(budgets.targets("text_long", {"wall_s": 4.8})) == {"text_long wall_s": False}
    assert budgets.targets("vision_costs", {}) == []  # measured, with no goal of its own


def test_llm_goals() -> None:
    result = {"decode": {"http_ratio": 1.004}, "concurrent": {"streams": 8, "ratio": 2.64}}
    assert _verdicts(llm.targets(result)) == {"llm decode http_ratio": True, "llm concurrent ratio (8 streams)": False}


def test_tensor_import_must_hold_a_swaps_peak() -> None:
    # 400 MiB, as measured: base 78 MB, a session being built peaks at 1,280 MB, 900 MB stay resident
    found = {"base_mb": 78.0, "build_peak_mb": 1280.0, "resident_mb": 900.0, "memory_needed_mb": 2361}
    assert tensor.swap_peak_mb(found) == pytest.approx(2102.0)
    results: dict[str, Any] = {
        "machine": {},
        "400_mib": {**found, "swap_peak_mb": 2102.0},
        "20_mib": {"memory_needed_mb": 200, "swap_peak_mb": 218.0},
    }
    assert _verdicts(tensor.targets(results)) == {
        "tensor 400_mib memory_needed_mb over swap_peak_mb": True,
        "tensor 20_mib memory_needed_mb over swap_peak_mb": False,
    }


def test_quantization_judges_every_report_and_skips_refusals() -> None:
    results = {
        "all-minilm-l6-v2": {
            "int8-dynamic": {
                "targets": [
                    {"metric": "cosine_min", "target": ">= 0.99", "value": 0.995, "met": True},
                    {"metric": "speedup", "target": ">= 1.2", "value": 1.1, "met": False},
                ]
            },
            "fp16": {"error": "fp16 is refused on CPU"},
        }
    }
    found = quantization.targets(results)
    assert _verdicts(found) == {
        "all-minilm-l6-v2 int8-dynamic cosine_min": True,
        "all-minilm-l6-v2 int8-dynamic speedup": False,
    }
    assert found[1].detail == "1.1 (>= 1.2)"


def test_server_mode_judges_aimass_against_every_peer_configuration_and_the_engine() -> None:
    best = {
        "raw engine, 1 process(es), batch 1": {"sentences_per_s": 370.0, "p50_ms_per_call": 2.7},
        "aimass serve (micro-batching), c=1": {"req_per_s": 300.0, "p50_ms": 3.1},
        "aimass serve (micro-batching), c=16": {"req_per_s": 800.0, "p50_ms": 20.0},
        "aimass serve (each request alone), c=16": {"req_per_s": 500.0, "p50_ms": 30.0},
        "FastAPI + uvicorn, c=16": {"req_per_s": 500.0, "p50_ms": 30.0},
        "MLServer, c=16": {"req_per_s": 400.0, "p50_ms": 40.0},
        "MLServer (adaptive batching 8, 2 ms), c=16": {"req_per_s": 640.0, "p50_ms": 25.0},
    }
    found = server_mode.ratios(best, 2.7)
    # The best peer is the batching one; its stock configurations are recorded apart; AI Mass's other row is none
    assert found == {
        "best_peer_c16": "MLServer (adaptive batching 8, 2 ms)",
        "c16_vs_best_peer": 1.25,
        "best_stock_peer_c16": "FastAPI + uvicorn",
        "c16_vs_best_stock_peer": 1.6,
        "c1_p50_added_ms": 0.4,
    }
    assert _verdicts(server_mode.judge(found)) == {"c16_throughput_vs_best_peer": False, "c1_p50_added_ms": True}
