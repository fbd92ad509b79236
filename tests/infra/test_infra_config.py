"""Deployment settings: CDK context is validated once, with messages that name the bad key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.app import REPO_ROOT, build_app, cdk_json_context
from infra.config import ConfigError, ServingConfig


def test_defaults_match_cdk_json() -> None:
    # `python infra/app.py` and `npx cdk synth` must agree; cdk.json is what people read.
    ours = {key: value for key, value in cdk_json_context().items() if key.startswith("aimass:")}
    assert ours == ServingConfig.defaults_as_context()


def test_cdk_json_runs_the_app_and_stays_offline() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == ".venv/bin/python infra/app.py"
    assert cdk_json["notices"] is False
    assert cdk_json["context"]["cli-telemetry"] is False


def test_default_config() -> None:
    config = ServingConfig.from_context(cdk_json_context())
    assert config.stage == "dev"
    assert config.text_memory_mb == 3008
    assert config.text_timeout_s == 29
    assert config.text_architecture == "x86_64"
    assert config.text_reserved_concurrency is None
    # 3,008 MB buys about 1.7 vCPU: two intra-op threads.
    assert config.text_intra_op_threads == 2


def test_config_is_frozen() -> None:
    config = ServingConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.text_memory_mb = 4096  # type: ignore[misc]


@pytest.mark.parametrize(("memory_mb", "threads"), [(128, 1), (1769, 1), (1770, 2), (3538, 2), (3539, 3), (10240, 6)])
def test_intra_op_threads_follow_memory(memory_mb: int, threads: int) -> None:
    assert ServingConfig(**{"aimass:textMemoryMb": memory_mb}).text_intra_op_threads == threads


def test_cli_strings_are_coerced() -> None:
    # `cdk synth -c key=value` passes every value as a string.
    config = ServingConfig.from_context(
        {
            "aimass:textMemoryMb": "4096",
            "aimass:textReservedConcurrency": "null",
            "aimass:apiThrottleRateLimit": "12.5",
        }
    )
    assert config.text_memory_mb == 4096
    assert config.text_reserved_concurrency is None
    assert config.api_throttle_rate_limit == 12.5


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aimass:textMemoryMb", 64),
        ("aimass:textMemoryMb", 20000),
        ("aimass:textMemoryMb", "lots"),
        ("aimass:textTimeoutSeconds", 60),
        ("aimass:textArchitecture", "riscv"),
        ("aimass:stage", "Prod Stage"),
        ("aimass:logRetentionDays", 10),
        ("aimass:textReservedConcurrency", 0),
        ("aimass:apiThrottleBurstLimit", 0),
    ],
)
def test_bad_values_are_rejected_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"CDK context '{key}'") as raised:
        ServingConfig.from_context({key: value})
    assert repr(value) in str(raised.value)


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match="aimass:textMemoryMB"):
        ServingConfig.from_context({"aimass:textMemoryMB": 4096})


def test_other_context_is_ignored() -> None:
    config = ServingConfig.from_context({"@aws-cdk/core:checkSecretUsage": True, "cli-telemetry": False})
    assert config == ServingConfig()


def test_build_app_rejects_bad_context_before_building(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"'aimass:textMemoryMb'.*less than or equal to 10240"):
        build_app({"aimass:textMemoryMb": 99999}, outdir=str(tmp_path))
