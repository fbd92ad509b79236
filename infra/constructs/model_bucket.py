"""The model bucket: where built models are published for the functions to read."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class ModelBucket(Construct):
    """Versioned, KMS-encrypted, private, TLS-only bucket with server access logs.

    Access is granted by the composing stack (``bucket.grant_read(...)``), which also
    grants decryption with ``key`` because the bucket knows its encryption key.
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

        # A customer-managed key: its policy and CloudTrail usage are ours to audit, and
        # S3 Bucket Keys keep the number of KMS calls (and their cost) low.
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the AI Mass model bucket",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

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

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="model-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-model-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            # Published models are the product; never delete them with the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
