"""The serving stack: model bucket, the text domain function and the public API, deployed together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ServingConfig
from infra.constructs.api import ServingApi
from infra.constructs.domain_function import DomainFunction
from infra.constructs.model_bucket import ModelBucket
from infra.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[2]

# Readable, stable logical ids for what people address by name
# (e.g. `sam local invoke -t cdk.out/<stack>.template.json TextFunction`).
TEXT_FUNCTION_LOGICAL_ID = "TextFunction"


class ServingStack(Stack):
    """Everything one stage needs to serve requests. No account or region is fixed here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        repo_root: Path = REPO_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config

        self.models = ModelBucket(self, "Models")

        self.text = DomainFunction(
            self,
            "Text",
            domain="text",
            repo_root=repo_root,
            dockerfile="functions/text/Dockerfile",
            memory_mb=config.text_memory_mb,
            # At most API Gateway's 29 s integration timeout: past it the caller already has a 504,
            # and a longer function timeout would only keep computing (and billing) for nobody.
            timeout=Duration.seconds(config.text_timeout_s),
            architecture=config.text_architecture,
            intra_op_threads=config.text_intra_op_threads,
            log_retention=logs.RetentionDays[config.log_retention_name],
            reserved_concurrency=config.text_reserved_concurrency,
            environment={"AIMASS_MODEL_BUCKET": self.models.bucket.bucket_name},
        )
        _override_logical_id(self.text.function, TEXT_FUNCTION_LOGICAL_ID)

        # Read access to published models (and decryption with the bucket's key).
        self.models.bucket.grant_read(self.text.function)
        for finding in ("Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*"):
            acknowledge(
                self.text.role,
                f"IAM5[{finding}]",
                "From bucket.grant_read: read-only S3 actions, scoped to the model bucket and its "
                "objects, nothing else.",
            )
        acknowledge(
            self.text.role,
            f"IAM5[Resource::<{self.get_logical_id(_default_child(self.models.bucket))}.Arn>/*]",
            "Read access to every object of the model bucket: the function reads whichever "
            "model versions are published there.",
        )

        self.api = ServingApi(
            self,
            "Api",
            handler=self.text.function,
            stage_name=config.stage,
            throttle_rate_limit=config.api_throttle_rate_limit,
            throttle_burst_limit=config.api_throttle_burst_limit,
            log_retention=logs.RetentionDays[config.log_retention_name],
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the API stage")
        CfnOutput(
            self,
            "ModelBucketName",
            value=self.models.bucket.bucket_name,
            description="Bucket the built models are published to",
        )


def _default_child(construct: Construct) -> Any:
    child = construct.node.default_child
    if child is None:
        raise ValueError(f"{construct.node.path} has no default child")
    return child


def _override_logical_id(function: lambda_.Function, logical_id: str) -> None:
    _default_child(function).override_logical_id(logical_id)
