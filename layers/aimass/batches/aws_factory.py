"""Batches on AWS, from the settings: the jobs table, the files bucket's ``batches/`` and AWS Batch."""

from __future__ import annotations

from aimass.batches.store import BatchStore, Launcher, WorkStore
from aimass.settings import Settings


def open_aws_batches(settings: Settings) -> tuple[BatchStore, WorkStore, Launcher]:
    """The batch store (``jobs_table``), the work store (``files_bucket``, under ``files_prefix`` + "batches/")
    and the launcher (``batch_targets``), each with its own client from ``aimass.aws``."""
    if not settings.files_bucket:
        raise ValueError("batches on AWS keep their shards' outputs in the files bucket: set AIMASS_FILES_BUCKET")
    from aimass import aws
    from aimass.batches.aws_batch import AwsBatchLauncher
    from aimass.batches.dynamodb import DynamoDBBatchStore
    from aimass.batches.work_s3 import S3WorkStore

    endpoint = settings.aws_endpoint_url
    store = DynamoDBBatchStore(aws.client("dynamodb", endpoint), settings.jobs_table)
    # Shard outputs are chunks of many lines, not single items: the model store's read timeout (aimass.aws).
    s3 = aws.client("s3", endpoint, read_timeout_s=aws.MODEL_STORE_READ_TIMEOUT_S)
    # Beside the uploaded files (``<files_prefix><tenant>/``), as S3FileStore reads the prefix.
    files = settings.files_prefix
    if files and not files.endswith("/"):
        files += "/"
    work = S3WorkStore(s3, settings.files_bucket, files + "batches/")
    launcher = AwsBatchLauncher(aws.client("batch", endpoint), settings.batch_targets)
    return store, work, launcher
