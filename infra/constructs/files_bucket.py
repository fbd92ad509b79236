"""The files bucket: tenants' uploaded files (OpenAI's Files API, ``/v1/files``)."""

from __future__ import annotations

from aws_cdk import Duration
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

# Where batches' shards write their intermediate results (chunks) in the files bucket: the S3 work store's prefix.
BATCH_WORK_PREFIX = "batches/"


class FilesBucket(Construct):
    """KMS-encrypted, private, TLS-only bucket of tenants' files, with server access logs.

    Files are stored as ``<tenant>/<file id>/content`` and ``.../meta.json`` (``aimass.files.s3``). They are
    immutable: an upload writes a new file id, and a delete removes both objects for good, so the bucket is not
    versioned (versioning would keep every deleted file as a noncurrent version, against the tenant's request).
    A lifecycle rule expires files ``expire_days`` after upload and aborts uploads left incomplete for a day.

    Its own key rather than the model bucket's or the envelope key: tenants' data is kept apart from the
    product's, its key policy and CloudTrail record can be audited on their own, and only S3 uses it on the
    caller's behalf (grants carry a ``kms:ViaService`` condition), which the envelope key's direct callers cannot.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        expire_days: int,
        access_log_bucket: s3.IBucket,
        access_log_prefix: str = "files-bucket/",
    ) -> None:
        super().__init__(scope, construct_id)
        if expire_days < 1:
            raise ValueError(f"expire_days must be at least 1, got {expire_days}")
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)

        self.key = bucket_key(self, "Encrypts tenants' files in the AI Mass files store")
        # Tenants' files are not the stack's to delete: a stack deletion leaves the bucket (and its key).
        self.bucket = private_bucket(
            self,
            key=self.key,
            versioned=False,
            access_logs=access_log_bucket,
            access_log_prefix=access_log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-files",
                    expiration=Duration.days(expire_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )

    def grant_files(self, role: iam.IRole) -> None:
        """Let ``role`` serve the Files API: upload, read, list and delete files, abort an interrupted upload."""
        grant_objects_read_write(
            role,
            self.bucket,
            self.key,
            why_every_object="The files bucket holds tenants' uploaded files only, under <tenant>/<file id>/: "
            "tenants and file ids are made at run time, so the object wildcard covers the bucket. The function keeps "
            "each tenant to its own prefix (aimass.files); the bucket is not versioned and no other object is in it.",
        )

    def grant_file_reads(self, role: iam.IRole) -> None:
        """Let ``role`` read tenants' files, and nothing more: the management API imports an uploaded model file.

        ``s3:ListBucket`` makes a missing object a 404 rather than a 403; the role reads every object anyway, so
        a listing shows it nothing more. The function keeps each tenant to the files it owns or was granted
        (``aimass.files``).
        """
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects("*")])
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.key.key_arn], conditions=via_s3())
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{bucket_logical_id(self.bucket)}.Arn>/*]",
            "Read-only: a model file to import is any tenant's upload, under <tenant>/<file id>/, made at run time; "
            "the function reads only the caller's own files or those shared with it (aimass.files).",
        )

    def grant_batch_work(self, role: iam.IRole) -> None:
        """Let ``role`` run and finish batches: read any file (a batch's input, a range of its lines), write the
        output and error files, and write, read and delete the work under ``batches/``.

        Deleting is kept to the work: a worker or the finalizer never removes a tenant's file. ``s3:ListBucket``
        lists a shard's chunks, and makes a missing object a 404 rather than a 403; the role reads every object
        anyway, so a listing shows it nothing more.
        """
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject"], resources=[self.bucket.arn_for_objects(f"{BATCH_WORK_PREFIX}*")]
            )
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn], conditions=via_s3()
            )
        )
        bucket = bucket_logical_id(self.bucket)
        acknowledge(
            role,
            f"IAM5[Resource::<{bucket}.Arn>/*]",
            "A batch's input is a tenant's file and its output and error files are new files of that tenant, under "
            "<tenant>/<file id>/ with ids made at run time, so reads and writes cover the files bucket's objects. "
            "Deletes are kept to the batches/ work prefix; the bucket holds nothing but files and that work.",
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{bucket}.Arn>/{BATCH_WORK_PREFIX}*]",
            "The batches/ prefix holds only batches' intermediate chunks, keyed by batch ids made at run time: a "
            "worker or the finalizer deletes a batch's chunks once its output files are written.",
        )
