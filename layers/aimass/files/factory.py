"""The file store the settings name: S3 when ``AIMASS_FILES_BUCKET`` is set, else ``<state_dir>/files``."""

from __future__ import annotations

from aimass.files.base import FileStore
from aimass.settings import Settings


def open_files(settings: Settings) -> FileStore:
    if settings.files_bucket:
        from aimass import aws
        from aimass.files.s3 import S3FileStore

        # Uploads and downloads move megabytes, not single items: the model store's read timeout, not the
        # request path's (aimass.aws).
        client = aws.client("s3", settings.aws_endpoint_url, read_timeout_s=aws.MODEL_STORE_READ_TIMEOUT_S)
        return S3FileStore(client, settings.files_bucket, settings.files_prefix)
    from aimass.files.local import LocalFileStore

    return LocalFileStore(settings.state_dir / "files")
