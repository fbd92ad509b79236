"""Which usage store and quota counter a process uses, from the settings (``metering``): their composition root.

``sqlite``: both in ``<state_dir>/metering.db``. ``dynamodb``: the tables ``usage_table`` and ``counters_table``,
through a client made by ``aimass.aws``. ``off``: stores that keep nothing.
"""

from __future__ import annotations

from typing import Any

from aimass import aws
from aimass.metering.stores.sqlite import METERING_DB
from aimass.metering.stores.usage_dynamodb import DynamoQuotaCounter, DynamoUsageStore
from aimass.metering.stores.usage_off import NoQuotaCounter, NoUsageStore
from aimass.metering.stores.usage_sqlite import SqliteQuotaCounter, SqliteUsageStore
from aimass.metering.usage import QuotaCounter, UsageStore
from aimass.settings import Settings


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
