"""`aimass cost`: the price of a request at each Lambda memory size, from bench records, through the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aimass_tools.cli import app as cli
from aimass_tools.cost.model import (
    Measured,
    SizeCost,
    authorizer_per_million,
    cheapest,
    lambda_costs,
    sagemaker_costs,
    warm_ms,
)

# A made-up domain: 0.3 ms of serving stack, an engine of 6 ms on one thread and 4 ms on two, 300 MB at its peak.
MEASURED = Measured(
    domain="text", model="m/1", stack_ms=0.3, engine_ms={1: 6.0, 2: 4.0}, peak_rss_mb=300.0, rss_headroom=1.5
)
AUTHORIZER_MB = 512


def TOTAL(size: SizeCost) -> float:  # noqa: N802  (a price function, named as the column it reads)
    return size.total_per_million


def test_warm_duration_follows_the_cpu_share() -> None:
    assert warm_ms(MEASURED, 1769) == pytest.approx(6.3)  # one vCPU: one thread at full speed
    assert warm_ms(MEASURED, 1769 // 2) == pytest.approx(6.3 * 1769 / 884)  # half a vCPU: time-sliced
    assert warm_ms(MEASURED, 2048) == pytest.approx(6.3)  # 1.16 vCPUs: a fifth of a core adds nothing
    assert warm_ms(MEASURED, 3538) == pytest.approx(4.3)  # two vCPUs: two threads
    assert warm_ms(MEASURED, 10240) == pytest.approx(4.3)  # six vCPUs: no faster than the threads measured


def test_prices_per_million_requests() -> None:
    # The authorizer: Lambda's minimum 1 ms at 512 MB and the request, 0.0083 + 0.20.
    assert authorizer_per_million(AUTHORIZER_MB) == pytest.approx(0.5 * 0.001 * 0.0000166667 * 1e6 + 0.20)
    by_size = {size.memory_mb: size for size in lambda_costs(MEASURED, (512, 1769, 3538), authorizer_mb=AUTHORIZER_MB)}
    one_vcpu = by_size[1769]
    assert one_vcpu.billed_ms == 7  # 6.3 ms rounds up to the millisecond
    assert one_vcpu.lambda_per_million == pytest.approx(7 / 1000 * 1769 / 1024 * 0.0000166667 * 1e6 + 0.20)
    assert one_vcpu.total_per_million == pytest.approx(
        one_vcpu.lambda_per_million + 3.50 + authorizer_per_million(AUTHORIZER_MB)
    )
    assert by_size[512].fits  # 300 MB with 1.5x headroom is 450 MB
    assert by_size[512].billed_ms == 22  # 6.3 ms on 512/1769 of a vCPU
    assert by_size[3538].billed_ms == 5


def test_the_cheapest_size_meets_the_bound_and_fits() -> None:
    table = lambda_costs(MEASURED, (256, 512, 1769, 3538), authorizer_mb=AUTHORIZER_MB)
    assert not table[0].fits  # 256 MB is below the 450 MB the peak needs
    # Below one vCPU a CPU-bound request costs the same CPU time at any size (but for rounding): the smallest
    # that fits is cheapest when the bound allows its duration.
    best = cheapest(table, 100, TOTAL)
    assert best is not None and best.memory_mb == 512
    assert [size.memory_mb for size in table if size.total_per_million < best.total_per_million and size.fits] == []
    within_10 = cheapest(table, 10, TOTAL)
    assert within_10 is not None and within_10.memory_mb == 1769
    within_5 = cheapest(table, 5, TOTAL)
    assert within_5 is not None and within_5.memory_mb == 3538
    assert cheapest(table, 1, TOTAL) is None


def test_sagemaker_on_paper_has_no_request_fee_and_starts_at_one_gb() -> None:
    paper = {size.memory_mb: size for size in sagemaker_costs(MEASURED)}
    assert min(paper) == 1024
    assert paper[4096].endpoint_per_million == pytest.approx(5 / 1000 * 0.00008 * 1e6)  # 4096 MB: 2 threads, 4.3 ms
    assert paper[2048].endpoint_per_million == pytest.approx(7 / 1000 * 0.00004 * 1e6)  # 2048 MB: 1 thread, 6.3 ms
    assert paper[2048].behind_api_gateway_per_million == pytest.approx(paper[2048].endpoint_per_million + 3.50)


def _records(folder: Path, *, results: dict[str, Any]) -> Path:
    sizing = {
        "rules": {"rss_headroom": 1.5},
        "domains": {
            "text": {
                "model": "m/1",
                "peak_rss_mb": 300.0,
                "measured_at": "2026-12-01T00:00:00Z",
                "cases": {"one": {"p50_ms_1t": 6.0, "p50_ms_2t": 4.0}},
            }
        },
    }
    (folder / "sizing.json").write_text(json.dumps(sizing))
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_the_command_prices_what_the_records_hold(tmp_path: Path) -> None:
    results = {"text": {"stack_added_p50_ms": 0.3, "measured_at": "2026-12-02T00:00:00Z"}, "rl": {}}
    records = _records(tmp_path, results=results)
    answered = CliRunner().invoke(cli, ["cost", "--records", str(records), "--latency-ms", "5", "--json"])
    assert answered.exit_code == 0, answered.output
    answer = json.loads(answered.output)
    text = answer["domains"]["text"]
    assert text["cheapest"]["memory_mb"] == 3538 and text["measured_at"] == "2026-12-02T00:00:00Z"
    assert text["measured"]["engine_ms"] == {"1": 6.0, "2": 4.0}
    assert "bench/sizing.py --domains rl" in answer["skipped"]["rl"]
    shown = CliRunner().invoke(cli, ["cost", "--records", str(records)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "cheapest within 100 ms: 512 MB" in shown.output


def test_broken_records_are_named(tmp_path: Path) -> None:
    records = _records(tmp_path, results={"text": {"stack_added_p50_ms": 0.3}})
    (records / "results.json").write_text("{not json")
    answered = CliRunner().invoke(cli, ["cost", "--records", str(records)])
    assert answered.exit_code == 1 and "results.json: not JSON" in answered.output
    _records(tmp_path, results={"text": {"stack_added_p50_ms": "fast"}})
    answered = CliRunner().invoke(cli, ["cost", "--records", str(records)])
    assert answered.exit_code == 1 and "text's entries lack" in answered.output


def test_missing_records_say_what_writes_them(tmp_path: Path) -> None:
    answered = CliRunner().invoke(cli, ["cost", "--records", str(tmp_path)])
    assert answered.exit_code == 1
    assert "sizing.json is missing: `make bench` writes it" in answered.output
