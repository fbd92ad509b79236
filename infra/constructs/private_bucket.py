"""A private bucket under its own KMS key, and the grants on it, as both the model and the files buckets make them."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge


def bucket_key(scope: Construct, description: str) -> kms.Key:
    """A customer-managed key, rotated and retained (its bucket's objects are readable only while it exists):
    its policy and CloudTrail record are ours to audit."""
    return kms.Key(scope, "Key", description=description, enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN)


def private_bucket(
    scope: Construct,
    *,
    key: kms.IKey,
    versioned: bool,
    access_logs: s3.IBucket,
    access_log_prefix: str,
    lifecycle_rules: Sequence[s3.LifecycleRule],
) -> s3.Bucket:
    """Encrypted under ``key`` (with an S3 Bucket Key, which keeps KMS calls and their cost low), public access
    blocked, TLS only, ACLs off, server access logs to ``access_logs``, retained with the stack."""
    return s3.Bucket(
        scope,
        "Bucket",
        versioned=versioned,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_log_prefix,
        lifecycle_rules=list(lifecycle_rules),
        removal_policy=RemovalPolicy.RETAIN,
    )


def via_s3() -> dict[str, dict[str, str]]:
    """A key policy condition: the key may be used only by S3 on the caller's behalf."""
    return {"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}


def grant_objects_read_write(role: iam.IRole, bucket: s3.IBucket, key: kms.IKey, *, why_every_object: str) -> None:
    """Read, write and delete any object of ``bucket``, abort an interrupted upload, list the bucket.

    Named actions rather than ``grant_read_write``'s ``s3:GetObject*``, ``s3:List*`` and ``kms:GenerateDataKey*``
    wildcards. ``s3:PutObject`` covers single and multipart uploads (create, upload part, complete);
    ``s3:GetObject`` reads and heads an object; ``s3:ListBucket`` lists (and makes a missing object a 404, not a
    403). The key: GenerateDataKey to write an object, Decrypt to read one or complete a multipart upload, both
    only through S3. ``why_every_object`` is the written reason for the object wildcard (cdk-nag IAM5).
    """
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects("*")],
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn], conditions=via_s3()
        )
    )
    acknowledge(role, f"IAM5[Resource::<{bucket_logical_id(bucket)}.Arn>/*]", why_every_object)


def bucket_logical_id(bucket: s3.IBucket) -> str:
    """The bucket's CloudFormation logical id, as cdk-nag names it in a finding."""
    cfn_bucket = bucket.node.default_child
    if not isinstance(cfn_bucket, s3.CfnBucket):
        raise TypeError(f"{bucket.node.path}: expected a CfnBucket as default child")
    return Stack.of(bucket).get_logical_id(cfn_bucket)
