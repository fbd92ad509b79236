"""The serving stack: model bucket and keys, the files bucket, metering tables, the operator roles, one function per
model domain, the public API and its monitoring."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aimass.contract import BATCH_EVENTS_HANDLER, IMPORTED_MODELS_PREFIX
from infra.config import (
    AUTHORIZER_FUNCTION,
    DomainFunctionSpec,
    ServingConfig,
    discover_functions,
    load_authorizer_function,
)
from infra.constructs.api import ServingApi
from infra.constructs.batch_fallback import BatchDomain, BatchFallback
from infra.constructs.domain_function import DomainFunction
from infra.constructs.files_bucket import FilesBucket
from infra.constructs.image_function import ImageFunction
from infra.constructs.jobs_table import JobsTable
from infra.constructs.metering_tables import MeteringTables
from infra.constructs.model_bucket import ModelBucket
from infra.constructs.model_key import ModelKey
from infra.constructs.monitoring import ServingMonitoring
from infra.routes import CataloguedModel, Route, route_table
from models.catalogue import catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]


def function_logical_id(domain: str) -> str:
    """Readable, stable logical id of a domain's function: ``TextFunction``, ``VisionFunction``, ...

    People address them by name, e.g. ``sam local invoke -t cdk.out/<stack>.template.json TextFunction``.
    """
    return "".join(part.capitalize() for part in domain.split("_")) + "Function"


TEXT_FUNCTION_LOGICAL_ID = function_logical_id("text")
AUTHORIZER_LOGICAL_ID = function_logical_id(AUTHORIZER_FUNCTION)
BATCH_EVENTS_LOGICAL_ID = "BatchEventsFunction"
# The batch events function finishes batches (joins every shard's chunks into the output files), called by
# EventBridge with no client waiting: Lambda's longest timeout rather than the API's 29 s.
BATCH_EVENTS_TIMEOUT = Duration.minutes(15)


class ServingStack(Stack):
    """Everything one stage needs to serve requests. No account or region is fixed here.

    The domain functions are the directories ``functions/<domain>/`` holding a Dockerfile (sized by
    their ``function.toml``); the API routes each catalogued model (``models/<domain>/<model>/spec.py``)
    to its domain's function (``infra/routes.py``). Both are read from ``repo_root`` at synth time.

    Models reach the functions through the bucket: operators and CI assume ``ModelPublisherRole`` to publish
    versions and move aliases, and each function re-reads its models' aliases every
    ``aimass:aliasCheckSeconds``, unwrapping the data keys of encrypted versions with the envelope key.

    Every function meters its requests in the DynamoDB tables (``AIMASS_METERING=dynamodb``): it checks the
    caller's key, charges the tenant's monthly counter and writes one usage record. The front function also
    serves the admin API (``/v1/admin/...``) and ``GET /v1/usage``, so it alone may write keys and read usage; and
    the Files API (``/v1/files``), so it alone is told the files bucket (``AIMASS_FILES_BUCKET``) and may use it.
    Operators assume ``AdminRole`` for ``aimass keys`` and ``aimass usage report``.

    Batches (``/v1/batches``, routed to the front function) are kept in the jobs table and run in shards on AWS
    Batch (``BatchFallback``): the front function submits each batch as an array job of its domain's job definition
    (``AIMASS_BATCH_TARGETS``), each shard's worker writes its results under the files bucket's ``batches/``, and
    every job that succeeds or fails reaches ``BatchEventsFunction`` (the front function's image running
    ``aimass.contract.BATCH_EVENTS_HANDLER``), which finishes or fails its batch.

    With ``aimass:edgeAuthorizer`` (the default) the API key authorizer (``functions/authorizer/``) checks each
    key at API Gateway first, and the usage plan of the key's plan throttles it there. Each AI Mass key then has
    an edge key in that usage plan, which whoever creates, rotates or revokes keys keeps in step (the front
    function and ``AdminRole``, told the API by ``AIMASS_EDGE_API_ID``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        repo_root: Path = REPO_ROOT,
        models: Sequence[CataloguedModel] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config

        # Everything is read and checked before the first construct: a model without a function or a
        # bad function.toml fails the synth with a message naming it.
        self.function_specs: dict[str, DomainFunctionSpec] = discover_functions(repo_root, config)
        self.catalogued: list[CataloguedModel] = list(models if models is not None else catalogue(repo_root / "models"))
        # Imported models need their function: a checkout without the import domain serves none.
        self.import_domain = config.import_domain if config.import_domain in self.function_specs else None
        self.routes: list[Route] = route_table(
            self.catalogued,
            {domain: spec.settings.routes for domain, spec in self.function_specs.items()},
            config.front_domain,
            self.import_domain,
        )

        self.models = ModelBucket(self, "Models")
        self.model_key = ModelKey(self, "ModelKey", alias=f"alias/aimass-{config.stage}-models")
        # Tenants' files (/v1/files): their server access logs go to the model bucket's log bucket.
        self.files = FilesBucket(
            self,
            "Files",
            expire_days=config.files_expire_days,
            access_log_bucket=self.models.access_log_bucket,
        )
        self.publisher = self._publisher_role()
        self.metering = MeteringTables(self, "Metering")
        self.admin = self._admin_role()
        log_retention = logs.RetentionDays[config.log_retention_name]
        # What every function needs to serve published versions: the bucket, the key that unwraps the data
        # keys of encrypted versions, and how often to look for a new version (AIMASS_ALIAS_CHECK_S); and to
        # meter: the tables and the plans (aimass.settings).
        environment = {
            "AIMASS_MODEL_BUCKET": self.models.bucket.bucket_name,
            "AIMASS_KMS_KEY_ID": self.model_key.key.key_arn,
            "AIMASS_ALIAS_CHECK_S": _seconds(config.alias_check_seconds),
            "AIMASS_METERING": "dynamodb",
            "AIMASS_KEYS_TABLE": self.metering.keys.table_name,
            "AIMASS_USAGE_TABLE": self.metering.usage.table_name,
            "AIMASS_COUNTERS_TABLE": self.metering.counters.table_name,
            "AIMASS_PLANS": config.plans_json,
        }

        self.functions: dict[str, DomainFunction] = {}
        for domain, spec in self.function_specs.items():
            function = DomainFunction(
                self,
                function_logical_id(domain).removesuffix("Function"),
                domain=domain,
                repo_root=repo_root,
                dockerfile=spec.dockerfile,
                settings=spec.settings,
                log_retention=log_retention,
                environment=environment,
            )
            _override_logical_id(function.function, function_logical_id(domain))
            # Read access to the published versions of this domain's own models, nothing else (the import
            # domain's live under the imported models' prefix: _serve_imports).
            if domain != self.import_domain:
                self.models.grant_read_models(
                    function.role, [model.name for model in self.catalogued if model.domain == domain]
                )
            # Envelope-encrypted versions: unwrap their data keys (called directly, not through S3).
            self.model_key.grant_unseal(function.role)
            # Metering every request: check the key, charge the tenant's month, write the usage record.
            self.metering.grant_key_check(function.role)
            self.metering.grant_quota(function.role)
            self.metering.grant_usage_record(function.role)
            self.functions[domain] = function

        self._introduce_peers(config.front_domain)
        self._serve_imports()
        # The admin API and GET /v1/usage (every tenant's with an admin key) are routed to the front function only.
        front_role = self.functions[config.front_domain].role
        self.metering.grant_key_admin(front_role)
        self.metering.grant_usage_read(front_role, every_tenant=True)
        # The Files API (/v1/files) is routed to the front function only: it alone stores tenants' files.
        self.functions[config.front_domain].function.add_environment(
            "AIMASS_FILES_BUCKET", self.files.bucket.bucket_name
        )
        self.files.grant_files(front_role)
        self._batches(repo_root, log_retention, environment)

        self.authorizer = self._authorizer(repo_root, log_retention) if config.edge_authorizer else None
        self.api = ServingApi(
            self,
            "Api",
            routes=self.routes,
            handlers={domain: function.invocable for domain, function in self.functions.items()},
            streaming=frozenset(domain for domain, spec in self.function_specs.items() if spec.settings.streaming),
            stage_name=config.stage,
            throttle_rate_limit=config.api_throttle_rate_limit,
            throttle_burst_limit=config.api_throttle_burst_limit,
            plans=config.plans,
            log_retention=log_retention,
            authorizer=self.authorizer.function if self.authorizer is not None else None,
        )
        if self.authorizer is not None:
            # Creating, rotating and revoking a key (the admin API, `aimass keys`) mirrors it at the edge.
            self.functions[config.front_domain].function.add_environment("AIMASS_EDGE_API_ID", self.api.rest_api_id)
            self.api.grant_edge_keys([front_role, self.admin])
        self.monitoring = ServingMonitoring(
            self,
            "Monitoring",
            stage_name=config.stage,
            functions={domain: function.function for domain, function in self.functions.items()},
            models={
                domain: sorted(model.name for model in self.catalogued if model.domain == domain)
                for domain in self.functions
            },
            api_stage=self.api.rest_api.deployment_stage,
            latency_alarm_ms=config.latency_alarm_ms,
            authorizer=self.authorizer.function if self.authorizer is not None else None,
        )

        # The stack's outputs: what operators and the CLI need after a deploy.
        outputs = {
            "ApiUrl": (self.api.url, "Base URL of the API stage"),
            "ModelBucketName": (self.models.bucket.bucket_name, "Bucket the built models are published to"),
            "ModelKeyArn": (
                self.model_key.key.key_arn,
                "KMS key wrapping the data keys of encrypted models (aimass models encrypt --kms-key-id)",
            ),
            "ModelPublisherRoleArn": (
                self.publisher.role_arn,
                "Role to assume for aimass models publish/promote/rollback/canary/encrypt",
            ),
            "FilesBucketName": (
                self.files.bucket.bucket_name,
                "Bucket of tenants' uploaded files (/v1/files; AIMASS_FILES_BUCKET of the front function)",
            ),
            "KeysTableName": (
                self.metering.keys.table_name,
                "DynamoDB table of API keys (AIMASS_KEYS_TABLE for aimass keys)",
            ),
            "UsageTableName": (
                self.metering.usage.table_name,
                "DynamoDB table of usage records (AIMASS_USAGE_TABLE for aimass usage report)",
            ),
            "CountersTableName": (
                self.metering.counters.table_name,
                "DynamoDB table of monthly quota counters (AIMASS_COUNTERS_TABLE)",
            ),
            "JobsTableName": (
                self.jobs.table.table_name,
                "DynamoDB table of batches (AIMASS_JOBS_TABLE of the front function and the batch workers)",
            ),
            **{
                f"Batch{kind.capitalize()}QueueName": (
                    queue.job_queue_name,
                    f"AWS Batch job queue of the {kind.upper()} batch workers (aws batch list-jobs --job-queue)",
                )
                for kind, queue in sorted(self.batch.queues.items())
            },
            "AdminRoleArn": (
                self.admin.role_arn,
                "Role to assume for aimass keys create/list/revoke/rotate and aimass usage report",
            ),
            "DashboardName": (
                self.monitoring.dashboard.dashboard_name,
                "CloudWatch dashboard of the API and every function",
            ),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "SNS topic the alarms notify: subscribe to it"),
        }
        if self.authorizer is not None:
            outputs["RestApiId"] = (self.api.rest_api_id, "AIMASS_EDGE_API_ID for aimass keys")
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _batches(self, repo_root: Path, log_retention: logs.RetentionDays, environment: dict[str, str]) -> None:
        """The jobs table, the AWS Batch queues and job definitions, and the function that finishes batches.

        Every domain with a function runs its shards on AWS Batch: the domains of ``aimass:batchGpuDomains`` on GPU
        instances, the others on Fargate. A worker serves its domain's models as the domain's function does (the
        same bucket, key and metering), reads a batch's input file and writes its results in the files bucket, and
        keeps the batch's record in the jobs table.
        """
        config = self.config
        front_domain = config.front_domain
        self.jobs = JobsTable(self, "Jobs", key=self.metering.key)
        batch_environment = {
            **environment,
            "AIMASS_FILES_BUCKET": self.files.bucket.bucket_name,
            "AIMASS_JOBS_TABLE": self.jobs.table.table_name,
        }
        self.batch = BatchFallback(
            self,
            "Batch",
            repo_root=repo_root,
            domains=[
                BatchDomain(
                    domain=domain,
                    gpu=domain in config.batch_gpu_domains,
                    architecture=spec.settings.architecture,
                    # The import domain's workers serve the imported models, as its function does.
                    environment={"AIMASS_MODEL_PREFIX": IMPORTED_MODELS_PREFIX} if domain == self.import_domain else {},
                )
                for domain, spec in self.function_specs.items()
            ],
            gpu_instance_types=config.batch_gpu_instance_types,
            spot=config.batch_spot,
            max_vcpus=config.batch_max_vcpus,
            log_retention=log_retention,
            environment=batch_environment,
        )
        for domain, job in self.batch.jobs.items():
            if domain == self.import_domain:
                self.models.grant_read_prefix(job.role, IMPORTED_MODELS_PREFIX)
            else:
                names = [model.name for model in self.catalogued if model.domain == domain]
                self.models.grant_read_models(job.role, names)
            self.model_key.grant_unseal(job.role)
            self.jobs.grant_read_write(job.role)
            self.files.grant_batch_work(job.role)
            # A shard's lines are billed as they run, as the synchronous requests are.
            self.metering.grant_quota(job.role)
            self.metering.grant_usage_record(job.role)

        # The front function answers /v1/batches: it keeps the records and submits, looks up and cancels the jobs.
        front = self.functions[front_domain]
        front.function.add_environment("AIMASS_JOBS_TABLE", self.jobs.table.table_name)
        front.function.add_environment("AIMASS_BATCH_TARGETS", self.batch.targets_json())
        self.jobs.grant_read_write(front.role)
        self.batch.grant_submit(front.role)

        # The front function's image (built and stored once) with the events handler as its CMD.
        spec = self.function_specs[front_domain]
        self.batch_events = ImageFunction(
            self,
            BATCH_EVENTS_LOGICAL_ID.removesuffix("Function"),
            repo_root=repo_root,
            dockerfile=spec.dockerfile,
            # The front function's memory and instruction set (its image's); none of its reserved concurrency.
            settings=spec.settings.model_copy(update={"reserved_concurrency": None}),
            log_retention=log_retention,
            description="AI Mass batches: finishes a batch whose shards are done, fails one whose job failed",
            role_description="AI Mass batch events",
            environment={**batch_environment, "AIMASS_DOMAINS": json.dumps([front_domain])},
            cmd=[BATCH_EVENTS_HANDLER],
            timeout=BATCH_EVENTS_TIMEOUT,
        )
        _override_logical_id(self.batch_events.function, BATCH_EVENTS_LOGICAL_ID)
        self.jobs.grant_read_write(self.batch_events.role)
        self.files.grant_batch_work(self.batch_events.role)
        self.metering.grant_quota(self.batch_events.role)
        self.metering.grant_usage_record(self.batch_events.role)
        self.batch.route_job_state_changes(self.batch_events.function)

    def _authorizer(self, repo_root: Path, log_retention: logs.RetentionDays) -> ImageFunction:
        """The API key authorizer: it reads one key record at most (through its own cache) and nothing else."""
        spec = load_authorizer_function(repo_root, self.config)
        authorizer = ImageFunction(
            self,
            AUTHORIZER_LOGICAL_ID.removesuffix("Function"),
            repo_root=repo_root,
            dockerfile=spec.dockerfile,
            settings=spec.settings,
            log_retention=log_retention,
            description="AI Mass API key authorizer: checks each request's key before API Gateway routes it",
            role_description="AI Mass API key authorizer",
            environment={
                "AIMASS_METERING": "dynamodb",
                "AIMASS_KEYS_TABLE": self.metering.keys.table_name,
                "AIMASS_PLANS": self.config.plans_json,
            },
        )
        _override_logical_id(authorizer.function, AUTHORIZER_LOGICAL_ID)
        self.metering.grant_key_check(authorizer.role)
        return authorizer

    def _publisher_role(self) -> iam.Role:
        """The role operators and CI assume to publish and manage models: the whole bucket and the envelope key."""
        role = iam.Role(
            self,
            "ModelPublisherRole",
            # Any principal of this account whose own IAM policy allows sts:AssumeRole on this role
            # (an operator's role, a CI deploy role); nothing outside the account.
            assumed_by=iam.AccountRootPrincipal(),
            description=(
                f"AI Mass {self.config.stage} model publisher: assumed by operators or CI of this account (the trust "
                "is the account, so their own IAM policies decide who may assume it) to run aimass models "
                "publish/promote/rollback/canary/encrypt against the model bucket and the envelope key"
            ),
        )
        self.models.grant_publish_models(role)
        self.model_key.grant_seal(role)
        return role

    def _admin_role(self) -> iam.Role:
        """The role operators assume to manage keys and read usage: ``aimass keys ...``, ``aimass usage report``.

        Its own role, not the publisher's: whoever publishes models (CI) need not mint API keys, which is
        handing out paid access, nor read what each tenant used; and a key administrator need not replace
        models. Separate roles let each account policy grant one duty without the other.
        """
        role = iam.Role(
            self,
            "AdminRole",
            # As for the publisher: principals of this account whose own IAM policy allows assuming it.
            assumed_by=iam.AccountRootPrincipal(),
            description=(
                f"AI Mass {self.config.stage} key and usage administrator: assumed by operators of this account "
                "(their own IAM policies decide who) to run aimass keys create/list/revoke/rotate and aimass usage "
                "report against the metering tables"
            ),
        )
        self.metering.grant_key_admin(role)
        # `aimass usage report` reads one tenant's month; every tenant's (a Scan) is the admin API's.
        self.metering.grant_usage_read(role, every_tenant=False)
        return role

    def _serve_imports(self) -> None:
        """The import domain's function keeps the imported models: it serves them (``/v2/models/{proxy+}``), imports
        them (the management API, ``/v1/admin/models``, reading the uploaded file from the files bucket) and lets
        their canary policies move their aliases; all of it under the imported models' prefix of the model
        bucket, the only part of it it may write. It refuses to import a name the catalogue routes elsewhere.
        """
        if self.import_domain is None:
            return
        imports = self.functions[self.import_domain]
        spec = self.function_specs[self.import_domain]
        others = sorted(model.name for model in self.catalogued if model.domain != self.import_domain)
        for key, value in {
            "AIMASS_MODEL_PREFIX": IMPORTED_MODELS_PREFIX,
            "AIMASS_IMPORT_MEMORY_MB": str(spec.settings.memory_mb),
            "AIMASS_RESERVED_MODEL_NAMES": json.dumps(others),
            "AIMASS_FILES_BUCKET": self.files.bucket.bucket_name,
        }.items():
            imports.function.add_environment(key, value)
        self.models.grant_imported_models(imports.role, IMPORTED_MODELS_PREFIX)
        self.files.grant_file_reads(imports.role)
        # The front function takes batches: one of lines for an imported model runs on this domain's workers.
        self.functions[self.config.front_domain].function.add_environment("AIMASS_IMPORT_DOMAIN", self.import_domain)

    def _introduce_peers(self, front_domain: str) -> None:
        """Let the front function list the whole namespace: it is told the other functions and may invoke them.

        ``/v1/models`` and the V2 repository index are routed to the front function (``infra/routes.py``),
        which asks each peer for its own listing (``aimass.http.peers``) through a direct invocation.
        """
        front = self.functions[front_domain]
        peers = {domain: function for domain, function in self.functions.items() if domain != front_domain}
        if not peers:
            return
        described = [
            {
                "domain": domain,
                # The alias where environments are provisioned, so that listings meet them warm too.
                "function": function.invocable.function_name,
                "models": sorted(model.name for model in self.catalogued if model.domain == domain),
            }
            for domain, function in peers.items()
        ]
        front.function.add_environment("AIMASS_PEERS", json.dumps(described))
        # The ARNs invoked only (the function's, or its alias's), not grant_invoke's ':*' as well.
        front.role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.invocable.function_arn for function in peers.values()],
            )
        )


def _override_logical_id(function: lambda_.Function, logical_id: str) -> None:
    cfn_function = function.node.default_child
    if not isinstance(cfn_function, lambda_.CfnFunction):
        raise TypeError(f"{function.node.path}: expected a CfnFunction as default child")
    cfn_function.override_logical_id(logical_id)


def _seconds(value: float) -> str:
    """A duration as the function reads it: ``30`` rather than ``30.0``, ``0.5`` as is."""
    return str(int(value)) if value.is_integer() else repr(value)
