"""Deployment settings, validated before any construct is built.

Two sources:

* Stack-wide values come from CDK context, every key under the ``aimass:`` prefix. Defaults are kept
  in step with ``cdk.json`` (tests/infra checks this), so ``python infra/app.py`` and ``npx cdk synth``
  build the same thing. Override one for a single run with ``npx cdk synth -c aimass:stage=prod``.
* The key plans (``aimass:plans``) are what the functions enforce (AIMASS_PLANS: request rate and burst per key,
  monthly units per tenant) and what API Gateway's usage plans throttle at the edge, per key when the edge
  authorizer names each request's key (``aimass:edgeAuthorizer``). Their defaults and the rules a plan must
  keep are the functions' own (``aimass.contract.DEFAULT_PLANS``, ``aimass.settings.Plan``).
* Each domain function's sizing and extra routes come from ``functions/<domain>/function.toml``, next to
  the Dockerfile that makes the directory a function (``discover_functions``). For a single run,
  ``-c 'aimass:functionOverrides={"text": {"memory_mb": 4096}}'`` replaces values from those files.
* The batch fallback (AWS Batch, ``infra/constructs/batch_fallback.py``) runs every domain's batch shards: the
  domains of ``aimass:batchGpuDomains`` on a GPU compute environment of ``aimass:batchGpuInstanceTypes`` (Spot with
  ``aimass:batchSpot``), the others on Fargate, each environment up to ``aimass:batchMaxVcpus`` and down to zero.
* ``functions/authorizer/`` has the same two files but is no domain: it is the API key authorizer API Gateway
  calls before the metered routes (``aimass:edgeAuthorizer``), sized the same way (``load_authorizer_function``).

Errors name the context key, or the file and key, at fault.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimass.contract import API_INTEGRATION_TIMEOUT_S, MAX_VCPUS, MB_PER_VCPU
from aimass.contract import DEFAULT_PLANS as PLAN_TERMS
from aimass.settings import Plan
from infra.routes import DOMAIN_NAME, RouteError, check_path

CONTEXT_PREFIX = "aimass:"

# A directory functions/<domain>/ holding a Dockerfile is a domain function; function.toml sizes it.
FUNCTIONS_DIR = "functions"
DOCKERFILE = "Dockerfile"
FUNCTION_TOML = "function.toml"
# The batch workers' image, one per domain (build arguments pick the domain and GPU or CPU): the CDK app's own,
# built with the checkout as context like the functions' images.
BATCH_WORKER_DOCKERFILE = "infra/images/batch-worker.Dockerfile"
# The API key authorizer's directory under functions/: reserved, never a domain, never routed to.
AUTHORIZER_FUNCTION = "authorizer"

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

# An EC2 instance type: family (with generation and options) and size, e.g. g6.xlarge, g5g.2xlarge.
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")

# A plan's name is stored in every key record and names its API Gateway usage plan (aimass-<stage>-<plan>).
PLAN_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class ConfigError(ValueError):
    """A CDK context value is invalid; the message names the context key."""


class PlanConfig(Plan):
    """One plan of ``aimass:plans``: ``aimass.settings.Plan``, the very rules the functions read AIMASS_PLANS with.

    Strict: a plan is JSON, so a number given as a string or a boolean is a mistake, not something to coerce.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


DEFAULT_PLANS: Mapping[str, PlanConfig] = {
    name: PlanConfig.model_validate(dict(terms)) for name, terms in PLAN_TERMS.items()
}


class ServingConfig(BaseModel):
    """Typed, frozen view of the ``aimass:*`` CDK context."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    stage: str = Field(
        default="dev",
        alias="aimass:stage",
        pattern=r"^[a-z][a-z0-9-]{0,19}$",
        description="deployment stage; names the stack and the API Gateway stage",
    )
    front_domain: str = Field(
        default="text",
        alias="aimass:frontDomain",
        pattern=DOMAIN_NAME.pattern,
        description="domain whose function answers the server-wide routes (/v2, /v1/models, /docs, ...)",
    )
    import_domain: str = Field(
        default="tensor",
        alias="aimass:importDomain",
        pattern=DOMAIN_NAME.pattern,
        description="domain whose function serves imported models: /v2/models/ of every model not catalogued, and "
        "the management API (/v1/admin/models); a checkout without that function serves no imports",
    )
    function_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        alias="aimass:functionOverrides",
        description='per-domain function.toml values replaced for this synth, e.g. {"text": {"memory_mb": 4096}}',
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
    alias_check_seconds: float = Field(
        default=30.0,
        alias="aimass:aliasCheckSeconds",
        ge=0,
        allow_inf_nan=False,
        description="how often each function re-reads its models' aliases in the bucket (a publish, promote or "
        "rollback is served at most this long after it lands); 0 never re-reads them",
    )

    plans: dict[str, PlanConfig] = Field(
        default_factory=lambda: dict(DEFAULT_PLANS),
        alias="aimass:plans",
        description='key plans by name, e.g. {"free": {"rate_per_s": 2, "burst": 5, "monthly_units": 100000}}: '
        "the functions enforce them (AIMASS_PLANS) and API Gateway has a usage plan for each",
    )
    edge_authorizer: bool = Field(
        default=True,
        alias="aimass:edgeAuthorizer",
        description="check each request's API key at API Gateway (functions/authorizer) before it reaches a function, "
        "so that the usage plan of the key's plan throttles it there; false leaves every check to the functions",
    )
    files_expire_days: int = Field(
        default=30,
        alias="aimass:filesExpireDays",
        ge=1,
        description="days after upload that a tenant's file (/v1/files) is deleted from the files bucket",
    )
    latency_alarm_ms: int = Field(
        default=5000,
        alias="aimass:latencyAlarmMs",
        gt=0,
        le=API_INTEGRATION_TIMEOUT_S * 1000,
        description="a function's p99 request latency (ms) that raises its latency alarm; at most the 29 s "
        "integration timeout, past which no request is measured",
    )

    batch_gpu_domains: list[str] = Field(
        default_factory=lambda: ["text", "vision"],
        alias="aimass:batchGpuDomains",
        description="domains whose batch shards run on GPU instances (where a GPU pays: large engine batches of "
        "transformer and CNN work); every other domain's run on Fargate. A listed domain without a function in the "
        "checkout is skipped",
    )
    batch_gpu_instance_types: list[str] = Field(
        default_factory=lambda: ["g6.xlarge", "g6.2xlarge", "g5.xlarge", "g5.2xlarge"],
        alias="aimass:batchGpuInstanceTypes",
        min_length=1,
        description="EC2 instance types of the GPU compute environment, each with one NVIDIA GPU and at least "
        "4 vCPUs and 16 GiB (a GPU job asks for that much); several types widen the Spot capacity to draw on",
    )
    batch_spot: bool = Field(
        default=True,
        alias="aimass:batchSpot",
        description="run the GPU compute environment on Spot instances (a reclaimed instance's shard is retried, "
        "and a shard restarts at its first unwritten chunk); false runs it on demand",
    )
    batch_max_vcpus: int = Field(
        default=64,
        alias="aimass:batchMaxVcpus",
        ge=4,
        le=10_000,
        description="most vCPUs each batch compute environment (GPU and Fargate) runs at once; both scale to zero",
    )

    @field_validator("function_overrides", "plans", "batch_gpu_domains", "batch_gpu_instance_types", mode="before")
    @classmethod
    def _json_string(cls, value: Any) -> Any:
        # `cdk -c key=value` passes strings; accept the JSON object as text.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected JSON: {exc}") from None
        return value

    @field_validator("batch_gpu_domains")
    @classmethod
    def _domain_names(cls, domains: list[str]) -> list[str]:
        bad = sorted(domain for domain in domains if not DOMAIN_NAME.match(domain))
        if bad:
            raise ValueError(f"domain names are lower-case letters, digits and '_': {bad}")
        return domains

    @field_validator("batch_gpu_instance_types")
    @classmethod
    def _instance_types(cls, types: list[str]) -> list[str]:
        bad = sorted(name for name in types if not INSTANCE_TYPE.match(name))
        if bad:
            raise ValueError(f"expected EC2 instance types such as 'g6.xlarge', got {bad}")
        return types

    @field_validator("plans")
    @classmethod
    def _named_plans(cls, plans: dict[str, PlanConfig]) -> dict[str, PlanConfig]:
        if not plans:
            raise ValueError("expected at least one plan; every key names the plan it is on")
        bad = sorted(name for name in plans if not PLAN_NAME.match(name))
        if bad:
            raise ValueError(
                f"plan names are 1-40 lower-case letters, digits, '-' and '_', starting with a letter: {bad}"
            )
        return plans

    @field_validator("edge_authorizer", "batch_spot", mode="before")
    @classmethod
    def _a_flag(cls, value: Any) -> Any:
        # `cdk -c aimass:edgeAuthorizer=false` passes the text; any other value is a mistake, not a truth value.
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value

    @field_validator("alias_check_seconds", "latency_alarm_ms", "files_expire_days", "batch_max_vcpus", mode="before")
    @classmethod
    def _not_a_flag(cls, value: Any) -> Any:
        # pydantic reads true as 1: refuse it rather than check aliases every second (or alarm at 1 ms, or expire
        # files after a day).
        if isinstance(value, bool):
            raise ValueError("expected a number, not a boolean")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of CloudWatch Logs' retention periods {sorted(LOG_RETENTION_DAYS)}")
        return value

    @property
    def plans_json(self) -> str:
        """``plans`` as AIMASS_PLANS carries them to the functions (``aimass.settings.Settings.plans``)."""
        return json.dumps({name: plan.model_dump() for name, plan in sorted(self.plans.items())})

    @property
    def log_retention_name(self) -> str:
        """``log_retention_days`` as the name of its ``aws_logs.RetentionDays`` member."""
        return LOG_RETENTION_DAYS[self.log_retention_days]

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


# Application Auto Scaling's schedule expressions for a scheduled action: cron(...) with six fields, or rate(...).
_SCHEDULE = re.compile(r"^(cron\((\S+ ){5}\S+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")


def _check_bounds(low: int, high: int | None) -> None:
    if high is not None and high < low:
        raise ValueError(f"max ({high}) is below min ({low})")


class ScheduledCapacity(BaseModel):
    """From ``cron`` on (UTC), keep between ``min`` and ``max`` environments initialised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str = Field(description="when it applies, e.g. 'cron(0 7 ? * MON-FRI *)' (UTC)")
    min: int = Field(ge=0, description="environments kept initialised from then on")
    max: int = Field(ge=1, description="the most utilization scaling may add from then on")

    @field_validator("cron")
    @classmethod
    def _expression(cls, cron: str) -> str:
        if not _SCHEDULE.match(cron):
            raise ValueError("a schedule is 'cron(<minutes> <hours> <day> <month> <weekday> <year>)' or 'rate(N unit)'")
        return cron

    @model_validator(mode="after")
    def _ordered(self) -> ScheduledCapacity:
        _check_bounds(self.min, self.max)
        return self


class ProvisionedConcurrencyConfig(BaseModel):
    """Execution environments Lambda keeps initialised, so that the requests they take meet no cold start.

    They are provisioned on the function's published alias ``live``, which API Gateway then invokes. ``min`` stay
    initialised from the deploy on; with ``max`` above it, Application Auto Scaling adds environments while their
    utilization is over ``target_utilization``; ``schedules`` move both bounds by time of day (office hours, a
    nightly batch window), each action's bounds holding until the next one's, so they come as a cycle. Every
    provisioned environment is billed by the second whether it serves or not (the README's "Provisioned
    concurrency" gives the price).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int = Field(ge=1, description="environments kept initialised until a schedule first moves the bounds")
    max: int | None = Field(default=None, ge=1, description="utilization scaling's ceiling; absent: fixed at min")
    target_utilization: float = Field(
        default=0.7, gt=0, lt=1, description="the share of provisioned environments busy that scaling keeps"
    )
    schedules: tuple[ScheduledCapacity, ...] = Field(default=(), description="bounds that change by time (UTC)")

    @model_validator(mode="after")
    def _ordered(self) -> ProvisionedConcurrencyConfig:
        _check_bounds(self.min, self.max)
        if len(self.schedules) == 1:
            # A scheduled action's bounds hold until another action fires: one alone would keep its bounds (and
            # their price) for good after its first run.
            raise ValueError("schedules come as a cycle: give at least two (e.g. office hours on, then off)")
        return self

    @property
    def ceiling(self) -> int:
        """The most environments any bound allows: what reserved concurrency must leave room for."""
        return max([self.max or self.min, *(schedule.max for schedule in self.schedules)])

    @property
    def scales(self) -> bool:
        return self.ceiling > self.min or bool(self.schedules)


class FunctionConfig(BaseModel):
    """One domain function's settings: ``functions/<domain>/function.toml``, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_mb: int = Field(
        ge=128,
        le=10240,
        description="memory of the function, which also sets its CPU share (1 vCPU per 1,769 MB)",
    )
    timeout_s: int = Field(
        ge=3,
        le=API_INTEGRATION_TIMEOUT_S,
        description="function timeout; no longer than the API Gateway integration timeout",
    )
    architecture: Literal["x86_64", "arm64"] = Field(description="instruction set of the function and its image")
    routes: tuple[str, ...] = Field(
        default=(),
        description="API paths this function answers besides its models' and its task prefix /v1/<domain>/...",
    )
    reserved_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="reserved concurrency; absent leaves the function on the account's unreserved pool",
    )
    provisioned_concurrency: ProvisionedConcurrencyConfig | None = Field(
        default=None,
        description="environments kept initialised on the alias 'live' (min, max, target_utilization, schedules); "
        "absent: on demand only, every environment starts cold",
    )
    streaming: bool = Field(
        default=False,
        description="the function streams its answers (aimass.http.lambda_streaming): API Gateway invokes it with "
        "InvokeWithResponseStream (response transfer mode STREAM) and relays each chunk as it comes",
    )

    @model_validator(mode="after")
    def _room_for_provisioned(self) -> FunctionConfig:
        provisioned, reserved = self.provisioned_concurrency, self.reserved_concurrency
        if provisioned is not None and reserved is not None and provisioned.ceiling > reserved:
            raise ValueError(
                f"provisioned concurrency of up to {provisioned.ceiling} does not fit the reserved concurrency "
                f"({reserved}): raise reserved_concurrency or lower the provisioned bounds"
            )
        return self

    @field_validator("routes")
    @classmethod
    def _valid_routes(cls, routes: tuple[str, ...]) -> tuple[str, ...]:
        for route in routes:
            try:
                check_path(route)
            except RouteError as exc:
                raise ValueError(str(exc)) from None
        duplicates = sorted({route for route in routes if routes.count(route) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {duplicates}")
        return routes

    @property
    def intra_op_threads(self) -> int:
        """ONNX Runtime intra-op threads: one per vCPU the memory setting buys (3,008 MB: 2)."""
        return max(1, min(MAX_VCPUS, math.ceil(self.memory_mb / MB_PER_VCPU)))


@dataclass(frozen=True)
class DomainFunctionSpec:
    """A function found in the checkout (a domain's, or the authorizer): its Dockerfile and its validated settings."""

    domain: str  # AUTHORIZER_FUNCTION for the authorizer
    dockerfile: str  # relative to the repository root (the image's build context), POSIX separators
    settings_file: str  # likewise
    settings: FunctionConfig


def function_domains(repo_root: Path) -> list[str]:
    """The domains that have a function: each ``functions/<domain>/`` holding a Dockerfile, but the authorizer."""
    functions = repo_root / FUNCTIONS_DIR
    if not functions.is_dir():
        return []
    return sorted(
        path.name for path in functions.iterdir() if path.name != AUTHORIZER_FUNCTION and (path / DOCKERFILE).is_file()
    )


def load_function_config(
    path: Path, overrides: Mapping[str, Any] | None = None, *, name: str | None = None
) -> FunctionConfig:
    """Read and validate one function.toml (``overrides`` replace its values); ConfigError names file and key."""
    shown = name or str(path)
    if not path.is_file():
        raise ConfigError(
            f"{shown}: missing; every functions/<domain>/ with a Dockerfile needs one "
            "(memory_mb, timeout_s, architecture, routes)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML: {exc}") from None
    source = shown
    if overrides:
        data = {**data, **overrides}
        source = f"{shown} (with CDK context 'aimass:functionOverrides' {dict(overrides)!r})"
    try:
        return FunctionConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
            problems.append(f"{source}: key {key!r}: {error['msg']}{got}")
        raise ConfigError("invalid function settings:\n  " + "\n  ".join(problems)) from None


def discover_functions(repo_root: Path, config: ServingConfig) -> dict[str, DomainFunctionSpec]:
    """Every domain function of the checkout at ``repo_root``, keyed by domain, settings validated."""
    domains = function_domains(repo_root)
    for domain in domains:
        if not DOMAIN_NAME.match(domain):
            raise ConfigError(
                f"{FUNCTIONS_DIR}/{domain}/{DOCKERFILE}: domain names are lower-case letters, digits and '_'"
            )
    unknown = sorted(set(config.function_overrides) - set(domains) - {AUTHORIZER_FUNCTION})
    if unknown:
        raise ConfigError(
            f"CDK context 'aimass:functionOverrides': no function for domain(s) {unknown}; "
            f"domains with a function: {domains} (and '{AUTHORIZER_FUNCTION}', the API key authorizer)"
        )
    return {domain: _function_spec(repo_root, config, domain) for domain in domains}


def load_authorizer_function(repo_root: Path, config: ServingConfig) -> DomainFunctionSpec:
    """The API key authorizer of the checkout at ``repo_root`` (``functions/authorizer/``), settings validated.

    Its function.toml has a domain's keys (``aimass:functionOverrides`` may replace them under ``"authorizer"``),
    but it answers API Gateway, not a route: listing one is an error.
    """
    dockerfile = f"{FUNCTIONS_DIR}/{AUTHORIZER_FUNCTION}/{DOCKERFILE}"
    if not (repo_root / dockerfile).is_file():
        raise ConfigError(
            f"{dockerfile}: missing; CDK context 'aimass:edgeAuthorizer' is true, and the API key authorizer is "
            "built from it (set aimass:edgeAuthorizer=false to leave every key check to the functions)"
        )
    spec = _function_spec(repo_root, config, AUTHORIZER_FUNCTION)
    if spec.settings.routes:
        raise ConfigError(
            f"{spec.settings_file}: key 'routes': the authorizer answers API Gateway, not a route; "
            f"expected routes = [], got {list(spec.settings.routes)!r}"
        )
    return spec


def _function_spec(repo_root: Path, config: ServingConfig, name: str) -> DomainFunctionSpec:
    settings_file = f"{FUNCTIONS_DIR}/{name}/{FUNCTION_TOML}"
    return DomainFunctionSpec(
        domain=name,
        dockerfile=f"{FUNCTIONS_DIR}/{name}/{DOCKERFILE}",
        settings_file=settings_file,
        settings=load_function_config(
            repo_root / settings_file, config.function_overrides.get(name), name=settings_file
        ),
    )
