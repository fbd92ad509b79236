"""The model bucket: where built models are published for the functions to read."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.private_bucket import (
    bucket_key,
    bucket_logical_id,
    grant_objects_read_write,
    private_bucket,
    via_s3,
)
from infra.nag import acknowledge


class ModelBucket(Construct):
    """Versioned, KMS-encrypted, private, TLS-only bucket with server access logs.

    Models are published under ``<model name>/<version>/...`` (the layout of the local model store).
    ``grant_read_models`` gives a function read access to its own models' prefixes and nothing else;
    ``grant_publish_models`` gives the publisher the whole bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        noncurrent_version_retention_days: int = 90,
        access_log_retention_days: int = 365,
    ) -> None:
        super().__init__(scope, construct_id)
        # Deliver server access logs through the log bucket's policy, not an ACL: new buckets have
        # ACLs disabled (BucketOwnerEnforced). Set here so the construct does not depend on cdk.json.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)

        self.key = bucket_key(self, "Encrypts the AI Mass model bucket")

        # Server access logs cannot be delivered to a bucket encrypted with a customer-managed
        # key, so the log bucket uses S3-managed keys.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(access_log_retention_days))
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # cdk-nag's S1 (server access logs) passes this bucket because it receives another
        # bucket's access logs.

        # Published models are the product: retained with the stack, old versions kept for rollbacks a while.
        self.bucket = private_bucket(
            self,
            key=self.key,
            versioned=True,
            access_logs=self.access_log_bucket,
            access_log_prefix="model-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-model-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )

    def grant_read_prefix(self, role: iam.IRole, prefix: str) -> None:
        """Let ``role`` read (only) the imported models, under ``prefix``: the batch workers of their domain."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[self.bucket.arn_for_objects(f"{prefix}*")]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.key.key_arn], conditions=via_s3())
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{bucket_logical_id(self.bucket)}.Arn>/{prefix}*]",
            f"Read access to the imported models, under {prefix} only: made at run time by imports, after the stack "
            "is deployed.",
        )

    def grant_read_models(self, role: iam.IRole, model_names: Sequence[str]) -> None:
        """Let ``role`` read every published version of ``model_names``, and no other object.

        Written out rather than ``bucket.grant_read(role, "<name>/*")``, which grants ``s3:GetObject*``,
        ``s3:GetBucket*`` and ``s3:List*`` on the whole bucket for each call: here the object actions
        are named, objects are limited to the models' prefixes, listing is limited to those prefixes,
        and the key may be used only by S3 on the caller's behalf.
        """
        names = sorted(set(model_names))
        if not names:
            return
        prefixes = [f"{name}/" for name in names]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            )
        )
        # The bucket's objects are encrypted with its key (an S3 Bucket Key); reading one needs Decrypt.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions=via_s3(),
            )
        )
        bucket_id = bucket_logical_id(self.bucket)
        for name in names:
            acknowledge(
                role,
                f"IAM5[Resource::<{bucket_id}.Arn>/{name}/*]",
                f"Read access to the objects under {name}/ only: every published version of model {name!r}, "
                "which this function serves. Object keys under the prefix are versions and their files, "
                "not known until they are published.",
            )

    def grant_imported_models(self, role: iam.IRole, prefix: str) -> None:
        """Let ``role`` keep the imported models under ``prefix``: import versions, move their aliases (the
        management API, the canary policy) and read them, and no object outside the prefix.

        Objects under the prefix: read, write, delete (the publish lease; a versioned bucket keeps what a delete
        hides) and abort an interrupted multipart upload; listing is limited to the prefix; the bucket key only
        through S3, GenerateDataKey to write and Decrypt to read.
        """
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                         "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(f"{prefix}*")],
            )
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn], conditions=via_s3()
            )
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{bucket_logical_id(self.bucket)}.Arn>/{prefix}*]",
            f"The imported models, under {prefix} only: their names and versions are made at run time by imports "
            "(the management API) after the stack is deployed, so the object wildcard covers the prefix. No "
            "catalogued model lies under it.",
        )

    def grant_publish_models(self, role: iam.IRole) -> None:
        """Let ``role`` publish, promote, roll back and list every model: ``aimass models ...`` against the bucket.

        Objects: read, write (versions, manifests, aliases), delete (the publish lease; on this versioned
        bucket a delete only adds a delete marker, and ``s3:DeleteObjectVersion`` is not granted) and abort
        an interrupted multipart upload. Listing covers every prefix. The bucket key may be used only by S3
        on the caller's behalf: GenerateDataKey to write an object, Decrypt to read one or finish a multipart
        upload.
        """
        grant_objects_read_write(
            role,
            self.bucket,
            self.key,
            why_every_object="The publisher writes every model: object keys are <model>/<version>/<file> and "
            "<model>/aliases.json for models not yet known when the stack is deployed (and under any "
            "AIMASS_MODEL_PREFIX), so the object wildcard covers the bucket. Object versions cannot be deleted "
            "(no DeleteObjectVersion).",
        )
