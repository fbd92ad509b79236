"""Typed settings, read from ``AIMASS_*`` environment variables once per process and validated at start.

The variables are read by ``aimass.env_source`` as pydantic-settings read them, without its imports, which
a function's cold start paid for.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from aimass import contract
from aimass.env_source import deep_update, env_values
from aimass.schema import Schema

ENV_PREFIX = "AIMASS_"


class PeerSpec(Schema):
    """One other domain function, as the CDK app describes it to the front function (``aimass.http.peers``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = Field(min_length=1)
    function: str = Field(min_length=1, description="Lambda function name or ARN")
    models: tuple[str, ...] = Field(default=(), description="the catalogued models routed to it")


class Plan(Schema):
    """What a key's plan allows: a request rate (token bucket) and a monthly quota of billable units.

    The one definition of a plan: the functions read theirs from AIMASS_PLANS with it, and the CDK app checks
    ``aimass:plans`` with it (``infra.config.PlanConfig``) before any function is deployed. Every limit is
    positive: a plan of no requests or no units would serve nothing (a key is stopped by revoking it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Both null: no request rate per key (the local development key's plan, so that a closed-loop client such
    # as an agent stepping an environment over HTTP is never throttled); the monthly quota still applies.
    rate_per_s: float | None = Field(
        gt=0, allow_inf_nan=False, description="sustained requests per second per key; null: no rate limit"
    )
    burst: int | None = Field(
        gt=0, description="requests a key may send at once before the rate applies; null with rate_per_s"
    )
    monthly_units: int = Field(gt=0, description="billable units per calendar month (UTC) per tenant")
    batch_price_factor: float = Field(
        default=0.5,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="what a unit costs in a batch, as a share of its synchronous price (batch work is cheaper to "
        "serve: large engine batches on machines that scale to zero)",
    )

    @model_validator(mode="after")
    def _rate_and_burst_together(self) -> Plan:
        if (self.rate_per_s is None) != (self.burst is None):
            raise ValueError("rate_per_s and burst are both numbers, or both null (no rate limit)")
        return self

    @property
    def rate_text(self) -> str:
        """The plan's rate as people read it: "50 requests/s, burst 100", or "no rate limit"."""
        if self.rate_per_s is None:
            return "no rate limit"
        return f"{self.rate_per_s:g} requests/s, burst {self.burst}"


DEFAULT_PLANS = {name: Plan.model_validate(terms) for name, terms in contract.DEFAULT_PLANS.items()}
# USD per billable unit, by unit (the usage count a runtime bills by: text's prompt tokens, a generative
# model's tokens, vision's images, speech's audio seconds, rl's observations): what a usage record's
# unit_price and cost come from.
DEFAULT_PRICES = {
    "prompt_tokens": 2e-8,
    "tokens": 1e-7,  # a generative model's prompt and completion tokens together
    "images": 1e-4,
    "seconds": 1e-4,
    "observations": 1e-6,
    "requests": 0.0,
}


class BatchTarget(Schema):
    """Where one domain's batch shards run on AWS: an AWS Batch job queue and the domain's job definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: str = Field(min_length=1, description="job queue name or ARN")
    job_definition: str = Field(min_length=1, description="job definition name, name:revision or ARN")


class Settings(Schema):
    """Every field is read from ``AIMASS_<FIELD>`` (any case; JSON for the container fields) unless given."""

    # pydantic-settings' configuration of its settings, which these were: defaults validated too, unknown
    # fields refused, and its reserved prefixes.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
        arbitrary_types_allowed=True,
        protected_namespaces=("model_validate", "model_dump", "settings_customise_sources"),
    )

    def __init__(self, **values: Any) -> None:
        # What the constructor is given wins over the environment (a JSON object field merged key by key).
        super().__init__(**deep_update(env_values(ENV_PREFIX, type(self).model_fields), values))

    model_store: Path = Field(
        default=Path("model_store"),
        description="directory of built models, laid out as <name>/<version>/manifest.json",
    )
    domains: tuple[str, ...] | None = Field(
        default=None,
        description="domains this process serves (a function sets its own); None serves every domain found",
    )
    intra_op_threads: int = Field(
        default=0,
        ge=0,
        description="ONNX Runtime threads inside one operator; 0 lets ONNX Runtime use every core",
    )
    inter_op_threads: int = Field(default=1, ge=1, description="ONNX Runtime threads across operators")
    intra_op_spinning: bool = Field(
        default=False,
        description="let ONNX Runtime's threads spin between operators instead of sleeping: a generative model's "
        "decode step is hundreds of small operators, and spinning made SmolLM2 decode 30% faster on 2 cores "
        "(80 -> 104 tokens/s, bench/llm.py); off elsewhere, where concurrent sessions would lose the cores it holds",
    )
    accelerator: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="where sessions run: auto takes ONNX Runtime's CUDA execution provider when it has one (the GPU "
        "batch workers' onnxruntime-gpu), else the CPU; cuda refuses to load without it; cpu never uses it",
    )
    max_body_bytes: int = Field(
        default=6 * 1024 * 1024,
        gt=0,
        description="largest request body accepted; 6 MiB matches Lambda's synchronous payload limit",
    )
    max_batch_items: int = Field(default=256, gt=0, description="most items (strings, rows) in one request")
    max_in_flight: int = Field(
        default=16,
        gt=0,
        description="requests one process runs at once per model; past it a request is refused at once (503 "
        "model_overloaded, Retry-After) rather than queued without bound. 16 lets `aimass serve` answer 16 "
        "concurrent one-sentence embeddings on 2 cores without a refusal at ~60 ms p99 (bench/server_mode.py); "
        "a Lambda container runs one request at a time, so it never binds there",
    )
    micro_batch_rows: int = Field(
        default=0,
        ge=0,
        description="most rows of concurrent requests for one model run as one engine batch "
        "(aimass.serving.microbatch); 0 or 1: each request runs alone, as a Lambda container's one request at a "
        "time does. `aimass serve` sets 32",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="local server: seconds a client has to send a whole request body before a 408 (a 6 MiB body at "
        "2 Mbit/s takes 25 s); on Lambda, API Gateway hands the function the whole body",
    )
    model_bucket: str | None = Field(
        default=None,
        description="S3 bucket of the model store; when set, models are read from S3 instead of model_store",
    )
    model_prefix: str = Field(default="", description="key prefix of the model store inside model_bucket")
    aws_endpoint_url: str | None = Field(
        default=None, description="endpoint of every AWS service called (S3, KMS, ...); None means AWS itself"
    )
    cache_dir: Path = Field(
        default=Path("/tmp/aimass-cache"),
        description="where files fetched from a remote store are cached, keyed by their sha256",
    )
    alias_check_s: float = Field(
        default=30.0, ge=0, description="how often a serving process re-reads its models' aliases; 0 never"
    )
    keep_versions: int = Field(
        default=2, ge=1, description="versions of each model kept loaded (the serving ones and the latest before)"
    )
    master_key_file: Path = Field(
        default=Path(".aimass/master.key"),
        description="local master key wrapping the data keys of encrypted models (created owner-only)",
    )
    kms_key_id: str | None = Field(
        default=None, description="KMS key wrapping the data keys of encrypted models (id, ARN or alias)"
    )
    state_dir: Path = Field(
        default=Path(".aimass"),
        description="local state (SQLite metering database, development keys); never in a function image",
    )
    metering: Literal["sqlite", "dynamodb", "off"] = Field(
        default="sqlite", description="where keys, usage records and quota counters live; off serves without keys"
    )
    keys_table: str = Field(default="aimass-keys", description="DynamoDB table of API keys")
    usage_table: str = Field(default="aimass-usage", description="DynamoDB table of usage records")
    counters_table: str = Field(default="aimass-counters", description="DynamoDB table of quota counters")
    key_cache_s: float = Field(
        default=30.0, ge=0, description="how long a checked key is trusted before it is read again (revocation delay)"
    )
    edge_api_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]{1,32}$",
        description="the REST API whose usage plans throttle each key at the edge (the stack's RestApiId output): "
        "creating, rotating and revoking keys then keeps one API Gateway API key per AI Mass key in its plan's usage "
        "plan; unset, keys live only in the key store",
    )
    plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    files_bucket: str | None = Field(
        default=None,
        description="S3 bucket of uploaded files (/v1/files); unset, they live under state_dir/files",
    )
    files_prefix: str = Field(default="", description="key prefix of uploaded files inside files_bucket")
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="largest file POST /v1/files accepts; the local server reads its body up to this (plus the "
        "form's framing) instead of max_body_bytes, while a Lambda function gets no more than max_body_bytes",
    )
    jobs_table: str = Field(default="aimass-jobs", description="DynamoDB table of batches (metering=dynamodb)")
    batch_targets: dict[str, BatchTarget] = Field(
        default_factory=dict,
        description="per domain, the AWS Batch queue and job definition its batch shards run on (JSON; set on the "
        "front function); empty, shards run on this process's worker threads (batch_workers)",
    )
    batch_workers: int = Field(
        default=1,
        ge=0,
        description="local server: threads running batch shards beside the API (each uses every core through ONNX "
        "Runtime, so one keeps the machine busy); 0 runs none (a separate `python -m aimass.worker` may)",
    )
    batch_shard_lines: int = Field(
        default=2000, gt=0, description="input lines per shard: the unit of parallel work and of retry"
    )
    batch_chunk_lines: int = Field(
        default=256, gt=0, description="lines a worker runs and writes at once: the unit of progress after a crash"
    )
    batch_lease_s: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
        description="local workers: how long a shard stays claimed without news from its worker (renewed every chunk) "
        "before another worker resumes it",
    )
    batch_max_items: int = Field(
        default=100_000,
        gt=0,
        description="most items (strings, rows, images) in one request of a batch: a batch line, or a request sent "
        "with Prefer: respond-async, is not held to a synchronous call's max_batch_items (each item's own limits hold)",
    )
    max_batch_lines: int = Field(default=1_000_000, gt=0, description="most lines in one batch's input file")
    peers: tuple[PeerSpec, ...] = Field(
        default=(),
        description="the other domain functions whose models the listings include (JSON; set on the front function)",
    )
    peer_cache_s: float = Field(default=10.0, ge=0, description="how long the peers' listings are reused")
    peer_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="how long one peer call waits for the peer's answer (its read timeout; aimass.aws)",
    )
    import_domain: str | None = Field(
        default=None,
        description="the domain whose function serves imported models (set on the front function): a batch's V2 "
        "endpoint of a model the catalogue does not name runs on that domain's workers",
    )
    reserved_model_names: tuple[str, ...] = Field(
        default=(),
        description="names an import may not take: the catalogued models another function serves (JSON; set on the "
        "function serving imported models, where API Gateway routes those names elsewhere)",
    )
    import_memory_mb: int | None = Field(
        default=None,
        gt=0,
        description="memory (MB) of the function that serves imported models (the tensor domain's): an import that "
        "would need more is refused (aimass.importing.memory); unset, the running Lambda's own memory, else no limit",
    )
    sync_budget_s: float = Field(
        default=20.0,
        gt=0,
        description="seconds a synchronous request may be estimated to take (aimass.serving.cost): over it, or over "
        "max_batch_items, a request is a 413 that says to send it as a batch, or a 202 and a batch when sent with "
        "Prefer: respond-async. 20 s leaves 9 of API Gateway's 29 for the rest of the call and for estimates that "
        "fall short; a batch's lines run with none (inf)",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
