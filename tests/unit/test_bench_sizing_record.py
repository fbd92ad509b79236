"""The committed sizing record, and every function.toml checked against it (bench/sizing_record.py).

The gate: a function.toml whose memory_mb is more than MEMORY_TOLERANCE_MB from the record's suggestion, or whose
timeout_s differs from it (longer only for a model the sizing run does not time, citing the script that does),
fails here. Refresh the record with `bench/sizing.py` (bench/README.md, "Sizing") or follow it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.sizing_record import (
    MEMORY_TOLERANCE_MB,
    NOT_MEASURED,
    RECORD,
    SIZED_OTHERWISE,
    FunctionSize,
    disagreements,
    markdown_table,
    measured_elsewhere,
    merged,
    read_functions,
    readme_table,
    timed_elsewhere,
)

SIZED_HERE = ("rl", "speech", "text", "vision")


def test_every_function_toml_agrees_with_the_committed_sizing_record() -> None:
    record = json.loads(RECORD.read_text())
    assert disagreements(record, read_functions(), measured_elsewhere()) == []


def test_the_readme_shows_the_committed_record() -> None:
    # bench/README.md's sizing table is printed from the record, never typed: `python -m bench.sizing --table`.
    readme = (RECORD.parents[1] / "README.md").read_text()
    assert readme_table(readme) == markdown_table(json.loads(RECORD.read_text()), read_functions())


def test_the_committed_record_is_dated_and_names_its_machine() -> None:
    record = json.loads(RECORD.read_text())
    assert record["updated_at"][:4].isdigit() and record["machine"]["cpu_model"]
    assert sorted(record["domains"]) == list(SIZED_HERE)
    for entry in record["domains"].values():
        assert entry["measured_at"] <= record["updated_at"]
        assert {"memory_mb", "timeout_s"} <= set(entry["suggested"])
        assert entry["peak_rss_mb"] > 0 and entry["cases"]["one"]["p50_ms_1t"] > 0
    assert set(record["sized_otherwise"]) == set(SIZED_OTHERWISE)


# --- the check itself, on records made up here ---------------------------------------------------------------


def _record(memory_mb: int = 1769, timeout_s: int = 10, elsewhere: dict[str, str] | None = None) -> dict[str, Any]:
    entry = {"measured_at": "2026-12-05T21:00:00Z", "suggested": {"memory_mb": memory_mb, "timeout_s": timeout_s}}
    if elsewhere is not None:
        entry["timed_elsewhere"] = elsewhere
    return {"domains": {"speech": entry}}


def _function(memory_mb: int = 1769, timeout_s: int = 10, text: str = "") -> FunctionSize:
    return FunctionSize(memory_mb, timeout_s, text)


def _others() -> dict[str, FunctionSize]:
    return {name: _function(text=f"# measured by {s.by}") for name, s in SIZED_OTHERWISE.items()}


def test_sizes_that_follow_the_record_agree() -> None:
    assert disagreements(_record(), {"speech": _function(), **_others()}) == []


@pytest.mark.parametrize("memory_mb", [1769 - MEMORY_TOLERANCE_MB, 1769 + MEMORY_TOLERANCE_MB])
def test_memory_within_the_tolerance_agrees(memory_mb: int) -> None:
    assert disagreements(_record(), {"speech": _function(memory_mb=memory_mb), **_others()}) == []


def test_a_stale_memory_size_fails_with_what_to_do() -> None:
    # GIVEN a record that, measured again, suggests two vCPUs where the file still says one
    problems = disagreements(_record(memory_mb=3538), {"speech": _function(), **_others()})
    # THEN the gate names the file, both numbers, the tolerance and the fix
    assert problems == [
        "functions/speech/function.toml: memory_mb 1769, bench/records/sizing.json suggests 3538 (within 64 MB) "
        "(record of 2026-12-05T21:00:00Z; rerun bench/sizing.py --domains speech on a quiet machine, or follow it)"
    ]


def test_a_timeout_must_equal_the_suggestion() -> None:
    for timeout_s in (5, 15):
        problems = disagreements(_record(), {"speech": _function(timeout_s=timeout_s), **_others()})
        assert len(problems) == 1
        assert f"timeout_s {timeout_s}, bench/records/sizing.json suggests 10" in problems[0]


SPHINX = {"sphinx-en-us": "bench/transcription.py"}
CITES = "# sphinx-en-us: bench/transcription.py (bench/records/transcription.json)"


def test_a_model_timed_elsewhere_must_be_cited() -> None:
    (problem,) = disagreements(_record(elsewhere=SPHINX), {"speech": _function(), **_others()})
    assert problem == (
        "functions/speech/function.toml: serves ['sphinx-en-us'], timed by ['bench/transcription.py']: cite it"
    )


def test_before_its_record_exists_a_model_timed_elsewhere_may_need_longer() -> None:
    record = _record(elsewhere=SPHINX)
    assert disagreements(record, {"speech": _function(timeout_s=20, text=CITES), **_others()}) == []
    # AND never shorter than this record's suggestion
    (problem,) = disagreements(record, {"speech": _function(timeout_s=5, text=CITES), **_others()})
    assert "timeout_s 5, bench/records/sizing.json suggests 10" in problem


def test_once_its_record_exists_the_function_follows_the_larger_suggestion() -> None:
    record = _record(elsewhere=SPHINX)
    elsewhere = {"sphinx-en-us": {"memory_mb": 1769, "timeout_s": 29, "record": "bench/records/transcription.json"}}
    follows = _function(timeout_s=29, text=CITES)
    assert disagreements(record, {"speech": follows, **_others()}, elsewhere) == []
    (problem,) = disagreements(record, {"speech": _function(timeout_s=20, text=CITES), **_others()}, elsewhere)
    assert "timeout_s 20, bench/records/transcription.json (sphinx-en-us) suggests 29" in problem
    # AND the larger memory of the two, too
    bigger = {"sphinx-en-us": {**elsewhere["sphinx-en-us"], "memory_mb": 3538, "timeout_s": 10}}
    (problem,) = disagreements(record, {"speech": _function(text=CITES), **_others()}, bigger)
    assert "memory_mb 1769, bench/records/transcription.json (sphinx-en-us) suggests 3538" in problem


def test_a_model_no_script_measures_cannot_be_cited() -> None:
    record = _record(elsewhere={"new-model": NOT_MEASURED})
    # Even a file that repeats the record's words has no script to cite.
    problems = disagreements(record, {"speech": _function(timeout_s=20, text=f"# {NOT_MEASURED}"), **_others()})
    assert len(problems) == 2 and "cite it" in problems[0]


def test_measured_elsewhere_reads_the_scripts_records(tmp_path: Path) -> None:
    assert measured_elsewhere(tmp_path) == {}
    records = tmp_path / "bench" / "records"
    records.mkdir(parents=True)
    entry = {"peak_rss_mb": 458.0, "suggested": {"memory_mb": 1769, "timeout_s": 29}}
    (records / "transcription.json").write_text(json.dumps({"sphinx-en-us": entry, "other": {}}))
    assert measured_elsewhere(tmp_path) == {
        "sphinx-en-us": {"memory_mb": 1769, "timeout_s": 29, "record": "bench/records/transcription.json"}
    }


def test_every_function_is_sized_by_the_record_or_cites_its_own_measurement() -> None:
    # A function missing from the record, a record entry without a function, an uncited other measurement.
    functions = {"speech": _function(), "text": _function(), **_others(), "llm": _function(text="# typed in")}
    problems = disagreements(_record(), functions)
    assert problems == [
        "functions/llm/function.toml is sized by bench/llm.py, but does not cite it",
        "functions/text/function.toml: no sizing in the record; run bench/sizing.py --domains text",
    ]
    assert disagreements({"domains": {"gone": {}}}, _others()) == [
        "the sizing record has gone, but there is no functions/gone/function.toml"
    ]


def test_timed_elsewhere_names_the_other_models_and_their_scripts() -> None:
    models = ["speech-commands", "sphinx-en-us", "another"]
    assert timed_elsewhere(models, "speech-commands") == {
        "sphinx-en-us": "bench/transcription.py",
        "another": NOT_MEASURED,
    }
    assert timed_elsewhere(["all-minilm-l6-v2"], "all-minilm-l6-v2") == {}


def test_a_partial_run_keeps_the_other_domains_entries() -> None:
    previous = merged(None, {"text": {"n": 1}, "rl": {"n": 2}}, measured_at="2026-12-01T00:00:00Z", machine={"a": 1})
    after = merged(previous, {"rl": {"n": 3}}, measured_at="2026-12-05T00:00:00Z", machine={"a": 2})
    assert after["domains"] == {"rl": {"n": 3}, "text": {"n": 1}}
    assert (after["updated_at"], after["machine"]) == ("2026-12-05T00:00:00Z", {"a": 2})
    assert after["sized_otherwise"]["tensor"]["by"] == "bench/tensor.py"
    assert "memory_mb" in after["tolerance"] and "timeout_s" in after["tolerance"]


def test_read_functions_reads_size_and_text(tmp_path: Path) -> None:
    folder = tmp_path / "functions" / "rl"
    folder.mkdir(parents=True)
    (folder / "function.toml").write_text("# why\nmemory_mb = 1024\ntimeout_s = 3\n")
    assert read_functions(tmp_path) == {"rl": FunctionSize(1024, 3, "# why\nmemory_mb = 1024\ntimeout_s = 3\n")}


def test_markdown_table_rows() -> None:
    case = {"label": "1 item", "p50_ms_1t": 5.8, "p50_ms_2t": 4.81, "speedup": 1.21, "first_ms_1t": 7.06}
    big = {"label": "256 items", "p50_ms_1t": 15624.0, "p50_ms_2t": 8322.0, "speedup": 1.88, "first_ms_1t": 15579.0}
    entry = {
        "suggested": {"memory_mb": 1769, "timeout_s": 29},
        "peak_rss_mb": 566.7,
        "rss_after_load_mb": 354.1,
        "cases": {"one": {**case, "first_ms_2t": 6.35}, "largest": {**big, "first_ms_2t": 7901.0}},
    }
    table = markdown_table({"domains": {"text": entry}}, {"text": FunctionSize(3538, 29, "")}).splitlines()
    assert table[2] == (
        "| text | 1 item | 5.8 | 4.81 | 1.21x | 7.06 / 6.35 | 567 (354 loaded) | 1,769 MB, 29 s | 3,538 MB, 29 s |"
    )
    assert table[3] == "|  | 256 items | 15,624 | 8,322 | 1.88x | 15,579 / 7,901 |  |  |  |"
