"""The composition root of the metering stores: the settings (``metering``) say which backend a process uses.

``sqlite``: keys and usage in ``<state_dir>/metering.db``. ``dynamodb``: the tables ``keys_table``,
``usage_table`` and ``counters_table``, through clients made by ``aimass.aws`` (boto3 imported only then).
``off``: no key store, and usage stores that keep nothing.
"""

from __future__ import annotations

from typing import Any

from aimass import aws
from aimass.errors import InvalidInput
from aimass.metering.keys import KeyStore
from aimass.metering.stores.base import MeteringUnavailable
from aimass.metering.stores.keys_dynamodb import DynamoKeyStore
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.metering.stores.sqlite import METERING_DB
from aimass.metering.stores.usage_dynamodb import DynamoQuotaCounter, DynamoUsageStore
from aimass.metering.stores.usage_off import NoQuotaCounter, NoUsageStore
from aimass.metering.stores.usage_sqlite import SqliteQuotaCounter, SqliteUsageStore
from aimass.metering.usage import QuotaCounter, UsageStore
from aimass.settings import Settings


def open_key_store(settings: Settings) -> KeyStore:
    """SQLite at ``<state_dir>/metering.db``, or the DynamoDB table ``keys_table`` (boto3 imported only then)."""
    if settings.metering == "sqlite":
        return SqliteKeyStore(settings.state_dir / METERING_DB)
    if settings.metering == "dynamodb":
        from botocore.exceptions import BotoCoreError

        try:
            client = aws.client("dynamodb", settings.aws_endpoint_url)
        except BotoCoreError as exc:  # e.g. no region configured
            raise MeteringUnavailable(f"DynamoDB table '{settings.keys_table}': {type(exc).__name__}: {exc}") from None
        return DynamoKeyStore(client, settings.keys_table)
    raise InvalidInput(
        "metering is off (AIMASS_METERING=off), so there is no key store; set AIMASS_METERING to sqlite or dynamodb",
        param="metering",
    )


def open_usage(settings: Settings, *, client: Any = None) -> tuple[UsageStore, QuotaCounter]:
    """The usage store and quota counter the settings name (``metering``): the composition root.

    ``sqlite``: both in ``<state_dir>/metering.db``. ``dynamodb``: ``usage_table`` and ``counters_table``
    through ``client`` (default: a new one for ``aws_endpoint_url``, ``aimass.aws``). ``off``: stores that keep nothing.
    """
    if settings.metering == "sqlite":
        path = settings.state_dir / METERING_DB
        return SqliteUsageStore(path), SqliteQuotaCounter(path)
    if settings.metering == "dynamodb":
        client = client or aws.client("dynamodb", settings.aws_endpoint_url)
        usage = DynamoUsageStore(client, settings.usage_table, counters_table=settings.counters_table)
        return usage, DynamoQuotaCounter(client, settings.counters_table)
    return NoUsageStore(), NoQuotaCounter()
