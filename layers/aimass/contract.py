"""What the serving code and the CDK app must agree on, written once: both import it.

Standard library only (no pydantic, no boto3, no CDK), so the functions import it at no cost and
``infra/`` reads it as plain data. Each fact here has one reader on either side:

* Lambda's limits: the API Gateway integration timeout and the memory that buys one vCPU
  (``infra/config.py`` sizes functions with them, ``bench/sizing.py`` suggests sizes, ``aimass.aws`` bounds
  every AWS call by the first);
* the default key plans (``aimass.settings.Plan`` validates them for the functions and the CDK app alike)
  and the tag that names each API Gateway usage plan's AI Mass plan (``aimass.metering.edge_keys`` finds
  usage plans by it, ``infra/constructs/api.py`` writes it);
* how a request without a key is refused (the functions' message, and API Gateway's once the authorizer is
  in front of them);
* the paths the app serves without a key (``aimass.http.middleware.metering``; ``infra/routes.py`` opens the API
  Gateway routes that hold them);
* the DynamoDB table layouts the metering stores are written against (``create_table`` arguments for local
  tables and tests; ``infra/constructs/metering_tables.py`` declares the same keys and indexes);
* the CloudWatch metric namespace, EMF metric names and dimensions the functions emit
  (``aimass.observability``) and the dashboard and alarms read (``infra/constructs/monitoring.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

# --- Lambda and API Gateway ---------------------------------------------------------------------------

# API Gateway REST integrations give up after 29 seconds (unless the account's quota is raised): no answer
# later than that reaches a client, so no function timeout and no wait inside a request is longer.
API_INTEGRATION_TIMEOUT_S = 29
# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB, up to six at 10,240 MB.
MB_PER_VCPU = 1769
MAX_VCPUS = 6

# --- key plans ----------------------------------------------------------------------------------------

# The plans a deployment and a local server start with: request rate and burst per key, billable units per
# calendar month per tenant. Plain data; ``aimass.settings.Plan`` is their one validator.
DEFAULT_PLANS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "default": MappingProxyType({"rate_per_s": 50.0, "burst": 100, "monthly_units": 10_000_000}),
        "free": MappingProxyType({"rate_per_s": 2.0, "burst": 5, "monthly_units": 100_000}),
    }
)
# The plan of the local server's development key (``make serve``): no request rate limit, so that a closed-loop
# client (an agent stepping CartPole over HTTP) runs at the server's speed. Only ``aimass serve`` adds it; a
# deployment's plans are ``aimass:plans`` or the ones above.
DEVELOPMENT_PLAN = "development"
DEVELOPMENT_PLAN_TERMS: Mapping[str, float | None] = MappingProxyType(
    {"rate_per_s": None, "burst": None, "monthly_units": 10_000_000}
)
# On each API Gateway usage plan: the name of the AI Mass plan it throttles.
PLAN_TAG = "aimass:plan"

# --- keys ---------------------------------------------------------------------------------------------

# How a refused request is told to send its key, by the functions and by API Gateway alike.
ASK_FOR_KEY = "send an API key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
# The challenge sent with every refused key (a 401).
KEY_CHALLENGE: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Bearer realm="aimass"'})

# The paths the app answers without a key: liveness and readiness, server metadata, the API documents, the
# local server's /metrics and the console. Every other path needs one.
OPEN_PATHS = frozenset(
    {
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/docs",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/metrics",
        "/console",
    }
)
# The browser console (aimass.http.console): its files are open, every path under it; the console asks for the
# user's key and sends it with each API call it makes, so it can do nothing the key could not.
CONSOLE_PATH = "/console"
OPEN_PREFIXES = (CONSOLE_PATH + "/",)


def is_open_path(path: str) -> bool:
    """Does the app answer ``path`` without a key (``OPEN_PATHS``, or a path under ``OPEN_PREFIXES``)?"""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


# --- imported models ----------------------------------------------------------------------------------

# Where the function serving imported models (the tensor domain's) keeps them in the model bucket: its store's
# prefix (AIMASS_MODEL_PREFIX), the only one it may write, so that an import can never touch a catalogued model.
IMPORTED_MODELS_PREFIX = "imported/"

# --- metering tables ----------------------------------------------------------------------------------

AttributeType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class Attribute:
    """A key attribute of a table or index: its name and DynamoDB type (S string, N number, B binary)."""

    name: str
    type: AttributeType = "S"


@dataclass(frozen=True)
class Index:
    """A global secondary index; every one projects all attributes, so a query reads nothing else."""

    name: str
    partition_key: Attribute
    sort_key: Attribute | None = None


@dataclass(frozen=True)
class TableLayout:
    """A table's keys and indexes: what the metering code queries, independent of the table's name."""

    partition_key: Attribute
    sort_key: Attribute | None = None
    indexes: tuple[Index, ...] = ()

    def index(self, name: str) -> Index:
        return next(index for index in self.indexes if index.name == name)

    def create_table(self, name: str) -> dict[str, Any]:
        """DynamoDB ``CreateTable`` arguments for a table named ``name`` (on demand): local tables and tests."""
        attributes: dict[str, Attribute] = {}
        for attribute in _keys(self.partition_key, self.sort_key):
            attributes.setdefault(attribute.name, attribute)
        for index in self.indexes:
            for attribute in _keys(index.partition_key, index.sort_key):
                attributes.setdefault(attribute.name, attribute)
        arguments: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a.name, "AttributeType": a.type} for a in attributes.values()],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            arguments["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        return arguments


def _keys(partition_key: Attribute, sort_key: Attribute | None) -> tuple[Attribute, ...]:
    return (partition_key,) if sort_key is None else (partition_key, sort_key)


def _key_schema(partition_key: Attribute, sort_key: Attribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key.name, "KeyType": "HASH"}]
    if sort_key is not None:
        schema.append({"AttributeName": sort_key.name, "KeyType": "RANGE"})
    return schema


KEYS_TENANT_INDEX = "tenant-index"
USAGE_TENANT_AT_INDEX = "tenant-at-index"
# API keys: one item per key (every check of a presented key is one GetItem); ``tenant-index`` lists a
# tenant's keys with a Query, where a Scan would read (and bill) the whole table.
KEYS_TABLE = TableLayout(
    partition_key=Attribute("key_id"),
    indexes=(Index(KEYS_TENANT_INDEX, partition_key=Attribute("tenant")),),
)
# Usage records: one item per request, written once; ``tenant-at-index`` reads a tenant's usage over a time
# range (``at`` is an ISO-8601 UTC string, whose text order is its time order).
USAGE_TABLE = TableLayout(
    partition_key=Attribute("request_id"),
    indexes=(Index(USAGE_TENANT_AT_INDEX, partition_key=Attribute("tenant"), sort_key=Attribute("at")),),
)
# Quota counters: a tenant's billable units per month (``period`` is YYYY-MM), charged by conditional updates.
COUNTERS_TABLE = TableLayout(partition_key=Attribute("subject"), sort_key=Attribute("period"))

# Batches (OpenAI's Batch API): one item per batch, its tenant the partition key, so that a tenant's
# batches are one Query (newest first by id's creation-ordered sort key ``sk``: "<created_at>#<batch id>"),
# and ``batch-index`` finds a batch by its id alone (the worker and the finalizer know only the id).
JOBS_BATCH_INDEX = "batch-index"
JOBS_TABLE = TableLayout(
    partition_key=Attribute("tenant"),
    sort_key=Attribute("sk"),
    indexes=(Index(JOBS_BATCH_INDEX, partition_key=Attribute("batch_id")),),
)

# --- batch workers ------------------------------------------------------------------------------------

# A batch worker is a domain's own function image run with this command (an AWS Batch job definition's
# command); it runs shard AWS_BATCH_JOB_ARRAY_INDEX (0 for a job that is not an array) of the batch named
# by these variables, which the job's submission sets.
WORKER_MODULE = "aimass.worker"
BATCH_ID_ENV = "AIMASS_BATCH_ID"
BATCH_TENANT_ENV = "AIMASS_BATCH_TENANT"
ARRAY_INDEX_ENV = "AWS_BATCH_JOB_ARRAY_INDEX"
# The Lambda handler (in the front function's image) that EventBridge calls on every state change of a
# batch job: it finalizes a batch whose shards are done, and fails one whose job failed.
BATCH_EVENTS_HANDLER = "aimass.batches.events.handler"

# --- metrics ------------------------------------------------------------------------------------------

# CloudWatch namespace of the functions' EMF metrics (a function may override it with
# POWERTOOLS_METRICS_NAMESPACE, which the stack does not set).
METRIC_NAMESPACE = "AIMass"


class Metric(StrEnum):
    """What every metered request emits, once each (0 or 1 for the flags, so Sum counts and Average rates)."""

    LATENCY = "Latency"  # ms, the whole request
    INFERENCE_LATENCY = "InferenceLatency"  # ms, in the model
    REQUESTS = "Requests"
    ERRORS = "Errors"  # 5XX
    CLIENT_ERRORS = "ClientErrors"  # 4XX
    UNITS = "Units"  # billable units
    COLD_START = "ColdStart"


# The dimension sets: (service) for a function's totals, (service, model) per model.
SERVICE_DIMENSION = "service"
MODEL_DIMENSION = "model"


def service_name(domains: Iterable[str] | None) -> str:
    """The ``service`` dimension (and log service) of a process serving ``domains``; None serves them all."""
    # Never plain "aimass": Powertools filters records of loggers whose name contains the service out of
    # the root handlers, and every module logger here is named aimass.*.
    return "aimass-" + ("-".join(sorted(domains)) if domains else "all")
