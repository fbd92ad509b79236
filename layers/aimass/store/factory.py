"""The composition root of model stores: the settings say which backend a process reads and writes."""

from __future__ import annotations

from aimass import aws
from aimass.settings import Settings
from aimass.store.base import Unsealer, WritableModelStore
from aimass.store.local import LocalModelStore


def open_store(settings: Settings, *, unsealer: Unsealer | None = None, seeded: bool = True) -> WritableModelStore:
    """S3 when ``model_bucket`` is set (boto3 imported only then), else the local directory ``model_store``.

    Over S3, the local ``model_store`` (the models baked into a function image), where it exists, seeds the
    bucket: see ``aimass.store.s3``; what it fetches is kept in a ``DownloadCache`` over ``cache_dir``. The
    operator CLI passes ``seeded=False`` so that it shows and changes exactly what the bucket holds.
    """
    local = LocalModelStore(settings.model_store, unsealer=unsealer)
    if settings.model_bucket is None:
        return local
    from aimass.store.cache import DownloadCache
    from aimass.store.s3 import S3ModelStore

    # Model files are megabytes to gigabytes: a longer read timeout (aimass.aws says why).
    client = aws.client("s3", settings.aws_endpoint_url, read_timeout_s=aws.MODEL_STORE_READ_TIMEOUT_S)
    seed = local if seeded and settings.model_store.is_dir() else None
    cache = DownloadCache(settings.cache_dir)
    return S3ModelStore(client, settings.model_bucket, settings.model_prefix, cache, seed=seed, unsealer=unsealer)
