"""bench/transcription.py's arithmetic: real-time factors, what the handler adds, cold-start ratios, the sizing
it derives, its targets, the request it builds, and its entry of the results file."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from aimass.contract import MB_PER_VCPU
from bench.cold_start import ColdRun
from bench.common import merge_results
from bench.sizing import suggest
from bench.transcription import (
    CLIP_SECONDS,
    MODEL,
    assemble,
    clip_summary,
    cold_summary,
    decoder_config,
    judge,
    multipart,
    real_time_factor,
    sentences_that_fit,
    sizing_need,
    template_form,
    transcription_event,
)

MS = 1_000_000  # ns


def _cold(wall_s: float) -> ColdRun:
    return ColdRun(wall_s=wall_s, interpreter_s=0.02, imports_s=0.5, model_load_s=0.3, first_run_s=0.4, head=[])


def _clip(handler_ms: float, engine_ms: float, audio_s: float, first_ms: float | None = None) -> dict[str, Any]:
    samples = {"handler": [round(handler_ms * MS)], "engine": [round(engine_ms * MS)]}
    summary = clip_summary(samples, samples, audio_s)
    return {"audio_s": audio_s, "handler_first_ms": first_ms or handler_ms, **summary}


def test_real_time_factor_is_processing_over_audio_seconds() -> None:
    assert real_time_factor(1.5, 10.0) == pytest.approx(0.15)
    assert real_time_factor(30.0, 10.0) == pytest.approx(3.0)


def test_clip_summary_takes_p50s_and_derives_rtf_and_the_handlers_share_on_each_clock() -> None:
    # GIVEN interleaved wall-clock samples with one outlier each, and CPU times, on a 10-second clip
    wall = {"handler": [1_540 * MS, 1_550 * MS, 9_000 * MS], "engine": [1_500 * MS, 1_490 * MS, 1_510 * MS]}
    cpu = {"handler": [1_420 * MS, 1_430 * MS, 1_425 * MS], "engine": [1_400 * MS, 1_400 * MS, 1_410 * MS]}
    # WHEN they are summarised
    summary = clip_summary(wall, cpu, 10.0)
    # THEN the p50s ignore the outlier, and the handler's share is over the engine's time, on each clock
    assert summary["handler_p50_ms"] == 1550.0 and summary["engine_p50_ms"] == 1500.0
    assert summary["handler_rtf"] == 0.155 and summary["engine_rtf"] == 0.15
    assert summary["handler_added_ms"] == 50.0
    assert summary["handler_added_share"] == pytest.approx(50 / 1500, abs=1e-4)
    assert summary["handler_cpu_p50_ms"] == 1425.0 and summary["engine_cpu_rtf"] == 0.14
    assert summary["handler_added_cpu_ms"] == 25.0
    assert summary["handler_added_cpu_share"] == pytest.approx(25 / 1400, abs=1e-4)
    assert summary["runs"] == 3


def test_cold_summary_is_the_ratio_of_medians() -> None:
    summary = cold_summary([_cold(2.0), _cold(1.8), _cold(5.0)], [_cold(0.9), _cold(1.0), _cold(0.8)])
    assert summary["cold_start_s"] == 2.0 and summary["cold_start_floor_s"] == 0.9
    assert summary["cold_start_ratio"] == pytest.approx(2.22, abs=0.01)
    assert summary["cold_start_breakdown"]["model_load_s"] == 0.3
    assert summary["cold_start_runs"] == 3


def test_sizing_need_is_sizings_rule_with_one_thread_for_both_counts() -> None:
    # PocketSphinx decodes on one core: no speedup, one full vCPU, and the 30 s file's time tenfold
    need = sizing_need(500.0, 1_400.0, 340.0)
    assert need == suggest((500.0, 500.0), (1_400.0, 1_400.0), 340.0)
    assert need["memory_mb"] == MB_PER_VCPU and need["one_item_speedup"] == 1.0
    assert need["timeout_s"] == 15


def test_a_slow_largest_request_needs_the_longest_timeout_step() -> None:
    assert sizing_need(700.0, 6_000.0, 340.0)["timeout_s"] == 29


@pytest.mark.parametrize(
    ("memory", "timeout", "share", "missed"),
    [
        (1769, 20, 0.01, []),
        (1769, 10, 0.01, ["function_timeout_s"]),
        (1024, 20, 0.01, ["function_memory_mb"]),
        (1769, 20, 0.06, ["handler_added_cpu_share_10s"]),
    ],
)
def test_targets_compare_function_toml_with_the_need_and_the_handlers_share(
    memory: int, timeout: int, share: float, missed: list[str]
) -> None:
    entry = {
        "function_toml": {"memory_mb": memory, "timeout_s": timeout},
        "suggested": {"memory_mb": 1769, "timeout_s": 15},
        "clips": {"10s": {"handler_added_cpu_share": share}},
    }
    judged = judge(entry)
    assert [target.name for target in judged if not target.met] == missed
    assert judged[-1].detail.endswith("(target <= 0.05)")


def test_assemble_sizes_from_the_shortest_clip_and_the_slower_of_the_longests_first_call_and_p50() -> None:
    # GIVEN three clips whose 30 s first call was slower than its p50
    clips = {"3s": _clip(600, 560, 3.0), "10s": _clip(1_520, 1_500, 10.0), "30s": _clip(4_000, 3_950, 30.0, 4_400)}
    memory = {"handler_after_load_mb": 200.0, "handler_after_longest_mb": 240.0}
    cold = cold_summary([_cold(2.0)], [_cold(1.0)])
    # WHEN the entry is assembled against a function of 1,769 MB and 20 s
    entry = assemble(clips, cold, memory, {"memory_mb": 1769, "timeout_s": 20})
    # THEN the need is suggest's on those numbers, and 20 s misses a 29 s need
    assert entry["suggested"] == sizing_need(600.0, 4_400.0, 240.0)
    assert entry["suggested"]["timeout_s"] == 29
    assert entry["function_toml"]["covers"] is False
    assert entry["function_toml"]["timeout_headroom"] == pytest.approx(20 / 4.4, abs=0.1)
    assert entry["passed"] == {
        "function_memory_mb": True,
        "function_timeout_s": False,
        "handler_added_cpu_share_10s": True,
    }
    assert entry["targets"]["function_timeout_s"] == "20 s (target >= 29 s)"
    assert entry["cold_start_ratio"] == 2.0


def test_entries_merge_by_model_and_keep_the_others(tmp_path: Path) -> None:
    out = tmp_path / "transcription.json"
    out.write_text(json.dumps({"other-model": {"kept": True}, MODEL: {"old": True}}))
    merge_results(out, MODEL, {"new": True})
    merged = json.loads(out.read_text())
    assert merged["other-model"] == {"kept": True}
    assert merged[MODEL]["new"] is True and "old" not in merged[MODEL]


def test_sentences_fit_with_their_pauses() -> None:
    assert sentences_that_fit([2.4, 2.4, 2.4, 2.4, 2.4], 10.0, 0.3) == 3  # 4 would be 10.5 s
    assert sentences_that_fit([2.4], 3.0, 0.3) == 1
    assert sentences_that_fit([2.0, 2.0], 30.0, 0.3) == 2  # every sentence spoken fits
    with pytest.raises(ValueError, match="longer than a 3 s clip"):
        sentences_that_fit([3.2], 3.0, 0.3)


def test_clip_lengths_end_at_the_synchronous_limit() -> None:
    assert CLIP_SECONDS[-1] == 30.0 and 10.0 in CLIP_SECONDS


def test_the_event_keeps_the_template_form_and_carries_the_clip() -> None:
    # GIVEN a WAV file's bytes
    wav = b"RIFF\x00\x00\x00\x00WAVEdata"
    # WHEN the transcription event is built from the one in tests/events
    event = transcription_event(wav)
    # THEN it posts the recorded fields for this model, with the clip as its file part
    assert event["rawPath"] == "/v1/audio/transcriptions" and event["isBase64Encoded"] is True
    boundary, fields = template_form(event)
    assert ("model", MODEL) in fields and ("response_format", "verbose_json") in fields
    assert fields.count(("timestamp_granularities[]", "word")) == 1
    body = base64.b64decode(event["body"])
    assert b'filename="speech.wav"\r\nContent-Type: audio/wav\r\n\r\n' + wav + b"\r\n" in body
    assert body.endswith(f"--{boundary}--\r\n".encode())
    assert event["headers"]["content-length"] == str(len(body))


def test_multipart_body_round_trips_through_the_form_reader() -> None:
    body = multipart("b0undary", [("model", "m"), ("a[]", "1"), ("a[]", "2")], "x.wav", b"\x00\x01")
    event = {"headers": {"content-type": "multipart/form-data; boundary=b0undary"}, "body": body.decode("latin-1")}
    assert template_form(event)[1] == [("model", "m"), ("a[]", "1"), ("a[]", "2")]


def test_decoder_config_names_every_part_and_the_language_model(tmp_path: Path) -> None:
    config = decoder_config(tmp_path, "en-us.lm.bin", {"mdef": "acoustic/mdef", "dict": "cmudict-en-us.dict"})
    assert config == {
        "hmm": None,
        "loglevel": "FATAL",
        "mdef": str(tmp_path / "acoustic/mdef"),
        "dict": str(tmp_path / "cmudict-en-us.dict"),
        "lm": str(tmp_path / "en-us.lm.bin"),
    }
