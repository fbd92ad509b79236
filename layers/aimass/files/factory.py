"""The file store the settings name: S3 when ``AIMASS_FILES_BUCKET`` is set, else ``<state_dir>/files``."""

from __future__ import annotations

from aimass.files.base import FileStore
from aimass.files.uploads import UploadStore
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


def open_uploads(files: FileStore) -> UploadStore:
    """Where ``files`` keeps uploads in parts (OpenAI's Uploads API) until they become its files: beside them."""
    from aimass.files.s3 import S3FileStore

    if isinstance(files, S3FileStore):
        from aimass.files.s3_uploads import S3UploadStore

        return S3UploadStore(files.s3, files.bucket, files.prefix, part_bytes=files.part_bytes)
    from aimass.files.local import LocalFileStore
    from aimass.files.local_uploads import LocalUploadStore

    if isinstance(files, LocalFileStore):
        return LocalUploadStore(files.root)
    raise TypeError(f"no upload store for {type(files).__name__}")
