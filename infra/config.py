"""Deployment settings, read from CDK context once and validated before any construct is built.

Every key lives under the ``aimass:`` prefix. Defaults are kept in step with ``cdk.json``
(tests/infra checks this), so ``python infra/app.py`` and ``npx cdk synth`` build the same thing.
Override one for a single run with ``npx cdk synth -c aimass:textMemoryMb=4096``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONTEXT_PREFIX = "aimass:"

# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB, up to six at 10,240 MB.
MB_PER_VCPU = 1769
MAX_VCPUS = 6

# Log retention periods (days) CloudWatch Logs accepts, by their aws_logs.RetentionDays name.
LOG_RETENTION_DAYS: Mapping[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

# API Gateway REST integrations give up after 29 seconds (unless the account's quota is raised).
API_INTEGRATION_TIMEOUT_S = 29


class ConfigError(ValueError):
    """A CDK context value is invalid; the message names the context key."""


class ServingConfig(BaseModel):
    """Typed, frozen view of the ``aimass:*`` CDK context."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    stage: str = Field(
        default="dev",
        alias="aimass:stage",
        pattern=r"^[a-z][a-z0-9-]{0,19}$",
        description="deployment stage; names the stack and the API Gateway stage",
    )
    text_memory_mb: int = Field(
        default=3008,
        alias="aimass:textMemoryMb",
        ge=128,
        le=10240,
        # 3,008 MB buys ~1.7 vCPU (two intra-op threads): MiniLM embedding batches are CPU-bound,
        # and below 1,769 MB a function has less than one core.
        description="memory of the text function, which also sets its CPU share",
    )
    text_timeout_s: int = Field(
        default=API_INTEGRATION_TIMEOUT_S,
        alias="aimass:textTimeoutSeconds",
        ge=3,
        le=API_INTEGRATION_TIMEOUT_S,
        description="text function timeout; no longer than the API Gateway integration timeout",
    )
    text_architecture: Literal["x86_64", "arm64"] = Field(
        default="x86_64",
        alias="aimass:textArchitecture",
        description="instruction set of the text function and its image",
    )
    text_reserved_concurrency: int | None = Field(
        default=None,
        alias="aimass:textReservedConcurrency",
        ge=1,
        description="reserved concurrency of the text function; None leaves it on the account pool",
    )
    log_retention_days: int = Field(
        default=30,
        alias="aimass:logRetentionDays",
        description="retention of the function and API access log groups",
    )
    api_throttle_rate_limit: float = Field(
        default=50.0,
        alias="aimass:apiThrottleRateLimit",
        gt=0,
        description="steady-state requests per second the API stage accepts, all callers together",
    )
    api_throttle_burst_limit: int = Field(
        default=100,
        alias="aimass:apiThrottleBurstLimit",
        ge=1,
        description="burst of requests the API stage accepts above the steady rate",
    )

    @field_validator("text_reserved_concurrency", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        # `cdk -c key=value` passes strings; let "null"/"none"/"" mean "unset".
        if isinstance(value, str) and value.strip().lower() in {"", "null", "none"}:
            return None
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of CloudWatch Logs' retention periods {sorted(LOG_RETENTION_DAYS)}")
        return value

    @property
    def log_retention_name(self) -> str:
        """``log_retention_days`` as the name of its ``aws_logs.RetentionDays`` member."""
        return LOG_RETENTION_DAYS[self.log_retention_days]

    @property
    def text_intra_op_threads(self) -> int:
        """ONNX Runtime intra-op threads: one per vCPU the memory setting buys (3,008 MB: 2)."""
        return max(1, min(MAX_VCPUS, math.ceil(self.text_memory_mb / MB_PER_VCPU)))

    @classmethod
    def context_keys(cls) -> frozenset[str]:
        return frozenset(str(field.alias) for field in cls.model_fields.values())

    @classmethod
    def defaults_as_context(cls) -> dict[str, Any]:
        """The defaults keyed by context key (what cdk.json should hold)."""
        return cls().model_dump(by_alias=True)

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> ServingConfig:
        """Validate the ``aimass:*`` keys of ``context``; raise ConfigError naming the bad key."""
        ours = {key: value for key, value in context.items() if key.startswith(CONTEXT_PREFIX)}
        unknown = sorted(set(ours) - cls.context_keys())
        if unknown:
            raise ConfigError(
                f"unknown CDK context key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(cls.context_keys()))}"
            )
        try:
            return cls.model_validate(ours)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"])
                problems.append(f"CDK context {key!r}: {error['msg']} (got {error.get('input')!r})")
            raise ConfigError("invalid deployment settings:\n  " + "\n  ".join(problems)) from None
